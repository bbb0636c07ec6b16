"""A client-saturated run is re-run by itself, once by default, with a note on both runs."""

import pytest

from apps.core.models import AuditEvent
from apps.probes import services
from apps.probes.models import ProbeRun, ShardStatus
from apps.probes.saturation import rerun_reason
from apps.probes.tasks import probe_run_rerun_task
from tests.readiness_helpers import after_run

SATURATED = {
    "client_saturated": True,
    "saturation_threshold_ms": 5.0,
    "event_loop_lag_ms": {"p99": 12.5},
    "overall": {"schedule_lag_ms": {"p99": 3.0}},
}


@pytest.mark.parametrize(
    "status, summary, config, allowed, expected",
    [
        ("succeeded", SATURATED, {}, 1, "event loop lagged p99 12.5 ms (over the 5 ms threshold)"),
        (
            "succeeded",
            {**SATURATED, "event_loop_lag_ms": {"p99": 1.0}, "overall": {"schedule_lag_ms": {"p99": 9.0}}},
            {},
            1,
            "send schedule lagged p99 9 ms",
        ),
        ("succeeded", {**SATURATED, "client_saturated": False}, {}, 1, None),  # trustworthy: nothing to redo
        ("cancelled", SATURATED, {}, 1, None),  # someone stopped it on purpose
        ("failed", SATURATED, {}, 1, None),  # a failure has its own finding
        ("succeeded", SATURATED, {}, 0, None),  # re-runs turned off
        ("succeeded", SATURATED, {"rerun_of": {"run": 7, "attempt": 1}}, 1, None),  # already the re-run
        ("succeeded", SATURATED, {"rerun_of": {"run": 7, "attempt": 1}}, 2, "event loop"),  # a second one allowed
    ],
)
def test_a_run_is_re_run_only_when_it_completed_saturated_and_re_runs_are_left(
    status, summary, config, allowed, expected
):
    reason = rerun_reason(status=status, summary=summary, config=config, allowed=allowed)
    if expected is None:
        assert reason is None
    else:
        assert expected in reason


def _finish_saturated(run: ProbeRun) -> None:
    """What a shard on a busy machine reports: it finished, and its event loop ran 12 ms late."""
    run.shards.update(status=ShardStatus.DONE, loop_lag_ms={"n": 500, "p50": 0.2, "p99": 12.0})
    assert services.probe_run_finalize(run.pk)
    after_run(run)  # the tasks finalizing queued: the re-run among them
    run.refresh_from_db()


@pytest.fixture
def plan(world):
    return services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="nightly",
        profile={"stages": [{"kind": "poisson", "rate": 5, "duration": 2}]},
        max_tokens=8,
        slo={"ttft_p95_ms": 1000},
    )


def test_a_saturated_run_is_re_run_once_with_a_note_on_both_runs_and_in_the_audit_log(world, plan, settings):
    settings.READINESS_PROBE_SATURATED_RERUNS = 1
    first = services.probe_run_start(access=world.access(world.member), plan=plan)
    _finish_saturated(first)
    assert first.summary["client_saturated"] is True

    rerun = ProbeRun.objects.exclude(pk=first.pk).get(plan=plan)
    assert rerun.status == "queued" and rerun.organization_id == world.org.pk
    assert rerun.config["rerun_of"]["run"] == first.pk and rerun.config["rerun_of"]["attempt"] == 1
    assert "event loop lagged p99 12 ms" in rerun.config["rerun_of"]["reason"]
    assert first.summary["rerun"]["run"] == rerun.pk
    assert f"Re-run automatically as run #{rerun.pk}" in first.summary["rerun"]["note"]
    event = AuditEvent.objects.get(action="probe_run.rerun")
    assert event.actor_label == "system" and event.object_id == str(rerun.pk)
    assert event.changes["rerun_of"] == [None, first.pk]
    probe_run_rerun_task(first.pk)  # the same task delivered twice: still one re-run
    assert ProbeRun.objects.filter(plan=plan).count() == 2

    # The re-run is saturated too: it is left as it is, with the page's remedy; no third run.
    _finish_saturated(rerun)
    assert ProbeRun.objects.filter(plan=plan).count() == 2
    assert "rerun" not in rerun.summary


def test_no_run_is_re_run_when_re_runs_are_turned_off(world, plan, settings):
    settings.READINESS_PROBE_SATURATED_RERUNS = 0
    _finish_saturated(services.probe_run_start(access=world.access(world.owner), plan=plan))
    assert ProbeRun.objects.filter(plan=plan).count() == 1
    assert not AuditEvent.objects.filter(action="probe_run.rerun").exists()


def test_a_re_run_beyond_the_orgs_limits_is_not_started_and_the_run_says_why(world, plan, settings):
    settings.READINESS_PROBE_SATURATED_RERUNS = 1
    first = services.probe_run_start(access=world.access(world.owner), plan=plan)
    settings.READINESS_PROBE_MAX_RATE = 1  # lowered while the run was going: the plan's 5 req/s is over it
    _finish_saturated(first)
    assert ProbeRun.objects.filter(plan=plan).count() == 1
    assert first.summary["rerun"]["run"] is None
    assert first.summary["rerun"]["note"].startswith("Not re-run automatically: ")
    assert "rate" in first.summary["rerun"]["note"]


def test_an_outsider_gets_404_on_an_automatic_re_run(client, world, plan, settings):
    settings.READINESS_PROBE_SATURATED_RERUNS = 1
    first = services.probe_run_start(access=world.access(world.owner), plan=plan)
    _finish_saturated(first)
    rerun = ProbeRun.objects.exclude(pk=first.pk).get(plan=plan)
    client.force_login(world.outsider)
    for slug in ("acme", "globex"):
        assert client.get(f"/o/{slug}/runs/{rerun.pk}/").status_code == 404
    client.force_login(world.viewer)
    assert client.get(f"/o/acme/runs/{rerun.pk}/").status_code == 200
