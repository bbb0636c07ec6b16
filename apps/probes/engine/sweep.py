"""Find the highest request rate that still meets the SLOs, stopping early at saturation.

Steps are open-loop stages of `step_duration` seconds. The rate grows geometrically while
the SLOs hold and the server keeps up, then bisects between the last good and the first
bad rate. A step "saturates" when the completed rate falls below `keep_up` x offered rate,
or errors exceed the SLO: pushing harder would only measure a queue growing.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.probes.engine.profiles import CONSTANT, POISSON, SYNCHRONOUS, Stage
from apps.probes.engine.stats import slo_checks, summarize_window


@dataclass(frozen=True)
class SweepSpec:
    start_rate: float | None = None  # None: measure one synchronous step and start at its rate
    growth: float = 1.6
    step_duration: float = 15.0
    step_warmup: float = 3.0
    max_steps: int = 10
    refine_steps: int = 2
    kind: str = POISSON
    keep_up: float = 0.9
    max_rate: float | None = None  # never step beyond this (the org's limit): the search stops there

    def __post_init__(self):
        if self.growth <= 1:
            raise ValueError("sweep growth must be > 1")
        if self.kind not in (CONSTANT, POISSON):
            raise ValueError("a sweep steps constant or poisson load")
        if self.step_warmup >= self.step_duration:
            raise ValueError("the sweep's step warm-up must be shorter than its step")


def sweep_driver(spec: SweepSpec):
    """A driver for ProbeRun.execute(driver=...): returns the sweep's own report."""

    async def drive(run) -> dict:
        slo = run.config.slo
        steps: list[dict] = []
        index = 0

        async def step(rate: float | None, kind: str) -> dict:
            nonlocal index
            stage = (
                Stage(SYNCHRONOUS, spec.step_duration, name="baseline")
                if kind == SYNCHRONOUS
                else Stage(kind, spec.step_duration, rate=rate)
            )
            window = await run.run_stage(stage, index, warmup=spec.step_warmup)
            index += 1
            figures = summarize_window(run.records, window, slo, run.records.itl.get(window.stage))
            checks = slo_checks(figures, slo)
            # "Keeping up" compares completions with what was really sent in the window (a short
            # Poisson step can draw fewer arrivals than its nominal rate), counted from the
            # schedule: requests still in flight have no record yet.
            offered = rate if rate is not None else figures["request_throughput"]
            if rate is None:  # the closed-loop baseline offers exactly what it completes
                keeps_up = figures["request_throughput"] > 0
            else:
                sends = run.stage_arrivals.get(window.stage, [])
                in_window = sum(1 for t in sends if window.start <= t < window.end)
                # Completions lag sends by one E2E: allow the few requests still streaming at the
                # window's end, which on a small count alone would break the keep_up ratio.
                shortfall = in_window - figures["completed_in_window"]
                keeps_up = in_window > 0 and shortfall <= max((1 - spec.keep_up) * in_window, 2)
            result = {
                "stage": window.stage,
                "offered_rate": round(offered, 3),
                "achieved_rate": figures["request_throughput"],
                "output_token_throughput": figures["output_token_throughput"],
                "ttft_p95_ms": figures["ttft_ms"].get("p95"),
                "tpot_p95_ms": figures["tpot_ms"].get("p95"),
                "e2e_p99_ms": figures["e2e_ms"].get("p99"),
                "error_rate": figures["error_rate"],
                "slo_ok": all(c["ok"] for c in checks),
                "keeps_up": keeps_up,
            }
            steps.append(result)
            return result

        ceiling = spec.max_rate or float("inf")
        rate = spec.start_rate
        if rate is None:
            baseline = await step(None, SYNCHRONOUS)
            rate = max(baseline["achieved_rate"], 0.1)
        rate = min(rate, ceiling)
        good = bad = chosen = None
        capped = False
        for _ in range(spec.max_steps):
            if run.cancel.is_set() or not run.budget_left():
                break
            result = await step(rate, spec.kind)
            if result["slo_ok"] and result["keeps_up"]:
                good, chosen = rate, result
                if rate >= ceiling:
                    capped = True  # good at the highest rate allowed: nothing above may be tried
                    break
                rate = min(rate * spec.growth, ceiling)
            else:
                bad = rate
                break
        for _ in range(spec.refine_steps if good is not None and bad is not None else 0):
            if run.cancel.is_set() or not run.budget_left():
                break
            mid = (good + bad) / 2
            result = await step(mid, spec.kind)
            if result["slo_ok"] and result["keeps_up"]:
                good, chosen = mid, result
            else:
                bad = mid
        return {
            "sweep": {
                "steps": steps,
                "max_rate_meeting_slo": round(good, 3) if good is not None else None,
                "first_failing_rate": round(bad, 3) if bad is not None else None,
                "stopped_at_saturation": bad is not None,
                "stopped_at_max_rate": capped,
                "operating_point": chosen,
            }
        }

    return drive
