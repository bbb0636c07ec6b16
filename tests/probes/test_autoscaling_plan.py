"""The autoscaling plan type in the app: validation, a real run on the simulator's autoscaling
scenario, the analysis stored with the run and shown on its page."""

import pytest

from apps.core.errors import ApplicationError
from apps.probes import services
from apps.probes.execution import shard_execute
from apps.projects import services as projects
from apps.simulator.scenarios import scenario

SPEC = {"base_rate": 5, "peak_rate": 40, "base_s": 4, "hold_s": 12, "after_s": 8}


def _run(access, plan):
    """Start a run and do the worker's job in-process."""
    run = services.probe_run_start(access=access, plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=plan.endpoint.project.organization_id)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize(
    "spec, message",
    [
        ({**SPEC, "peak_rate": 5}, "above the base rate"),
        ({**SPEC, "hold_s": 0}, "positive"),
        ({"base_rate": 5}, "missing: base_s, hold_s, after_s"),
        ({**SPEC, "extra": 1}, "unknown: extra"),
        ({**SPEC, "peak_multiple": 3}, "Give either peak_rate"),
        ({k: v for k, v in SPEC.items() if k != "peak_rate"}, "Give either peak_rate"),
        ({**{k: v for k, v in SPEC.items() if k != "peak_rate"}, "peak_multiple": 1}, "above 1"),
        ({**SPEC, "canary_rate": -1}, "canary_rate may be 0"),
        ({**SPEC, "canary_rate": "1"}, "positive numbers"),
    ],
)
def test_a_bad_autoscaling_profile_is_refused_with_the_reason(world, spec, message):
    with pytest.raises(ApplicationError) as exc:
        services.probe_plan_create(
            access=world.access(world.owner), endpoint=world.endpoint, name="as", profile={"autoscaling": spec}
        )
    assert message in str(exc.value.detail)


def test_an_autoscaling_run_stores_its_kpis_ranking_and_policy(client, world, started):
    sim = started(
        scenario(
            "autoscaling",
            slots=4,
            max_replicas=4,
            decision_interval_s=1.0,
            cold_start_s=4.0,
            scale_down_window_s=3.0,
            target_waiting_per_replica=2.0,
        )
    )
    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(
        access=owner,
        endpoint=world.endpoint,
        base_url=sim.base_url,
        model_name=sim.sim.config.model,
        max_replicas=4,
        metrics_url=sim.base_url.removesuffix("/v1") + "/metrics",
    )
    plan = services.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="autoscale",
        max_tokens=20,
        profile={"autoscaling": SPEC},
        slo={"ttft_p95_ms": 300},
    )
    run = _run(owner, plan)
    assert run.status == "succeeded"
    analysis = run.summary["autoscaling"]
    k = analysis["kpis"]
    assert k["replica_metrics"] and k["t_decide_s"] is not None and k["t_ready_s"] >= k["t_decide_s"]
    assert [s["stage"] for s in run.summary["stages"]] == ["base", "step up", "step down"]
    assert analysis["ranking"] and analysis["recommendation"]["keda_yaml"].startswith("apiVersion: keda.sh/")
    # The canary (1/s by default) ran beside the load, and is kept out of the load's figures.
    canary = run.summary["canary"]
    assert 20 <= canary["requests"] <= 25 and canary["errors"] == {}
    assert run.summary["overall"]["requests"] == sum(s["requests"] for s in run.summary["stages"])
    assert run.request_count == run.summary["overall"]["requests"] + canary["requests"]
    assert k["canary_requests"] == canary["requests"] and k["canary_ttft_p95_base_ms"] > 0
    assert len(analysis["timeline"]["canary_ttft_p95_ms"]) == len(analysis["timeline"]["t"])
    client.force_login(world.viewer)
    page = client.get(f"/o/acme/runs/{run.pk}/").content.decode()
    assert 'data-testid="autoscaling-kpis"' in page and "ScaledObject" in page and 'id="fig-autoscaling"' in page
    assert 'data-testid="canary-kpis"' in page and "canary p95 TTFT" in page
    # The verdict of an autoscaling run is its recovery, not the overall p95 its step breaches on purpose.
    assert 'data-testid="recovery-pill"' in page and "SLO missed" not in page


