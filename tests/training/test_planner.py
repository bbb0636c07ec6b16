"""Cost planner: on-demand estimates, Young/Daly intervals, Daly's expected time and the Monte Carlo check.

Expected values are computed here from the published formulas, written out independently of the module.
"""

import math

import pytest

from apps.training.analysis import planner
from apps.training.analysis.planner import (
    Job,
    cheapest_meeting_deadline,
    daly_interval,
    estimate,
    estimates,
    expected_wall_time,
    job_mtbf_s,
    monte_carlo,
    spot_estimate,
    tokens_for_epochs,
    young_interval,
)
from apps.training.analysis.scaling import Measurement, fit

HOUR = 3600.0

# (checkpoint δ s, MTBF M s, restart R s): frequent to rare preemptions, cheap to costly checkpoints.
SPOT_CASES = [
    (60.0, HOUR, 120.0),
    (300.0, 4 * HOUR, 600.0),
    (30.0, 600.0, 60.0),
    (600.0, 1000.0, 300.0),
]


def young_by_hand(delta, mtbf):
    return (2 * delta * mtbf) ** 0.5


def daly_by_hand(delta, mtbf):
    if delta >= 2 * mtbf:
        return mtbf
    x = delta / (2 * mtbf)
    return (2 * delta * mtbf) ** 0.5 * (1 + x**0.5 / 3 + x / 9) - delta


def daly_wall_time_by_hand(work, tau, delta, restart, mtbf):
    return mtbf * math.e ** (restart / mtbf) * (math.e ** ((tau + delta) / mtbf) - 1) * work / tau


@pytest.mark.parametrize(
    ("delta", "mtbf", "young", "daly"),
    [
        # Values worked out by hand: √(2·60·3600) = 657.27; x = 60/7200.
        (60.0, HOUR, 657.267069006199, 657.267069006199 * (1 + (60 / 7200) ** 0.5 / 3 + 60 / 7200 / 9) - 60),
        (300.0, 4 * HOUR, young_by_hand(300.0, 4 * HOUR), daly_by_hand(300.0, 4 * HOUR)),
        (30.0, 600.0, young_by_hand(30.0, 600.0), daly_by_hand(30.0, 600.0)),
        (1000.0, 400.0, young_by_hand(1000.0, 400.0), 400.0),  # δ ≥ 2M: Daly falls back to M
    ],
)
def test_young_and_daly_intervals_match_their_closed_forms(delta, mtbf, young, daly):
    assert young_interval(delta, mtbf) == pytest.approx(young, rel=1e-12)
    assert daly_interval(delta, mtbf) == pytest.approx(daly, rel=1e-12)


@pytest.mark.parametrize(("delta", "mtbf", "restart"), SPOT_CASES)
@pytest.mark.parametrize("work", [HOUR, 24 * HOUR])
def test_expected_wall_time_matches_dalys_formula(delta, mtbf, restart, work):
    tau = daly_interval(delta, mtbf)

    assert expected_wall_time(work, tau, delta, restart, mtbf) == pytest.approx(
        daly_wall_time_by_hand(work, tau, delta, restart, mtbf), rel=1e-12
    )


def test_expected_wall_time_tends_to_work_plus_checkpoints_when_preemptions_are_rare():
    work, tau, delta = 10 * HOUR, HOUR, 60.0

    assert expected_wall_time(work, tau, delta, 300.0, 1e12) == pytest.approx(work * (1 + delta / tau), rel=1e-6)


def test_expected_wall_time_is_infinite_when_segments_cannot_finish():
    assert expected_wall_time(HOUR, 1e6, 60.0, 60.0, 1.0) == math.inf


@pytest.mark.parametrize(("delta", "mtbf", "restart"), SPOT_CASES)
def test_monte_carlo_mean_agrees_with_daly(delta, mtbf, restart):
    tau = daly_interval(delta, mtbf)
    work = 20 * tau
    expected = daly_wall_time_by_hand(work, tau, delta, restart, mtbf)

    simulated = monte_carlo(work, tau, delta, restart, mtbf, runs=5000, seed=7)

    assert simulated.mean_s == pytest.approx(expected, rel=0.03)
    assert simulated.mean_preemptions == pytest.approx(expected / mtbf, rel=0.05)
    assert simulated.p50_s <= simulated.p90_s
    assert simulated.unfinished_runs == 0


def test_monte_carlo_is_deterministic_for_a_seed():
    run = [HOUR, 600.0, 60.0, 120.0, HOUR]

    assert monte_carlo(*run, runs=200, seed=3) == monte_carlo(*run, runs=200, seed=3)
    assert monte_carlo(*run, runs=200, seed=3) != monte_carlo(*run, runs=200, seed=4)


