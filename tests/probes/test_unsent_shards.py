"""A probe run started while the task queue is away: the start answers as usual, the run waits as
queued with the reason on its shards, and the reaper sends it once the queue is back.

What must survive: the run (committed before its messages are sent), its start response, and a
shard sent twice still runs once (its claim is a conditional update)."""

import socket
import uuid

import pytest
from celery.signals import after_task_publish

from apps.probes import services as probes
from apps.probes.execution import shard_execute
from apps.probes.models import ProbeRun, ProbeShard, RunStatus, ShardStatus
from readiness.celery import app
from tests.conftest import api_client_for
from tests.readiness_helpers import small_plan

SHARD_TASK = "apps.probes.tasks.probe_shard_task"


def _refused_url() -> str:
    """A Redis URL on a local port nothing listens on: connecting is refused, as when Redis is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def broker(settings):
    """The real broker, which the test can take `away` (a Redis that refuses connections) and bring
    back; `sent` lists the shard ids handed to it."""
    settings.READINESS_PROBE_QUEUE = f"test-unread-{uuid.uuid4().hex[:8]}"  # no worker runs them here
    saved = app.conf.broker_url, app.conf.broker_write_url
    sent = []

    def record(sender=None, body=None, **kwargs):
        if sender == SHARD_TASK:
            sent.append(body[0][0])

    def switch(url):
        app.conf.broker_url, app.conf.broker_write_url = url
        app._pool = None  # the producer pool holds connections to the broker it was made for
        app.amqp._producer_pool = None

    state = {"sent": sent, "away": lambda: switch((_refused_url(),) * 2), "back": lambda: switch(saved)}
    after_task_publish.connect(record, weak=False)
    yield state
    after_task_publish.disconnect(record)
    switch(saved)


@pytest.fixture
def plan(world, simulator):
    return small_plan(world, simulator, duration=1, max_tokens=8)


def test_a_run_started_while_the_queue_is_away_is_sent_by_the_reaper_once_it_is_back(
    world, plan, broker, django_capture_on_commit_callbacks
):
    broker["away"]()
    client = api_client_for(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/probe-plans/{plan.pk}/start/", format="json")
    assert response.status_code == 201, response.content
    run = ProbeRun.objects.get(pk=response.json()["id"])
    assert run.status == RunStatus.QUEUED and run.error_message == probes.UNSENT  # the run page says why
    shards = list(run.shards.all())
    assert shards and all(s.status == ShardStatus.QUEUED and s.error_message == probes.UNSENT for s in shards)
    assert broker["sent"] == []

    assert probes.probe_shards_resend() == 0  # still away: nothing sent, nothing cleared
    assert ProbeShard.objects.filter(run=run, error_message=probes.UNSENT).count() == len(shards)

    broker["back"]()
    assert probes.probe_shards_resend() == len(shards)
    assert sorted(broker["sent"]) == sorted(s.pk for s in shards)
    assert not ProbeShard.objects.filter(run=run, error_message=probes.UNSENT).exists()
    assert probes.probe_shards_resend() == 0  # sent once: the next tick sends nothing again
    run.refresh_from_db()
    assert run.error_message == ""

    for shard in shards:  # the worker's job, twice: the second delivery finds the shard taken
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.summary["overall"]["requests"] > 0


def test_a_run_started_with_the_queue_up_is_sent_at_once_and_never_again(
    world, plan, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = probes.probe_run_start(access=world.access(world.owner), plan=plan)
    assert sorted(broker["sent"]) == sorted(run.shards.values_list("pk", flat=True))
    assert probes.probe_shards_resend() == 0 and len(broker["sent"]) == run.shard_count
