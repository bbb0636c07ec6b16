"""Scaling analysis: efficiency, MFU, the step-time split and the two fitted models."""

import math
import random

import pytest

from apps.training.analysis.scaling import (
    Measurement,
    best_fit,
    fit,
    mfu,
    scaling_efficiency,
    speedup,
    split,
    throughput,
)

TRAINING_GPUS = (1, 2, 4, 8, 16, 32)
HELD_OUT_GPUS = 64


def amdahl_time(gpus, t1_s=100.0, serial_fraction=0.05):
    return t1_s * (serial_fraction + (1 - serial_fraction) / gpus)


def weak_scaling_time(gpus, compute_s=1.0, allreduce_s=0.5, overhead_s=0.05):
    """A fixed batch per GPU: the step's compute does not shrink, the gradient all-reduce grows."""
    return compute_s + allreduce_s * (gpus - 1) / gpus + overhead_s


def noisy_measurements(step_time, seed, noise=0.02):
    rng = random.Random(seed)
    return [Measurement(gpus, step_time(gpus) * (1 + rng.uniform(-noise, noise))) for gpus in TRAINING_GPUS]


@pytest.mark.parametrize(
    ("model", "step_time"),
    [("amdahl", amdahl_time), ("allreduce", amdahl_time), ("allreduce", weak_scaling_time)],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fit_predicts_a_held_out_gpu_count_within_15_percent(model, step_time, seed):
    fitted = fit(noisy_measurements(step_time, seed), model)

    predicted = fitted.predict(HELD_OUT_GPUS)

    assert predicted == pytest.approx(step_time(HELD_OUT_GPUS), rel=0.15)
    assert fitted.holdout_error < 0.15


def test_amdahl_fit_recovers_its_parameters_from_exact_data():
    fitted = fit([Measurement(n, amdahl_time(n)) for n in TRAINING_GPUS], "amdahl")

    assert fitted.params == pytest.approx({"t1_s": 100.0, "serial_fraction": 0.05})


def test_allreduce_fit_keeps_coefficients_non_negative_and_finds_growth():
    fitted = fit([Measurement(n, weak_scaling_time(n)) for n in TRAINING_GPUS], "allreduce")

    # Step times alone identify t(1) = compute + overhead and t(∞) = all-reduce + overhead.
    params = fitted.params
    assert params["compute_s"] + params["overhead_s"] == pytest.approx(weak_scaling_time(1))
    assert params["allreduce_s"] + params["overhead_s"] == pytest.approx(1.0 + 0.5 + 0.05)
    assert min(fitted.coefficients) >= 0


def test_best_fit_picks_the_model_that_extrapolates_better():
    measurements = noisy_measurements(weak_scaling_time, seed=4)

    assert best_fit(measurements).model == "allreduce"  # Amdahl cannot make step times grow with N


def test_holdout_needs_three_gpu_counts():
    measurements = [Measurement(1, 10.0), Measurement(2, 6.0), Measurement(2, 6.2)]

    assert fit(measurements).holdout_error is None
    with pytest.raises(ValueError, match="3 or more"):
        best_fit(measurements)


def test_efficiency_against_the_fastest_run_at_the_smallest_gpu_count():
    measurements = [
        Measurement(8, 1.1, tokens_per_step=8 * 4096),
        Measurement(8, 1.0, tokens_per_step=8 * 4096),
        Measurement(64, 1.25, tokens_per_step=64 * 4096),
    ]

    assert scaling_efficiency(measurements) == pytest.approx([1 / 1.1, 1.0, 1 / 1.25])


def test_speedup_without_tokens_is_the_step_time_ratio():
    assert speedup(Measurement(4, 2.5), Measurement(1, 10.0)) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="both"):
        speedup(Measurement(4, 2.5, tokens_per_step=100), Measurement(1, 10.0))


def test_throughput_and_mfu():
    # 7e9 parameters, 4M tokens per step in 10 s on 256 GPUs of 989 TFLOP/s (H100 dense BF16).
    assert throughput(Measurement(256, 10.0, tokens_per_step=4e6)) == pytest.approx(4e5)
    assert mfu(7e9, 4e6, 10.0, 256, 989e12) == pytest.approx(6 * 7e9 * 4e6 / (10.0 * 256 * 989e12))


def test_split_into_shares_of_the_step():
    shares = split(Measurement(8, 2.0, compute_s=1.2, comm_s=0.5))

    assert (shares.compute, shares.communication, shares.input_wait) == pytest.approx((0.6, 0.25, None))
    assert shares.rest == pytest.approx(0.15)


def test_split_refuses_overlapping_parts():
    with pytest.raises(ValueError, match="exposed"):
        split(Measurement(8, 2.0, compute_s=1.8, comm_s=0.5))


@pytest.mark.parametrize(
    "arguments",
    [
        {"gpus": 0, "step_time_s": 1.0},
        {"gpus": 1.5, "step_time_s": 1.0},
        {"gpus": True, "step_time_s": 1.0},
        {"gpus": 1, "step_time_s": 0.0},
        {"gpus": 1, "step_time_s": math.nan},
        {"gpus": 1, "step_time_s": math.inf},
        {"gpus": 1, "step_time_s": "1"},
        {"gpus": 1, "step_time_s": 1.0, "tokens_per_step": -5},
        {"gpus": 1, "step_time_s": 1.0, "comm_s": -0.1},
    ],
)
def test_bad_measurements_raise_value_error(arguments):
    with pytest.raises(ValueError):
        Measurement(**arguments)


@pytest.mark.parametrize(
    "arguments",
    [
        (0, 4e6, 10.0, 8, 1e15),
        (7e9, 4e6, -1.0, 8, 1e15),
        (7e9, 4e6, 10.0, 0, 1e15),
        (7e9, 4e6, 10.0, 8, math.inf),
    ],
)
def test_bad_mfu_inputs_raise_value_error(arguments):
    with pytest.raises(ValueError):
        mfu(*arguments)


def test_bad_fit_inputs_raise_value_error():
    with pytest.raises(ValueError, match="2 or more"):
        fit([Measurement(8, 1.0), Measurement(8, 1.1)])
    with pytest.raises(ValueError, match="unknown model"):
        fit([Measurement(1, 1.0), Measurement(2, 0.6)], "gustafson")
    with pytest.raises(ValueError):
        fit([Measurement(1, 1.0), Measurement(2, 0.6)]).predict(0)
    with pytest.raises(ValueError):
        scaling_efficiency([])
    with pytest.raises(ValueError, match="tokens_per_step"):
        throughput(Measurement(1, 1.0))
