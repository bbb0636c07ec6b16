"""Scaling analysis of training runs measured at several GPU counts: efficiency, MFU, fitted models.

Speedup and efficiency. With tokens per step on both measurements, speedup is the ratio of token
throughputs, which is right whether the global batch stays fixed (strong scaling) or grows with
the GPUs (weak scaling, the usual data-parallel setup). Without them it is the ratio of step times,
which assumes the same global batch. Efficiency is speedup ÷ (N / N0) against the smallest GPU
count N0 measured: 1.0 is linear scaling.

MFU (model FLOPs utilisation, PaLM: Chowdhery et al. 2022, appendix B): a dense transformer with N
parameters does about 6·N FLOPs per token trained (2·N forward, 4·N backward), so
MFU = 6·N·tokens ÷ (step time · GPUs · peak FLOP/s per GPU). It leaves out attention FLOPs and
activation recomputation on purpose, so runs with different recomputation settings compare fairly.

Models of step time t(N) on N GPUs, fitted by least squares on relative residuals (step times span
orders of magnitude across GPU counts, and the held-out error is relative too):

- "amdahl": t(N) = t1·(s + (1 − s)/N), a serial fraction s in [0, 1] that no GPU count shortens.
- "allreduce": t(N) = a/N + b·(N − 1)/N + c, with a, b, c ≥ 0: compute split across the GPUs, a
  ring all-reduce of the gradients, and a fixed overhead. A ring all-reduce moves 2·(N − 1)/N times
  the buffer through each GPU's link, which is why nccl-tests reports bus bandwidth as
  busbw = algbw · 2·(N − 1)/N: at a fixed link bandwidth its time grows as (N − 1)/N.

  Step times alone identify only two combinations of a, b, c, because 1 = 1/N + (N − 1)/N: the
  time on one GPU, t(1) = a + c, and the limit for many GPUs, t(∞) = b + c. Predictions are
  therefore unique but the split is a convention: the fit uses no all-reduce term (b = 0) unless
  step times grow with N, and then no fixed overhead (c = 0). Telling overhead from communication
  needs the measured `comm_s`.

Held-out error: the relative error of predicting the measurements at the largest GPU count from a
fit of the others. Extrapolating to more GPUs is what the planner asks of a fit, so that is the
test; it needs measurements at three or more GPU counts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from apps.training.analysis.checks import non_negative, positive, positive_int

# Profilers round each part of a step separately, so fully accounted parts can add up to a little
# more than the step; beyond this share they overlap, and the split would count time twice.
SPLIT_TOLERANCE = 0.01
# A column whose remainder after projection onto the others is this small a share of its length
# is a combination of them, and its coefficient is not identifiable.
_DEPENDENT_COLUMN = 1e-9
# Subsets whose residuals differ by less than this share of ‖y‖² fit equally well; the earlier is kept.
_SAME_RESIDUAL = 1e-9


@dataclass(frozen=True)
class Measurement:
    """One measured configuration: mean step time on `gpus` GPUs, and where known its breakdown.

    `compute_s`, `comm_s` and `input_wait_s` are exposed times within the step (a profiler's
    non-overlapped communication, time blocked on the data loader), not busy times.
    """

    gpus: int
    step_time_s: float
    tokens_per_step: float | None = None
    compute_s: float | None = None
    comm_s: float | None = None
    input_wait_s: float | None = None

    def __post_init__(self) -> None:
        positive_int("gpus", self.gpus)
        positive("step_time_s", self.step_time_s)
        if self.tokens_per_step is not None:
            positive("tokens_per_step", self.tokens_per_step)
        for name in ("compute_s", "comm_s", "input_wait_s"):
            if getattr(self, name) is not None:
                non_negative(name, getattr(self, name))


@dataclass(frozen=True)
class StepTimeSplit:
    """Shares of the step time (0–1); None where the measurement does not give that part."""

    compute: float | None
    communication: float | None
    input_wait: float | None
    rest: float  # the share the given parts do not cover


def throughput(measurement: Measurement) -> float:
    """Tokens per second."""
    if measurement.tokens_per_step is None:
        raise ValueError("throughput needs tokens_per_step")
    return measurement.tokens_per_step / measurement.step_time_s


def speedup(measurement: Measurement, baseline: Measurement) -> float:
    """How many times faster than `baseline` (module docstring: throughput or step-time ratio)."""
    if (measurement.tokens_per_step is None) != (baseline.tokens_per_step is None):
        raise ValueError("give tokens_per_step for both measurements or for neither")
    if measurement.tokens_per_step is None:
        return baseline.step_time_s / measurement.step_time_s
    return throughput(measurement) / throughput(baseline)


def scaling_efficiency(measurements: Sequence[Measurement]) -> list[float]:
    """Efficiency of each measurement, in order, against the smallest GPU count measured.

    With several measurements at that count the fastest is the baseline, so noise in the baseline
    can only make the others look less efficient, never more.
    """
    baseline = _baseline(measurements)
    return [speedup(m, baseline) / (m.gpus / baseline.gpus) for m in measurements]


def _baseline(measurements: Sequence[Measurement]) -> Measurement:
    if not measurements:
        raise ValueError("no measurements")
    fewest = min(m.gpus for m in measurements)
    candidates = [m for m in measurements if m.gpus == fewest]
    return max(candidates, key=lambda m: speedup(m, candidates[0]))


def mfu(model_params: float, tokens_per_step: float, step_time_s: float, gpus: int, peak_flops_per_gpu: float) -> float:
    """Model FLOPs utilisation, 6·N·tokens ÷ (step time · GPUs · peak) (PaLM, module docstring)."""
    model_flops = 6 * positive("model_params", model_params) * positive("tokens_per_step", tokens_per_step)
    available_flops = (
        positive("step_time_s", step_time_s)
        * positive_int("gpus", gpus)
        * positive("peak_flops_per_gpu", peak_flops_per_gpu)
    )
    return model_flops / available_flops


def split(measurement: Measurement) -> StepTimeSplit:
    """The step time split into compute, communication and input-pipeline wait, as shares."""
    parts = (measurement.compute_s, measurement.comm_s, measurement.input_wait_s)
    covered = sum(part for part in parts if part is not None)
    if covered > measurement.step_time_s * (1 + SPLIT_TOLERANCE):
        raise ValueError(
            f"compute, communication and input wait add up to {covered:g} s, more than the "
            f"{measurement.step_time_s:g} s step; give exposed (non-overlapping) times"
        )
    compute, communication, input_wait = (None if part is None else part / measurement.step_time_s for part in parts)
    return StepTimeSplit(
        compute=compute,
        communication=communication,
        input_wait=input_wait,
        rest=max(0.0, 1 - covered / measurement.step_time_s),
    )


# --- fitted models ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    """t(N) = Σ coefficient·basis(N), with every coefficient ≥ 0."""

    name: str
    basis: Callable[[int], tuple[float, ...]]
    params: Callable[[tuple[float, ...]], dict[str, float]]


def _amdahl_basis(gpus: int) -> tuple[float, ...]:
    return (1.0, 1.0 / gpus)  # serial time t1·s, parallel time t1·(1 − s)


def _amdahl_params(coefficients: tuple[float, ...]) -> dict[str, float]:
    serial_s, parallel_s = coefficients
    t1_s = serial_s + parallel_s
    return {"t1_s": t1_s, "serial_fraction": serial_s / t1_s}


# Column order settles the ties between equally good fits (module docstring): a subset of
# columns is preferred to a later one, so compute and overhead come before the all-reduce term.
def _allreduce_basis(gpus: int) -> tuple[float, ...]:
    return (1.0 / gpus, 1.0, (gpus - 1) / gpus)


def _allreduce_params(coefficients: tuple[float, ...]) -> dict[str, float]:
    compute_s, overhead_s, allreduce_s = coefficients
    return {"compute_s": compute_s, "allreduce_s": allreduce_s, "overhead_s": overhead_s}


MODELS = {
    "amdahl": _Model("amdahl", _amdahl_basis, _amdahl_params),
    "allreduce": _Model("allreduce", _allreduce_basis, _allreduce_params),
}


@dataclass(frozen=True)
class Fit:
    model: str
    params: dict[str, float]
    coefficients: tuple[float, ...]
    holdout_error: float | None  # relative error at the largest GPU count; None under 3 counts

    def predict(self, gpus: int) -> float:
        """Predicted step time in seconds on `gpus` GPUs."""
        return _predict(MODELS[self.model], self.coefficients, positive_int("gpus", gpus))


def fit(measurements: Sequence[Measurement], model: str = "allreduce") -> Fit:
    """Fit `model` ("allreduce" or "amdahl") to step times measured at two or more GPU counts."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    spec = MODELS[model]
    coefficients = _coefficients(spec, measurements)
    return Fit(
        model=model,
        params=spec.params(coefficients),
        coefficients=coefficients,
        holdout_error=_holdout_error(spec, measurements),
    )


