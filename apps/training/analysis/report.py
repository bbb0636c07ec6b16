"""From training logs to a plan: each log as one measured configuration, the scaling across them,
and what a job costs on demand and on spot. Pure: `manage.py trainplan` prints it, the app will
store it.

A log becomes one `Measurement`: its mean step time is the wall time between its first and last
timed points over the steps between them (the first point's warm-up is before the first timing
and so left out), its tokens per step the tokens between them over the same steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from apps.training.analysis import planner, scaling
from apps.training.analysis.logs import ParsedLog

DEFAULT_GPU_COUNTS = (1, 2, 4, 8, 16, 32, 64)
MONTE_CARLO_RUNS = 10_000
# Batches within this share of each other count as the same global batch at every GPU count.
SAME_BATCH = 0.1


def measurement(parsed: ParsedLog, *, gpus: int | None = None) -> scaling.Measurement:
    """The log as one measured configuration on `gpus` GPUs (given, else the log's own column)."""
    timed = [p for p in parsed.points if p.time_s is not None]
    if len(timed) < 2:
        raise ValueError("the log needs two timed steps or more")
    first, last = timed[0], timed[-1]
    steps, seconds = last.step - first.step, last.time_s - first.time_s
    if steps <= 0 or seconds <= 0:
        raise ValueError("the log's timed steps do not move forward")
    count = gpus or next((p.gpus for p in reversed(parsed.points) if p.gpus), None)
    if not count:
        raise ValueError("the log does not say how many GPUs ran it: give their number")
    tokens = None
    if first.tokens is not None and last.tokens is not None and last.tokens > first.tokens:
        tokens = (last.tokens - first.tokens) / steps
    return scaling.Measurement(gpus=count, step_time_s=seconds / steps, tokens_per_step=tokens)


@dataclass(frozen=True)
class JobSpec:
    """What to plan for: the job's tokens and prices, and spot's checkpoint and preemption figures."""

    total_tokens: float | None = None
    usd_per_gpu_hour: float | None = None
    deadline_s: float | None = None
    spot_usd_per_gpu_hour: float | None = None
    checkpoint_s: float | None = None
    restart_s: float = 300.0
    instance_mtbf_s: float | None = None
    gpus_per_instance: int = 8
    gpu_counts: tuple[int, ...] = DEFAULT_GPU_COUNTS


def plan(measurements: list[scaling.Measurement], job: JobSpec, *, seed: int = 0) -> dict:
    """The scaling of `measurements` and, when `job` says enough, its on-demand and spot plans."""
    measurements = sorted(measurements, key=lambda m: m.gpus)
    with_tokens = all(m.tokens_per_step for m in measurements)
    rows = [
        {
            "gpus": m.gpus,
            "step_time_s": m.step_time_s,
            "tokens_per_s": scaling.throughput(m) if with_tokens else None,
            "efficiency": e,
        }
        for m, e in zip(measurements, scaling.scaling_efficiency(measurements), strict=True)
    ]
    out: dict = {"measured": rows, "fits": [], "fit": None, "on_demand": None, "spot": None, "notes": []}
    if len({m.gpus for m in measurements}) < 2:
        out["notes"].append("one GPU count measured: a fit, and so a plan, needs two or more")
        return out
    fits = [scaling.fit(measurements, name) for name in scaling.MODELS]
    out["fits"] = [_fit_dict(f) for f in fits]
    chosen = min(fits, key=lambda f: f.holdout_error) if all(f.holdout_error is not None for f in fits) else fits[0]
    if chosen.holdout_error is None:
        out["notes"].append("two GPU counts measured: no point is left to check a fit on (three or more are needed)")
    out["fit"] = chosen.model
    if not (job.total_tokens and job.usd_per_gpu_hour and with_tokens):
        out["notes"].append("give the job's tokens and a price per GPU-hour (and logs with tokens) for a cost plan")
        return out
    batch = _batch(measurements)
    spec = planner.Job(total_tokens=job.total_tokens, usd_per_gpu_hour=job.usd_per_gpu_hour, **batch)
    counts = sorted(set(job.gpu_counts) | {m.gpus for m in measurements})
    estimates = planner.estimates(chosen, spec, counts)
    cheapest = (
        planner.cheapest_meeting_deadline(chosen, spec, counts, job.deadline_s)
        if job.deadline_s
        else min(estimates, key=lambda e: (e.cost_usd, e.wall_s))
    )
    out["on_demand"] = {
        "batch": batch,
        "estimates": [asdict(e) for e in estimates],
        "deadline_s": job.deadline_s,
        "choice": asdict(cheapest) if cheapest else None,
    }
    if cheapest is None:
        out["notes"].append("no GPU count finishes within the deadline")
    elif job.spot_usd_per_gpu_hour and job.checkpoint_s and job.instance_mtbf_s:
        out["spot"] = _spot(cheapest, job, seed)
    return out


def _batch(measurements: list[scaling.Measurement]) -> dict:
    """A global batch when the logs' tokens per step agree, else a batch per GPU (it grew with them)."""
    per_step = [m.tokens_per_step for m in measurements]
    if max(per_step) <= min(per_step) * (1 + SAME_BATCH):
        return {"global_batch_tokens": sum(per_step) / len(per_step)}
    per_gpu = [m.tokens_per_step / m.gpus for m in measurements]
    return {"per_gpu_batch_tokens": sum(per_gpu) / len(per_gpu)}


def _spot(choice: planner.Estimate, job: JobSpec, seed: int) -> dict:
    instances = max(1, -(-choice.gpus // job.gpus_per_instance))
    mtbf_s = planner.job_mtbf_s(job.instance_mtbf_s, instances)
    estimate = planner.spot_estimate(
        choice.wall_s,
        checkpoint_s=job.checkpoint_s,
        restart_s=job.restart_s,
        mtbf_s=mtbf_s,
        gpus=choice.gpus,
        usd_per_gpu_hour=job.spot_usd_per_gpu_hour,
    )
    simulated = planner.monte_carlo(
        choice.wall_s, estimate.interval_s, job.checkpoint_s, job.restart_s, mtbf_s, runs=MONTE_CARLO_RUNS, seed=seed
    )
    return {
        "gpus": choice.gpus,
        "instances": instances,
        "job_mtbf_s": mtbf_s,
        "young_interval_s": planner.young_interval(job.checkpoint_s, mtbf_s),
        **asdict(estimate),
        "simulated": asdict(simulated),
        "saving_usd": choice.cost_usd - estimate.cost_usd,
    }


def _fit_dict(fit: scaling.Fit) -> dict:
    return {"model": fit.model, "params": fit.params, "holdout_error": fit.holdout_error}


def format_plan(report: dict) -> str:
    """The plan as `manage.py trainplan` prints it."""
    lines = [f"{'GPUs':>5} {'step time':>10} {'tokens/s':>12} {'efficiency':>10}"]
    for row in report["measured"]:
        tps = f"{row['tokens_per_s']:,.0f}" if row["tokens_per_s"] is not None else "—"
        lines.append(f"{row['gpus']:>5} {row['step_time_s']:>9.3f}s {tps:>12} {row['efficiency']:>10.0%}")
    for f in report["fits"]:
        error = "not checked" if f["holdout_error"] is None else f"{f['holdout_error']:.1%} at the largest count"
        mark = "  (used)" if f["model"] == report["fit"] else ""
        params = ", ".join(f"{k} {v:.4g}" for k, v in f["params"].items())
        lines.append(f"fit {f['model']}: {params}; held-out error {error}{mark}")
    demand = report["on_demand"]
    if demand:
        lines.append(f"{'GPUs':>5} {'wall time':>11} {'GPU-hours':>10} {'on demand':>12}")
        for e in demand["estimates"]:
            lines.append(f"{e['gpus']:>5} {_hours(e['wall_s']):>11} {e['gpu_hours']:>10,.1f} {_usd(e['cost_usd']):>12}")
        choice = demand["choice"]
        if choice:
            within = f" within {_hours(demand['deadline_s'])}" if demand["deadline_s"] else ""
            cost = f"{_hours(choice['wall_s'])}, {_usd(choice['cost_usd'])}"
            lines.append(f"cheapest{within}: {choice['gpus']} GPUs, {cost}")
    spot = report["spot"]
    if spot:
        sim = spot["simulated"]
        lines += [
            f"spot on {spot['instances']} instance(s): a preemption every {_hours(spot['job_mtbf_s'])} on average",
            f"  checkpoint every {spot['interval_s'] / 60:,.1f} min of work (Daly; Young: "
            f"{spot['young_interval_s'] / 60:,.1f} min)",
            f"  expected {_hours(spot['wall_s'])} with {spot['preemptions']:.1f} preemptions, "
            f"{_hours(spot['lost_s'])} lost; {_usd(spot['cost_usd'])} (saves {_usd(spot['saving_usd'])})",
            f"  simulated finish: p50 {_hours(sim['p50_s'])}, p90 {_hours(sim['p90_s'])}",
        ]
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.2f} h"


def _usd(value: float) -> str:
    return f"${value:,.2f}"
