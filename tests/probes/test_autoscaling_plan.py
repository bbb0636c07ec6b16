"""The autoscaling plan type in the app: validation, a real run on the simulator's autoscaling
scenario, the analysis stored with the run and shown on its page."""

import pytest

from apps.core.errors import ApplicationError
from apps.probes import services
from apps.probes.execution import shard_execute
from apps.projects import services as projects
from apps.simulator.scenarios import scenario

SPEC = {"base_rate": 5, "peak_rate": 40, "base_s": 4, "hold_s": 12, "after_s": 8}


@pytest.mark.parametrize(
    "spec, message",
    [({**SPEC, "peak_rate": 5}, "above the base rate"), ({**SPEC, "hold_s": 0}, "positive"),
     ({"base_rate": 5}, "exactly"), ({**SPEC, "extra": 1}, "exactly")],
)  # fmt: skip
def test_a_bad_autoscaling_profile_is_refused_with_the_reason(world, spec, message):
    with pytest.raises(ApplicationError) as exc:
        services.probe_plan_create(access=world.access(world.owner), endpoint=world.endpoint, name="as",
                                   profile={"autoscaling": spec})  # fmt: skip
    assert message in str(exc.value.detail)


def test_an_autoscaling_run_stores_its_kpis_ranking_and_policy(client, world, started):
    sim = started(scenario("autoscaling", slots=4, max_replicas=4, decision_interval_s=1.0, cold_start_s=4.0,
                           scale_down_window_s=3.0, target_waiting_per_replica=2.0))  # fmt: skip
    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(access=owner, endpoint=world.endpoint, base_url=sim.base_url,
                                        model_name=sim.sim.config.model, max_replicas=4,
                                        metrics_url=sim.base_url.removesuffix("/v1") + "/metrics")  # fmt: skip
    plan = services.probe_plan_create(access=owner, endpoint=endpoint, name="autoscale", max_tokens=20,
                                      profile={"autoscaling": SPEC}, slo={"ttft_p95_ms": 300})  # fmt: skip
    run = services.probe_run_start(access=owner, plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    assert run.status == "succeeded"
    analysis = run.summary["autoscaling"]
    k = analysis["kpis"]
    assert k["replica_metrics"] and k["t_decide_s"] is not None and k["t_ready_s"] >= k["t_decide_s"]
    assert [s["stage"] for s in run.summary["stages"]] == ["base", "step up", "step down"]
    assert analysis["ranking"] and analysis["recommendation"]["keda_yaml"].startswith("apiVersion: keda.sh/")
    client.force_login(world.viewer)
    page = client.get(f"/o/acme/runs/{run.pk}/").content.decode()
    assert 'data-testid="autoscaling-kpis"' in page and "ScaledObject" in page and 'id="fig-autoscaling"' in page


def test_an_autoscaling_run_counts_for_the_decision_by_its_recovery_and_shows_in_the_report(client, world,
                                                                                              started):  # fmt: skip
    from apps.reports.evaluation import collect_inputs
    from apps.reports.services import report_create

    sim = started(scenario("autoscaling", slots=4, max_replicas=4, decision_interval_s=1.0, cold_start_s=4.0,
                           scale_down_window_s=3.0, target_waiting_per_replica=2.0))  # fmt: skip
    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(access=owner, endpoint=world.endpoint, base_url=sim.base_url,
                                        model_name=sim.sim.config.model, max_replicas=4,
                                        metrics_url=sim.base_url.removesuffix("/v1") + "/metrics")  # fmt: skip
    plan = services.probe_plan_create(access=owner, endpoint=endpoint, name="autoscale", max_tokens=20,
                                      profile={"autoscaling": SPEC}, slo={"ttft_p95_ms": 300})  # fmt: skip
    run = services.probe_run_start(access=owner, plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    recovered = run.summary["autoscaling"]["kpis"]["t_recover_s"] is not None
    [probe] = collect_inputs(world.project).probes
    assert probe.slo_met is recovered  # the transient breach itself is not a missed SLO
    report = report_create(access=owner, project=world.project)
    [entry] = report.snapshot["probes"]
    assert entry["autoscaling"]["t_ready_s"] == run.summary["autoscaling"]["kpis"]["t_ready_s"]
    client.force_login(world.owner)
    assert 'data-testid="report-autoscaling"' in client.get(f"/o/acme/reports/{report.pk}/").content.decode()