def test_monte_carlo_stops_runs_at_max_wall_s():
    simulated = monte_carlo(HOUR, 600.0, 60.0, 120.0, 300.0, runs=100, seed=1, max_wall_s=2 * HOUR)

    assert simulated.unfinished_runs > 0
    assert simulated.p90_s == 2 * HOUR


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"runs": 0}, "runs"),
        ({"runs": planner.MAX_RUNS + 1}, "at most"),
        ({"mtbf_s": 0.0}, "mtbf_s"),
        ({"interval_s": 1e-3, "runs": 100_000}, "segments"),
        ({"max_wall_s": 1e12}, "preemptions"),
        ({"interval_s": 1e6, "mtbf_s": 1.0}, "too often"),
    ],
)
def test_monte_carlo_refuses_unbounded_or_bad_simulations(arguments, message):
    run = {"work_s": HOUR, "interval_s": 600.0, "checkpoint_s": 60.0, "restart_s": 120.0, "mtbf_s": HOUR}

    with pytest.raises(ValueError, match=message):
        monte_carlo(**(run | arguments))


def test_spot_estimate_follows_from_the_expected_wall_time():
    delta, mtbf, restart, work = 60.0, HOUR, 120.0, 10 * HOUR
    tau = daly_by_hand(delta, mtbf)
    wall = daly_wall_time_by_hand(work, tau, delta, restart, mtbf)

    spot = spot_estimate(work, checkpoint_s=delta, restart_s=restart, mtbf_s=mtbf, gpus=16, usd_per_gpu_hour=1.5)

    assert spot.interval_s == pytest.approx(tau)
    assert spot.wall_s == pytest.approx(wall)
    assert spot.lost_s == pytest.approx(wall - work - work / tau * delta)
    assert spot.lost_s > 0
    assert spot.preemptions == pytest.approx(wall / mtbf)
    assert spot.cost_usd == pytest.approx(wall / HOUR * 16 * 1.5)


def test_job_mtbf_adds_the_instances_preemption_rates():
    assert job_mtbf_s(8 * HOUR, 4) == pytest.approx(2 * HOUR)


# --- on demand -------------------------------------------------------------------------------------


def amdahl_fit():
    """Step time 100·(0.05 + 0.95/N) s for a fixed global batch."""
    return fit([Measurement(n, 100 * (0.05 + 0.95 / n)) for n in (1, 2, 4, 8)], "amdahl")


def test_estimate_with_a_fixed_global_batch():
    job = Job(total_tokens=tokens_for_epochs(2, 5e8), usd_per_gpu_hour=2.0, global_batch_tokens=1e6)

    result = estimate(amdahl_fit(), job, 8)

    step_s = 100 * (0.05 + 0.95 / 8)
    assert result.steps == 1000
    assert result.wall_s == pytest.approx(1000 * step_s)
    assert result.gpu_hours == pytest.approx(1000 * step_s * 8 / HOUR)
    assert result.cost_usd == pytest.approx(result.gpu_hours * 2.0)


def test_estimate_with_a_batch_per_gpu_rounds_steps_up():
    job = Job(total_tokens=1e6 + 1, usd_per_gpu_hour=2.0, per_gpu_batch_tokens=1e5)

    assert estimate(amdahl_fit(), job, 4).steps == 3  # 4e5 tokens a step: 2.5 steps take 3


def test_cheapest_meeting_deadline():
    job = Job(total_tokens=1e9, usd_per_gpu_hour=2.0, global_batch_tokens=1e6)
    by_gpus = {e.gpus: e for e in estimates(amdahl_fit(), job, [1, 2, 4, 8, 16])}

    chosen = cheapest_meeting_deadline(amdahl_fit(), job, [1, 2, 4, 8, 16], deadline_s=by_gpus[4].wall_s)

    # More GPUs cost more in total (the serial part is paid on every GPU), so the fewest that are fast enough win.
    assert chosen == by_gpus[4]
    assert cheapest_meeting_deadline(amdahl_fit(), job, [1, 2], deadline_s=60.0) is None


@pytest.mark.parametrize(
    "arguments",
    [
        {"total_tokens": 0, "usd_per_gpu_hour": 2.0, "global_batch_tokens": 1e6},
        {"total_tokens": 1e9, "usd_per_gpu_hour": -1.0, "global_batch_tokens": 1e6},
        {"total_tokens": 1e9, "usd_per_gpu_hour": 2.0},
        {"total_tokens": 1e9, "usd_per_gpu_hour": 2.0, "global_batch_tokens": 1e6, "per_gpu_batch_tokens": 1e4},
        {"total_tokens": 1e9, "usd_per_gpu_hour": 2.0, "per_gpu_batch_tokens": math.nan},
    ],
)
def test_bad_jobs_raise_value_error(arguments):
    with pytest.raises(ValueError):
        Job(**arguments)


@pytest.mark.parametrize(
    "call",
    [
        lambda: young_interval(0.0, HOUR),
        lambda: young_interval(60.0, -HOUR),
        lambda: daly_interval(60.0, math.inf),
        lambda: expected_wall_time(HOUR, 600.0, 60.0, -1.0, HOUR),
        lambda: expected_wall_time(HOUR, 0.0, 60.0, 1.0, HOUR),
        lambda: job_mtbf_s(HOUR, 0),
        lambda: tokens_for_epochs(0, 1e9),
        lambda: spot_estimate(HOUR, checkpoint_s=60.0, restart_s=60.0, mtbf_s=HOUR, gpus=0, usd_per_gpu_hour=1.0),
        lambda: cheapest_meeting_deadline(
            amdahl_fit(), Job(1e9, 2.0, global_batch_tokens=1e6), [1], deadline_s=math.nan
        ),
    ],
)
def test_bad_inputs_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
