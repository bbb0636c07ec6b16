"""A database away for a moment (a restart, a failover) mid-run costs a shard retries, not records.

The outage is the database's: every statement on the shard's tables fails with OperationalError
for a few seconds, as a restarting PostgreSQL answers. The records wait in the engine's memory.
"""

import time

import pytest
from django.db import OperationalError, connection

from apps.probes import services
from apps.probes.execution import shard_execute
from apps.probes.models import ProbeRun
from apps.probes.selectors import run_records
from apps.projects import services as projects


class Outage:
    """Fails the shard's writes and reads between `start` and `end` seconds from now."""

    def __init__(self, start: float, end: float):
        now = time.monotonic()
        self.start, self.end, self.refused = now + start, now + end, 0

    def __call__(self, execute, sql, params, many, context):
        if self.start <= time.monotonic() < self.end and ("probes_probeshard" in sql or "probes_proberecord" in sql):
            self.refused += 1
            raise OperationalError("the database system is shutting down")
        return execute(sql, params, many, context)


@pytest.mark.django_db(transaction=True)
def test_a_database_away_for_two_seconds_mid_run_loses_no_record(world, simulator):
    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(access=owner, endpoint=world.endpoint, base_url=simulator.base_url)
    plan = services.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="steady",
        max_tokens=8,
        profile={"stages": [{"kind": "constant", "rate": 8, "duration": 6}]},
        slo={"ttft_p95_ms": 5000},
    )
    run = services.probe_run_start(access=owner, plan=plan)
    outage = Outage(start=1.5, end=3.5)
    with connection.execute_wrapper(outage):
        for shard in run.shards.all():
            shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    assert outage.refused >= 2, "the outage happened while the shard ran"
    run = ProbeRun.objects.get(pk=run.pk)
    shards = list(run.shards.all())
    assert [s.status for s in shards] == ["done"] * len(shards), [s.error_message for s in shards]
    sent = sum(s.sent for s in shards)
    assert sent > 30  # the load went on through the outage (8 req/s for 6 s)
    assert len(run_records(run)) == sent == run.request_count  # every request sent is stored, once