def test_a_step_given_as_a_multiple_of_capacity_takes_the_capacity_from_the_endpoints_latest_sweep(world, started):
    sim = started(scenario("steady", slots=4, max_replicas=1))
    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(
        access=owner, endpoint=world.endpoint, base_url=sim.base_url, model_name=sim.sim.config.model
    )
    spec = {"base_rate": 1, "peak_multiple": 2.5, "base_s": 2, "hold_s": 3, "after_s": 2, "canary_rate": 0}
    plan = services.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="as",
        max_tokens=8,
        profile={"autoscaling": spec},
        slo={"ttft_p95_ms": 500},
    )
    # No sweep yet: a clear refusal, nothing queued.
    with pytest.raises(ApplicationError) as exc:
        services.probe_run_start(access=owner, plan=plan)
    assert exc.value.status == 409 and "run a sweep plan first" in str(exc.value)
    assert not plan.runs.exists()
    sweep_spec = {"start_rate": 2, "step_duration": 2, "step_warmup": 0.5, "max_steps": 3, "refine_steps": 0}
    sweep_plan = services.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="sweep",
        max_tokens=8,
        profile={"sweep": sweep_spec},
        slo={"ttft_p95_ms": 500},
    )
    sweep = _run(owner, sweep_plan)
    capacity = sweep.summary["sweep"]["max_rate_meeting_slo"]
    assert sweep.status == "succeeded" and capacity
    run = _run(owner, plan)
    resolved = run.config["profile"]["autoscaling"]
    assert resolved["replica_capacity_rps"] == round(capacity, 3)
    assert resolved["capacity_source"] == f"sweep run #{sweep.pk}"
    step = run.summary["stages"][1]
    assert step["stage"] == "step up" and run.summary["autoscaling"]["peak_rate"] == round(2.5 * capacity, 3)
    assert "canary" not in run.summary  # canary_rate 0 turns it off
    assert plan.profile == {"autoscaling": spec}  # the plan itself is unchanged: the next run looks again


def test_an_autoscaling_step_beyond_the_org_rate_limit_is_refused_at_start(world):
    from apps.probes.models import ProbeRun

    owner = world.access(world.owner)
    services.probe_limits_update(access=owner, org=world.org, max_rate=50)
    spec = {"base_rate": 1, "peak_multiple": 3, "replica_capacity_rps": 30, "base_s": 2, "hold_s": 3, "after_s": 2}
    with pytest.raises(ApplicationError) as exc:
        services.probe_plan_create(access=owner, endpoint=world.endpoint, name="as", profile={"autoscaling": spec})
    assert "max rate of 50/s" in str(exc.value)
    assert not ProbeRun.objects.exists()


def test_another_orgs_sweep_never_sets_this_endpoints_capacity(world, started):
    sim = started(scenario("steady", slots=4, max_replicas=1))
    outsider = world.access(world.outsider)
    other = projects.endpoint_update(
        access=outsider, endpoint=world.other_endpoint, base_url=sim.base_url, model_name=sim.sim.config.model
    )
    sweep_spec = {"start_rate": 2, "step_duration": 2, "step_warmup": 0.5, "max_steps": 2, "refine_steps": 0}
    sweep_plan = services.probe_plan_create(
        access=outsider,
        endpoint=other,
        name="sweep",
        max_tokens=8,
        profile={"sweep": sweep_spec},
        slo={"ttft_p95_ms": 500},
    )
    run = _run(outsider, sweep_plan)
    assert run.summary["sweep"]["max_rate_meeting_slo"]
    owner = world.access(world.owner)
    spec = {"base_rate": 1, "peak_multiple": 2, "base_s": 2, "hold_s": 3, "after_s": 2}
    plan = services.probe_plan_create(access=owner, endpoint=world.endpoint, name="as", profile={"autoscaling": spec})
    with pytest.raises(ApplicationError) as exc:
        services.probe_run_start(access=owner, plan=plan)
    assert exc.value.status == 409


def test_an_autoscaling_run_counts_for_the_decision_by_its_recovery_and_shows_in_the_report(client, world, started):
    from apps.reports.evaluation import collect_inputs
    from apps.reports.services import report_create

    sim = started(
        scenario(
            "autoscaling",
            slots=4,
            max_replicas=4,
            decision_interval_s=1.0,
            cold_start_s=4.0,
            scale_down_window_s=3.0,
            target_waiting_per_replica=2.0,
        )
    )
    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(
        access=owner,
        endpoint=world.endpoint,
        base_url=sim.base_url,
        model_name=sim.sim.config.model,
        max_replicas=4,
        metrics_url=sim.base_url.removesuffix("/v1") + "/metrics",
    )
    plan = services.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="autoscale",
        max_tokens=20,
        profile={"autoscaling": SPEC},
        slo={"ttft_p95_ms": 300},
    )
    run = _run(owner, plan)
    recovered = run.summary["autoscaling"]["kpis"]["recovered_before_step_down"]
    [probe] = collect_inputs(world.project).probes
    # The transient breach itself is not a missed SLO; a client that lagged on a busy machine makes
    # the run no evidence at all (apps/probes/verdict.py).
    assert probe.slo_met is (None if run.summary["client_saturated"] else recovered)
    report = report_create(access=owner, project=world.project)
    [entry] = report.snapshot["probes"]
    assert entry["autoscaling"]["t_ready_s"] == run.summary["autoscaling"]["kpis"]["t_ready_s"]
    client.force_login(world.owner)
    assert 'data-testid="report-autoscaling"' in client.get(f"/o/acme/reports/{report.pk}/").content.decode()
