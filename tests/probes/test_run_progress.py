"""ProbeRun.progress(): the live figures the run page polls and the API's run detail shows."""

from datetime import timedelta

from django.utils import timezone

from apps.probes import services as probes
from apps.probes.models import RunStatus


def two_shard_run(world):
    plan = probes.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="two shards",
        profile={"stages": [{"kind": "poisson", "rate": 2, "duration": 100}]},
        parallelism=2,
    )
    return probes.probe_run_start(access=world.access(world.owner), plan=plan)


def test_a_queued_run_has_no_elapsed_time_and_an_empty_bar(world):
    progress = two_shard_run(world).progress()

    assert progress["status"] == RunStatus.QUEUED
    assert progress["elapsed_s"] is None and progress["remaining_s"] is None
    assert progress["fraction"] == 0.0
    assert [s["index"] for s in progress["shards"]] == [0, 1]


def test_a_running_run_sums_its_shards_and_takes_the_worst_recent_ttft(world):
    run = two_shard_run(world)
    run.shards.filter(index=0).update(sent=10, completed=8, errors=1, ttft_p95_recent_ms=120.04)
    run.shards.filter(index=1).update(sent=5, completed=5, errors=0, ttft_p95_recent_ms=None)
    now = timezone.now()
    run.status, run.started_at, run.start_at = RunStatus.RUNNING, now - timedelta(seconds=25), now.timestamp() - 25

    progress = run.progress()

    assert (progress["sent"], progress["completed"], progress["errors"]) == (15, 13, 1)
    assert progress["ttft_p95_recent_ms"] == 120.0
    assert 24 <= progress["elapsed_s"] <= 30
    assert progress["remaining_s"] == round(run.planned_duration_s - progress["elapsed_s"], 1)
    assert 0 < progress["fraction"] < 1
    assert progress["cancel_requested"] is False


def test_a_cancelled_run_shows_how_far_it_got_not_a_full_bar(world):
    run = two_shard_run(world)
    now = timezone.now()
    run.status, run.start_at = RunStatus.CANCELLED, now.timestamp() - 30
    run.started_at, run.finished_at, run.cancel_requested_at = now - timedelta(seconds=30), now, now

    progress = run.progress()

    assert progress["elapsed_s"] == 30.0
    assert progress["remaining_s"] is None
    assert progress["fraction"] == round(30 / run.planned_duration_s, 4)
    assert progress["cancel_requested"] is True


def test_a_succeeded_run_shows_a_full_bar(world):
    run = two_shard_run(world)
    now = timezone.now()
    run.status, run.start_at = RunStatus.SUCCEEDED, now.timestamp() - 5
    run.started_at, run.finished_at = now - timedelta(seconds=5), now

    assert run.progress()["fraction"] == 1.0


def test_the_polled_progress_and_the_api_run_detail_show_the_models_figures(client, world):
    run = two_shard_run(world)
    run.shards.filter(index=1).update(sent=7, completed=6, errors=1, worker="w1")
    client.force_login(world.owner)

    polled = client.get(f"/o/{world.org.slug}/runs/{run.pk}/progress/").json()
    detail = client.get(f"/api/v1/probe-runs/{run.pk}/").json()

    assert polled == detail["progress"] == run.progress()
    assert polled["sent"] == 7 and polled["shards"][1]["worker"] == "w1"
