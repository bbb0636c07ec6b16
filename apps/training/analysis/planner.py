"""Time and cost of a training job: on demand at each GPU count, and on spot capacity with checkpoints.

On demand. A job of T tokens takes ceil(T / tokens per step) steps, each the fitted step time at
that GPU count (`scaling.Fit`), and costs wall time × GPUs × price per GPU-hour. The global batch
is either fixed (the same tokens per step at any GPU count) or grows with the GPUs (a fixed batch
per GPU), whichever the measurements behind the fit used.

Spot. Preemptions are taken as a Poisson process with mean time between them M (the whole job's:
see `job_mtbf_s`). The job writes a checkpoint taking δ seconds after every τ seconds of work, and
after a preemption spends R seconds restarting, then redoes the work since the last checkpoint.

- Young (1974), "A first order approximation to the optimum checkpoint interval":
  τ = √(2·δ·M).
- Daly (2006), "A higher order estimate of the optimum checkpoint interval for restart dumps":
  τ = √(2·δ·M)·[1 + ⅓·√(δ/(2M)) + ⅑·(δ/(2M))] − δ for δ < 2M, else τ = M.
- Daly's expected wall time for T_s seconds of work:
  T_w = M·e^(R/M)·(e^((τ+δ)/M) − 1)·T_s/τ.
  Each of the T_s/τ segments needs τ + δ seconds without a preemption; a segment's first try
  starts straight after the previous checkpoint, and each retry after a restart of R seconds that
  a preemption can interrupt too. `monte_carlo` simulates exactly that, so it checks the formula.
- Expected preemptions: T_w / M (a Poisson process over the wall time). Expected lost time:
  T_w − T_s·(1 + δ/τ), the redone work and restarts, beyond the work and its checkpoints.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from apps.training.analysis.checks import non_negative, positive, positive_int
from apps.training.analysis.scaling import Fit

SECONDS_PER_HOUR = 3600
MAX_RUNS = 100_000
# Bounds on the simulation's work: segments over all runs, and the preemptions expected before
# runs reach max_wall_s. About a microsecond each, so the worst case is tens of seconds.
MAX_SIMULATED_SEGMENTS = 20_000_000
MAX_SIMULATED_PREEMPTIONS = 20_000_000
# The default cap on one simulated run, in multiples of Daly's expected wall time.
DEFAULT_MAX_WALL_FACTOR = 20


# --- on demand -------------------------------------------------------------------------------------


def tokens_for_epochs(epochs: float, tokens_per_epoch: float) -> float:
    return positive("epochs", epochs) * positive("tokens_per_epoch", tokens_per_epoch)


@dataclass(frozen=True)
class Job:
    """A training job: its tokens, its price, and its batch (exactly one of the two batch sizes)."""

    total_tokens: float
    usd_per_gpu_hour: float
    global_batch_tokens: float | None = None  # the same tokens per step at every GPU count
    per_gpu_batch_tokens: float | None = None  # tokens per step per GPU: the batch grows with them

    def __post_init__(self) -> None:
        positive("total_tokens", self.total_tokens)
        positive("usd_per_gpu_hour", self.usd_per_gpu_hour)
        if (self.global_batch_tokens is None) == (self.per_gpu_batch_tokens is None):
            raise ValueError("give exactly one of global_batch_tokens and per_gpu_batch_tokens")
        if self.global_batch_tokens is not None:
            positive("global_batch_tokens", self.global_batch_tokens)
        else:
            positive("per_gpu_batch_tokens", self.per_gpu_batch_tokens)

    def tokens_per_step(self, gpus: int) -> float:
        if self.global_batch_tokens is not None:
            return self.global_batch_tokens
        return self.per_gpu_batch_tokens * gpus


@dataclass(frozen=True)
class Estimate:
    gpus: int
    steps: int
    wall_s: float
    gpu_hours: float
    cost_usd: float


def estimate(fit: Fit, job: Job, gpus: int) -> Estimate:
    """Wall time and on-demand cost of `job` on `gpus` GPUs, from the fitted step time."""
    gpus = positive_int("gpus", gpus)
    steps = math.ceil(job.total_tokens / job.tokens_per_step(gpus))  # a partial step costs a whole one
    wall_s = steps * fit.predict(gpus)
    gpu_hours = wall_s * gpus / SECONDS_PER_HOUR
    return Estimate(
        gpus=gpus, steps=steps, wall_s=wall_s, gpu_hours=gpu_hours, cost_usd=gpu_hours * job.usd_per_gpu_hour
    )


def estimates(fit: Fit, job: Job, gpu_counts: Iterable[int]) -> list[Estimate]:
    return [estimate(fit, job, gpus) for gpus in gpu_counts]


def cheapest_meeting_deadline(fit: Fit, job: Job, gpu_counts: Iterable[int], deadline_s: float) -> Estimate | None:
    """The cheapest GPU count that finishes within `deadline_s` (the faster on equal cost); None if none does."""
    positive("deadline_s", deadline_s)
    in_time = [e for e in estimates(fit, job, gpu_counts) if e.wall_s <= deadline_s]
    return min(in_time, key=lambda e: (e.cost_usd, e.wall_s), default=None)


# --- spot: checkpoint intervals and expected time --------------------------------------------------


def job_mtbf_s(instance_mtbf_s: float, instances: int) -> float:
    """Mean time between preemptions of a job spread over independently preempted instances.

    Any one preemption stops the whole job, so the rates add: M_job = M_instance / instances.
    """
    return positive("instance_mtbf_s", instance_mtbf_s) / positive_int("instances", instances)


def young_interval(checkpoint_s: float, mtbf_s: float) -> float:
    """Young (1974): τ = √(2·δ·M) seconds of work between checkpoints."""
    return math.sqrt(2 * positive("checkpoint_s", checkpoint_s) * positive("mtbf_s", mtbf_s))


def daly_interval(checkpoint_s: float, mtbf_s: float) -> float:
    """Daly (2006)'s higher-order optimum interval (module docstring); M itself once δ ≥ 2M."""
    delta, mtbf = positive("checkpoint_s", checkpoint_s), positive("mtbf_s", mtbf_s)
    if delta >= 2 * mtbf:
        return mtbf
    ratio = delta / (2 * mtbf)
    return math.sqrt(2 * delta * mtbf) * (1 + math.sqrt(ratio) / 3 + ratio / 9) - delta