def best_fit(measurements: Sequence[Measurement]) -> Fit:
    """The model that predicts the largest GPU count best from the smaller ones.

    On a tie Amdahl wins: it is the more constrained model.
    """
    fits = [fit(measurements, "amdahl"), fit(measurements, "allreduce")]
    if any(f.holdout_error is None for f in fits):
        raise ValueError("comparing models needs measurements at 3 or more GPU counts")
    return min(fits, key=lambda f: f.holdout_error)


def _coefficients(spec: _Model, measurements: Sequence[Measurement]) -> tuple[float, ...]:
    if len({m.gpus for m in measurements}) < 2:
        raise ValueError("fitting needs measurements at 2 or more GPU counts")
    # Dividing each row by its step time makes the residuals relative.
    rows = [[f / m.step_time_s for f in spec.basis(m.gpus)] for m in measurements]
    return _non_negative_least_squares(rows, [1.0] * len(rows))


def _holdout_error(spec: _Model, measurements: Sequence[Measurement]) -> float | None:
    largest = max(m.gpus for m in measurements)
    training = [m for m in measurements if m.gpus < largest]
    if len({m.gpus for m in training}) < 2:
        return None
    coefficients = _coefficients(spec, training)
    held_out = [m for m in measurements if m.gpus == largest]
    errors = [abs(_predict(spec, coefficients, m.gpus) - m.step_time_s) / m.step_time_s for m in held_out]
    return sum(errors) / len(errors)


