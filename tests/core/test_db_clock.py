"""Heartbeats are written and judged by the database's clock, so a jump of a worker's or a reaper's
own clock reaps nothing alive and keeps nothing dead."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from apps.core.clock import db_now
from apps.costs import services as costs
from apps.costs.models import UsageLog
from apps.probes import services as probes
from apps.probes.models import ProbeShard


def _running_shard(world, name, beat):
    plan = probes.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name=name,
        profile={"stages": [{"kind": "poisson", "rate": 1, "duration": 5}]},
    )
    shard = probes.probe_run_start(access=world.access(world.owner), plan=plan).shards.get()
    ProbeShard.objects.filter(pk=shard.pk).update(status="running", heartbeat_at=beat, claimed_at=beat)
    return shard


def test_the_database_clock_is_aware_and_close_to_this_machines(db):
    assert abs((db_now() - timezone.now()).total_seconds()) < 5


def test_a_reaper_whose_clock_jumped_ahead_reaps_no_live_shard_and_still_reaps_a_dead_one(world):
    live = _running_shard(world, "live", db_now())
    dead = _running_shard(world, "dead", db_now() - timedelta(minutes=5))
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):  # this machine's clock only
        assert probes.probe_runs_reap() == 1
    assert ProbeShard.objects.get(pk=live.pk).status == "running"
    assert ProbeShard.objects.get(pk=dead.pk).status == "failed"


def test_a_usage_analysis_alive_by_the_database_clock_survives_a_reaper_ahead_in_time(world):
    log = UsageLog.objects.create(
        project=world.project, name="u.csv", status="analysing", claim="w", attempts=1, heartbeat_at=db_now()
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert costs.usage_logs_reap() == 0
    assert UsageLog.objects.get(pk=log.pk).status == "analysing"