def expected_wall_time(work_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float) -> float:
    """Daly (2006)'s expected wall time, M·e^(R/M)·(e^((τ+δ)/M) − 1)·T_s/τ; inf when it overflows."""
    work, tau = positive("work_s", work_s), positive("interval_s", interval_s)
    delta, restart = positive("checkpoint_s", checkpoint_s), non_negative("restart_s", restart_s)
    mtbf = positive("mtbf_s", mtbf_s)
    try:
        return mtbf * math.exp(restart / mtbf) * math.expm1((tau + delta) / mtbf) * work / tau
    except OverflowError:  # preemptions far more frequent than a segment can finish: never done
        return math.inf


@dataclass(frozen=True)
class SpotEstimate:
    interval_s: float
    wall_s: float
    lost_s: float  # redone work and restarts
    preemptions: float
    cost_usd: float


def spot_estimate(
    work_s: float,
    *,
    checkpoint_s: float,
    restart_s: float,
    mtbf_s: float,
    gpus: int,
    usd_per_gpu_hour: float,
    interval_s: float | None = None,
) -> SpotEstimate:
    """Expected time, losses and cost of `work_s` seconds of training on spot capacity.

    `work_s` is the uninterrupted wall time (an on-demand `Estimate.wall_s`); the interval
    defaults to Daly's optimum.
    """
    if interval_s is None:
        interval_s = daly_interval(checkpoint_s, mtbf_s)
    wall_s = expected_wall_time(work_s, interval_s, checkpoint_s, restart_s, mtbf_s)
    price = positive("usd_per_gpu_hour", usd_per_gpu_hour)
    return SpotEstimate(
        interval_s=interval_s,
        wall_s=wall_s,
        lost_s=wall_s - work_s * (1 + checkpoint_s / interval_s),
        preemptions=wall_s / mtbf_s,
        cost_usd=wall_s * positive_int("gpus", gpus) / SECONDS_PER_HOUR * price,
    )