def _predict(spec: _Model, coefficients: tuple[float, ...], gpus: int) -> float:
    return sum(c * f for c, f in zip(coefficients, spec.basis(gpus), strict=True))


# --- least squares ---------------------------------------------------------------------------------


def _non_negative_least_squares(rows: list[list[float]], targets: list[float]) -> tuple[float, ...]:
    """min ‖X·c − y‖ subject to c ≥ 0, by solving every subset of the columns.

    The optimum is the unconstrained solution on its own support, and some optimum has linearly
    independent support columns, so the best non-negative subset solution is optimal. With three
    unknowns that is seven small solves. Smaller subsets come first and win ties (module docstring).
    """
    width = len(rows[0])
    best = (0.0,) * width  # the empty subset
    best_residual = _residual(rows, targets, best)
    same = _SAME_RESIDUAL * best_residual  # ‖y‖², the scale of every residual here
    for size in range(1, width + 1):
        for subset in itertools.combinations(range(width), size):
            solution = _least_squares([[row[j] for row in rows] for j in subset], targets)
            if solution is None or min(solution) < 0:
                continue
            coefficients = [0.0] * width
            for j, value in zip(subset, solution, strict=True):
                coefficients[j] = value
            residual = _residual(rows, targets, coefficients)
            if residual < best_residual - same:
                best, best_residual = tuple(coefficients), residual
    return best


def _least_squares(columns: list[list[float]], targets: list[float]) -> list[float] | None:
    """Unconstrained least squares by QR (modified Gram-Schmidt); None for dependent columns."""
    q: list[list[float]] = []
    r = [[0.0] * len(columns) for _ in columns]
    for j, column in enumerate(columns):
        remainder = list(column)
        for i, q_i in enumerate(q):
            r[i][j] = _dot(q_i, remainder)
            remainder = [x - r[i][j] * y for x, y in zip(remainder, q_i, strict=True)]
        length = math.sqrt(_dot(remainder, remainder))
        if length <= _DEPENDENT_COLUMN * math.sqrt(_dot(column, column)):
            return None
        r[j][j] = length
        q.append([x / length for x in remainder])
    projected = [_dot(q_i, targets) for q_i in q]
    solution = [0.0] * len(columns)
    for i in reversed(range(len(columns))):
        later = sum(r[i][k] * solution[k] for k in range(i + 1, len(columns)))
        solution[i] = (projected[i] - later) / r[i][i]
    return solution


def _residual(rows: list[list[float]], targets: list[float], coefficients: Sequence[float]) -> float:
    return sum((_dot(row, coefficients) - y) ** 2 for row, y in zip(rows, targets, strict=True))


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))
