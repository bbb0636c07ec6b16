"""Retention (`manage.py prune`): what is old goes, what is young or still on its way stays, 0 keeps
for ever, and a run whose raw records went still has its page, its summary and its comparisons."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.core.models import IdempotencyRecord
from apps.core.retention import delete_in_batches, idempotency_records_prune
from apps.integrations.models import (
    Connector,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    InboundEvent,
    InboundStatus,
    Kind,
)
from apps.integrations.retention import deliveries_prune, inbound_events_prune, prune
from apps.integrations.tasks import prune_task
from apps.probes import services as probes
from apps.probes.engine.records import OK, TOKENS_USAGE, Records
from apps.probes.models import ProbeRecordBatch, ProbeRun, ProbeShard, RunStatus, ShardStatus
from apps.probes.retention import probe_records_prune, run_records_pruned

pytestmark = pytest.mark.django_db

DAYS = 30
OLD = timedelta(days=DAYS + 1)
YOUNG = timedelta(days=DAYS - 1)


def ago(delta: timedelta):
    return timezone.now() - delta


# --- idempotency records -----------------------------------------------------------------------


def idempotency_record(key: str, age: timedelta, *, status_code=201) -> IdempotencyRecord:
    record = IdempotencyRecord.objects.create(
        principal="org:1", key=key, request_fingerprint="f" * 64, status_code=status_code, response_body={"id": 1}
    )
    IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=ago(age))  # created_at is auto_now_add
    return record


def test_idempotency_keys_older_than_the_retention_are_forgotten_and_younger_ones_kept():
    idempotency_record("old", OLD)
    idempotency_record("old-in-flight", OLD, status_code=0)  # abandoned long ago: no request is still running
    idempotency_record("young", YOUNG)
    idempotency_record("in-flight", timedelta(minutes=1), status_code=0)

    assert idempotency_records_prune(days=DAYS) == 2

    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {"young", "in-flight"}


def test_zero_days_keeps_idempotency_keys_for_ever():
    idempotency_record("ancient", timedelta(days=3650))

    assert idempotency_records_prune(days=0) == 0

    assert IdempotencyRecord.objects.filter(key="ancient").exists()


# --- deliveries ----------------------------------------------------------------------------------


def connector(org, name="hook", kind=Kind.WEBHOOK) -> Connector:
    return Connector.objects.create(
        organization=org, name=name, kind=kind, url="http://127.0.0.1:9/hook", events=[Event.DECISION_CHANGED]
    )


def delivery(
    conn,
    status,
    *,
    last_attempt: timedelta | None,
    created: timedelta | None = None,
    attempts=2,
    event=Event.DECISION_CHANGED,
    finding_key="",
) -> Delivery:
    """A delivery whose last attempt was `last_attempt` ago (None: never attempted), with that many
    attempts in its history."""
    d = Delivery.objects.create(
        connector=conn,
        event=event,
        event_id=f"msg_{Delivery.objects.count()}",
        finding_key=finding_key,
        payload={"type": event},
        status=status,
    )
    at = ago(last_attempt) if last_attempt is not None else None
    attempts = attempts if at else 0
    for number in range(1, attempts + 1):
        DeliveryAttempt.objects.create(delivery=d, number=number, sent_at=at, response_code=200)
    Delivery.objects.filter(pk=d.pk).update(
        created_at=ago(created or last_attempt), last_attempt_at=at, attempts=attempts
    )
    return d


def test_finished_deliveries_whose_last_attempt_is_old_go_with_their_attempts(world):
    conn = connector(world.org)
    gone = [
        delivery(conn, DeliveryStatus.SUCCEEDED, last_attempt=OLD),
        delivery(conn, DeliveryStatus.FAILED, last_attempt=OLD),
        delivery(conn, DeliveryStatus.DEAD, last_attempt=OLD),
    ]
    kept = [
        delivery(conn, DeliveryStatus.SUCCEEDED, last_attempt=YOUNG),
        delivery(conn, DeliveryStatus.DEAD, last_attempt=YOUNG),
        # Created long ago and sent again (a redelivery) lately: its last attempt is young.
        delivery(conn, DeliveryStatus.SUCCEEDED, last_attempt=YOUNG, created=OLD),
    ]

    assert deliveries_prune(days=DAYS) == (3, 6)

    assert set(Delivery.objects.values_list("pk", flat=True)) == {d.pk for d in kept}
    assert not DeliveryAttempt.objects.filter(delivery_id__in=[d.pk for d in gone]).exists()
    assert DeliveryAttempt.objects.filter(delivery__in=kept).count() == 6


def test_pending_and_sending_deliveries_are_never_pruned_however_old(world):
    conn = connector(world.org)
    waiting = delivery(conn, DeliveryStatus.PENDING, last_attempt=OLD)  # between retries
    never_tried = delivery(conn, DeliveryStatus.PENDING, last_attempt=None, created=OLD)
    sending = delivery(conn, DeliveryStatus.SENDING, last_attempt=OLD)

    assert deliveries_prune(days=DAYS) == (0, 0)

    assert set(Delivery.objects.values_list("pk", flat=True)) == {d.pk for d in (waiting, never_tried, sending)}


def test_a_waiver_announcement_is_kept_as_it_is_what_stops_it_being_sent_again(world):
    conn = connector(world.org)
    announced = delivery(
        conn, DeliveryStatus.SUCCEEDED, last_attempt=OLD, event=Event.WAIVER_EXPIRED, finding_key="waiver:1"
    )

    assert deliveries_prune(days=DAYS) == (0, 0)

    assert Delivery.objects.filter(pk=announced.pk).exists()


def test_zero_days_keeps_finished_deliveries_for_ever(world):
    d = delivery(connector(world.org), DeliveryStatus.SUCCEEDED, last_attempt=timedelta(days=3650))

    assert deliveries_prune(days=0) == (0, 0)

    assert Delivery.objects.filter(pk=d.pk).exists()


# --- inbound callbacks ---------------------------------------------------------------------------


def inbound(conn, status, age: timedelta, *, delivery_id="") -> InboundEvent:
    event = InboundEvent.objects.create(
        connector=conn,
        delivery_id=delivery_id,
        status=status,
        body_sha256="ab" * 32 if conn.kind in ("github", "jira") else "",
    )
    InboundEvent.objects.filter(pk=event.pk).update(received_at=ago(age))  # auto_now_add
    return event


def test_old_inbound_callbacks_go_but_accepted_github_and_jira_ones_stay_as_replay_memory(world):
    hook, github, jira = (
        connector(world.org, "hook"),
        connector(world.org, "gh", Kind.GITHUB),
        connector(world.org, "jira", Kind.JIRA),
    )
    gone = [
        inbound(hook, InboundStatus.APPLIED, OLD, delivery_id="msg_1"),
        inbound(hook, InboundStatus.IGNORED, OLD, delivery_id="msg_2"),
        inbound(hook, InboundStatus.REJECTED, OLD),
        inbound(github, InboundStatus.REJECTED, OLD),
    ]
    kept = [
        inbound(github, InboundStatus.APPLIED, OLD, delivery_id="gh-1"),
        inbound(jira, InboundStatus.IGNORED, OLD, delivery_id="jira-1"),
        inbound(hook, InboundStatus.APPLIED, YOUNG, delivery_id="msg_3"),
        inbound(github, InboundStatus.REJECTED, YOUNG),
    ]

    assert inbound_events_prune(days=DAYS) == len(gone)

    assert set(InboundEvent.objects.values_list("pk", flat=True)) == {e.pk for e in kept}


def test_zero_days_keeps_inbound_callbacks_for_ever(world):
    event = inbound(connector(world.org), InboundStatus.REJECTED, timedelta(days=3650))

    assert inbound_events_prune(days=0) == 0

    assert InboundEvent.objects.filter(pk=event.pk).exists()


# --- probe records -------------------------------------------------------------------------------

PROFILE = {"stages": [{"kind": "poisson", "rate": 2, "duration": 5}]}


@pytest.fixture
def plan(world):
    return probes.probe_plan_create(
        access=world.access(world.owner), endpoint=world.endpoint, name="baseline", profile=PROFILE
    )


def finished_run(world, plan, *, finished: timedelta, requests=20, by=None) -> ProbeRun:
    """A run whose shard stored `requests` records in two batches, finished (summary, request
    count, timeline computed from them by the real finalization) `finished` ago."""
    run = probes.probe_run_start(access=world.access(by or world.owner), plan=plan)
    shard = run.shards.get()
    for sequence, seqs in enumerate((range(0, requests // 2), range(requests // 2, requests))):
        part = Records()
        for seq in seqs:
            sent = 0.5 + seq * 0.2
            part.append(sent, sent, sent + 0.1, sent + 0.5, 10, 8, 8, OK, TOKENS_USAGE, 0, seq)
        ProbeRecordBatch.objects.create(shard=shard, sequence=sequence, count=len(part), data=part.to_bytes())
    ProbeShard.objects.filter(pk=shard.pk).update(status=ShardStatus.DONE, finished_at=timezone.now())
    assert probes.probe_run_finalize(run.pk)
    ProbeRun.objects.filter(pk=run.pk).update(finished_at=ago(finished), created_at=ago(finished))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.request_count == requests and run.summary
    return run


def test_raw_records_of_runs_finished_long_ago_go_and_the_run_and_its_summary_stay(world, plan):
    old, young = finished_run(world, plan, finished=OLD), finished_run(world, plan, finished=YOUNG)
    summary = old.summary

    assert probe_records_prune(days=DAYS) == 2

    assert not ProbeRecordBatch.objects.filter(shard__run=old).exists()
    assert ProbeRecordBatch.objects.filter(shard__run=young).count() == 2
    old.refresh_from_db()
    assert old.summary == summary and old.request_count == 20 and old.shards.count() == 1
    assert run_records_pruned(old) and not run_records_pruned(young)


def test_an_active_run_keeps_its_records_whatever_its_dates(world, plan):
    run = finished_run(world, plan, finished=OLD)
    ProbeRun.objects.filter(pk=run.pk).update(status=RunStatus.FINALIZING)  # summarising from them right now

    assert probe_records_prune(days=DAYS) == 0

    assert ProbeRecordBatch.objects.filter(shard__run=run).count() == 2


def test_zero_days_keeps_probe_records_for_ever(world, plan):
    run = finished_run(world, plan, finished=timedelta(days=3650))

    assert probe_records_prune(days=0) == 0

    assert ProbeRecordBatch.objects.filter(shard__run=run).count() == 2


def test_the_page_of_a_run_whose_records_were_pruned_answers_and_says_so(client, world, plan):
    earlier = finished_run(world, plan, finished=OLD + timedelta(days=1))
    run = finished_run(world, plan, finished=OLD)
    probe_records_prune(days=DAYS)
    client.force_login(world.viewer)

    page = client.get(reverse("run-detail", kwargs={"org_slug": "acme", "pk": run.pk}))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="records-pruned"' in html and "records of this run were pruned" in html
    assert reverse("run-requests-csv", kwargs={"org_slug": "acme", "pk": run.pk}) not in html
    assert 'data-testid="stage-table"' in html  # the summary is still shown

    csv = client.get(reverse("run-requests-csv", kwargs={"org_slug": "acme", "pk": run.pk}))
    assert csv.status_code == 410
    assert csv["Content-Type"].startswith("text/plain")
    assert f"records of run #{run.pk} were pruned" in csv.content.decode()

    compare = client.get(reverse("run-compare", kwargs={"org_slug": "acme", "pk": run.pk, "other": earlier.pk}))
    assert compare.status_code == 200  # comparisons read the summaries, which stay


def test_the_page_of_a_run_with_its_records_offers_the_csv_and_no_pruned_note(client, world, plan):
    run = finished_run(world, plan, finished=YOUNG)
    client.force_login(world.viewer)

    html = client.get(reverse("run-detail", kwargs={"org_slug": "acme", "pk": run.pk})).content.decode()

    assert 'data-testid="records-pruned"' not in html
    assert reverse("run-requests-csv", kwargs={"org_slug": "acme", "pk": run.pk}) in html
    csv = client.get(reverse("run-requests-csv", kwargs={"org_slug": "acme", "pk": run.pk}))
    assert csv.status_code == 200 and len(b"".join(csv.streaming_content).splitlines()) == 21


# --- batches, the whole prune, the command and the task ------------------------------------------


def test_rows_are_deleted_a_bounded_batch_per_statement():
    for n in range(5):
        idempotency_record(f"old-{n}", OLD)
    old = IdempotencyRecord.objects.filter(created_at__lt=ago(YOUNG))

    with CaptureQueriesContext(connection) as queries:
        deleted = delete_in_batches(old, batch_size=2)

    assert deleted == {"core.IdempotencyRecord": 5}
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1


def test_prune_applies_every_setting_by_age_alone_in_every_organization(world, plan, settings):
    settings.READINESS_RETAIN_IDEMPOTENCY_DAYS = DAYS
    settings.READINESS_RETAIN_DELIVERIES_DAYS = DAYS
    settings.READINESS_RETAIN_INBOUND_DAYS = DAYS
    settings.READINESS_RETAIN_PROBE_RECORDS_DAYS = DAYS
    ours, theirs = connector(world.org), connector(world.other_org)
    for conn in (ours, theirs):
        delivery(conn, DeliveryStatus.SUCCEEDED, last_attempt=OLD, attempts=1)
        delivery(conn, DeliveryStatus.SUCCEEDED, last_attempt=YOUNG, attempts=1)
        inbound(conn, InboundStatus.REJECTED, OLD)
        inbound(conn, InboundStatus.REJECTED, YOUNG)
    idempotency_record("old", OLD)
    idempotency_record("young", YOUNG)
    finished_run(world, plan, finished=OLD)
    other_plan = probes.probe_plan_create(
        access=world.access(world.outsider), endpoint=world.other_endpoint, name="baseline", profile=PROFILE
    )
    finished_run(world, other_plan, finished=OLD, by=world.outsider)

    counts = prune()

    assert counts == {
        "idempotency_records": 1,
        "deliveries": 2,
        "delivery_attempts": 2,
        "inbound_events": 2,
        "probe_record_batches": 4,
    }
    for conn in (ours, theirs):
        assert Delivery.objects.filter(connector=conn).count() == 1
        assert InboundEvent.objects.filter(connector=conn).count() == 1
    assert not ProbeRecordBatch.objects.exists()


def test_prune_with_every_setting_at_zero_deletes_nothing(world, plan, settings):
    settings.READINESS_RETAIN_IDEMPOTENCY_DAYS = 0
    settings.READINESS_RETAIN_DELIVERIES_DAYS = 0
    settings.READINESS_RETAIN_INBOUND_DAYS = 0
    settings.READINESS_RETAIN_PROBE_RECORDS_DAYS = 0
    conn = connector(world.org)
    delivery(conn, DeliveryStatus.DEAD, last_attempt=timedelta(days=3650))
    inbound(conn, InboundStatus.REJECTED, timedelta(days=3650))
    idempotency_record("ancient", timedelta(days=3650))
    finished_run(world, plan, finished=timedelta(days=3650))

    assert set(prune().values()) == {0}

    assert Delivery.objects.count() == InboundEvent.objects.count() == IdempotencyRecord.objects.count() == 1
    assert ProbeRecordBatch.objects.count() == 2


def test_the_prune_command_prints_the_rows_deleted_per_kind(world, settings):
    settings.READINESS_RETAIN_IDEMPOTENCY_DAYS = DAYS
    idempotency_record("old", OLD)
    out = io.StringIO()

    call_command("prune", stdout=out)

    lines = out.getvalue().splitlines()
    assert "idempotency_records: 1" in lines
    assert {line.split(":")[0] for line in lines} == {
        "idempotency_records",
        "deliveries",
        "delivery_attempts",
        "inbound_events",
        "probe_record_batches",
    }
    assert not IdempotencyRecord.objects.exists()


def test_the_daily_task_prunes_and_returns_the_counts_and_beat_schedules_it(world, settings):
    from readiness import settings as project_settings

    settings.READINESS_RETAIN_IDEMPOTENCY_DAYS = DAYS
    idempotency_record("old", OLD)

    assert prune_task()["idempotency_records"] == 1

    entry = project_settings.CELERY_BEAT_SCHEDULE["prune"]
    assert entry["task"] == prune_task.name and entry["schedule"] == 24 * 3600