# --- spot: Monte Carlo -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedFinish:
    p50_s: float
    p90_s: float
    mean_s: float
    mean_preemptions: float
    unfinished_runs: int  # runs that reached max_wall_s; they count as finishing then


def monte_carlo(
    work_s: float,
    interval_s: float,
    checkpoint_s: float,
    restart_s: float,
    mtbf_s: float,
    runs: int = 10_000,
    seed: int = 0,
    max_wall_s: float | None = None,
) -> SimulatedFinish:
    """Simulate the spot model of the module docstring `runs` times; the same seed gives the same result.

    Work comes in segments of `interval_s` (the last one shorter if the work is not a multiple),
    each followed by a checkpoint. Each run stops at `max_wall_s` (by default 20 times Daly's
    expected wall time), and the amount of simulation is bounded before it starts.
    """
    expected_s = expected_wall_time(work_s, interval_s, checkpoint_s, restart_s, mtbf_s)
    positive_int("runs", runs)
    if runs > MAX_RUNS:
        raise ValueError(f"runs must be at most {MAX_RUNS}, got {runs}")
    if max_wall_s is None:
        if math.isinf(expected_s):
            raise ValueError("preemptions come too often for this interval to finish; give max_wall_s to simulate it")
        max_wall_s = DEFAULT_MAX_WALL_FACTOR * expected_s
    positive("max_wall_s", max_wall_s)
    segments = _segments(work_s, interval_s, checkpoint_s)
    _check_simulation_size(runs, len(segments), max_wall_s / mtbf_s)
    rng = random.Random(seed)
    outcomes = [_simulate_run(rng, segments, restart_s, mtbf_s, max_wall_s) for _ in range(runs)]
    finishes = sorted(finish for finish, _ in outcomes)
    return SimulatedFinish(
        p50_s=_percentile(finishes, 0.5),
        p90_s=_percentile(finishes, 0.9),
        mean_s=sum(finishes) / runs,
        mean_preemptions=sum(preemptions for _, preemptions in outcomes) / runs,
        unfinished_runs=sum(1 for finish in finishes if finish >= max_wall_s),
    )


def _segments(work_s: float, interval_s: float, checkpoint_s: float) -> list[float]:
    """Seconds each segment needs without a preemption: its work and the checkpoint after it."""
    whole, remainder = divmod(work_s, interval_s)
    if whole + 1 > MAX_SIMULATED_SEGMENTS:
        raise ValueError(f"work_s / interval_s is over {MAX_SIMULATED_SEGMENTS} segments")
    segments = [interval_s + checkpoint_s] * int(whole)
    # A remainder within rounding of zero is float noise from divmod, not a segment.
    if remainder > interval_s * 1e-9:
        segments.append(remainder + checkpoint_s)
    return segments


def _check_simulation_size(runs: int, segments_per_run: int, preemptions_per_run: float) -> None:
    if runs * segments_per_run > MAX_SIMULATED_SEGMENTS:
        raise ValueError(f"runs × segments is over {MAX_SIMULATED_SEGMENTS}; use fewer runs or a longer interval")
    if runs * preemptions_per_run > MAX_SIMULATED_PREEMPTIONS:
        raise ValueError(
            f"runs × max_wall_s / mtbf_s is over {MAX_SIMULATED_PREEMPTIONS} preemptions; "
            "use fewer runs or a lower max_wall_s"
        )


def _simulate_run(
    rng: random.Random, segments: list[float], restart_s: float, mtbf_s: float, max_wall_s: float
) -> tuple[float, int]:
    """(finish time, preemptions) of one run; the finish is max_wall_s for a run stopped there."""
    clock, preemptions = 0.0, 0
    for segment_s in segments:
        needed_s = segment_s  # the first try follows the previous checkpoint directly
        while (until_preemption := rng.expovariate(1 / mtbf_s)) < needed_s:
            clock += until_preemption
            preemptions += 1
            if clock >= max_wall_s:
                return max_wall_s, preemptions
            needed_s = restart_s + segment_s
        clock += needed_s
    return min(clock, max_wall_s), preemptions


def _percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
