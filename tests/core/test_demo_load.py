"""The demo's probe load is sized to the machine, and lasts as long as the README says everywhere."""

import pytest

from apps.demo.management.commands.seed_demo import demo_load
from apps.probes import plans


@pytest.mark.parametrize("cpus", [1, 2, 3, 4, 16])
def test_the_demo_plans_last_what_the_readme_says_on_any_machine(cpus):
    load = demo_load(cpus)
    baseline = plans.planned_duration(*plans.parse_profile(load["baseline"]))
    autoscaling = plans.planned_duration(*plans.parse_profile(load["autoscaling"]))
    assert (baseline, autoscaling) == (40, 140)  # "baseline (40 s), then autoscaling (2 min 20 s)"
    assert load["parallelism"] == 2  # one client process per worker slot of make run's probe worker


def test_a_small_machine_gets_half_the_load_and_replicas_of_half_the_slots():
    small, large = demo_load(2), demo_load(8)
    assert [s["rate"] for s in small["baseline"]["stages"]] == [3, 8]
    assert [s["rate"] for s in large["baseline"]["stages"]] == [4, 12]
    step_small, step_large = small["autoscaling"]["autoscaling"], large["autoscaling"]["autoscaling"]
    assert (step_small["base_rate"], step_small["peak_rate"], small["autoscaling_slots"]) == (2, 12, 4)
    assert (step_large["base_rate"], step_large["peak_rate"], large["autoscaling_slots"]) == (3, 30, 8)
    # The step still needs several replicas on both: a batch slot serves about 1.4 req/s of these
    # 64-token answers, and the peak asks at least 3 req/s per slot of one replica.
    for load in (small, large):
        assert load["autoscaling"]["autoscaling"]["peak_rate"] / load["autoscaling_slots"] >= 3
