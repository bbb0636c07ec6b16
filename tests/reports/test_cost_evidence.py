"""The cost projection reads only a run that counts as evidence: a client-saturated or cancelled
run measured less than the server can do, so its goodput would project a cost nobody will pay."""

from apps.costs.services import cost_for
from apps.probes.selectors import latest_runs
from tests.probes.test_compare_page import finished_run, plan  # noqa: F401  (the plan fixture)


def test_a_saturated_run_is_never_the_run_a_cost_is_projected_from(world, plan):  # noqa: F811
    counted = finished_run(world, plan, minutes_ago=30)
    assert cost_for(world.project, latest_runs(world.project))["run_id"] == counted.pk

    saturated = finished_run(world, plan)
    saturated.summary = {**saturated.summary, "client_saturated": True}
    saturated.save(update_fields=["summary"])

    assert latest_runs(world.project) == [saturated]  # the plan's newest run ...
    assert cost_for(world.project, latest_runs(world.project)) is None  # ... proves no capacity


def test_the_newest_run_that_counts_is_projected_across_plans(world, plan):  # noqa: F811
    from apps.probes import services as probes

    other = probes.probe_plan_create(
        access=world.access(world.owner), endpoint=world.endpoint, name="second", profile=plan.profile
    )
    older = finished_run(world, other, minutes_ago=30)
    newest = finished_run(world, plan)
    newest.summary = {**newest.summary, "client_saturated": True}
    newest.save(update_fields=["summary"])

    assert cost_for(world.project, latest_runs(world.project))["run_id"] == older.pk
