"""Autoscaling response of a step-load run, analysed after the run: KPIs and a timeline for the
chart (kpis.py), which metric should drive scaling (signals.py), and the policy to apply, a KEDA
ScaledObject and an HPA `behavior` block (policy.py).

Pure Python (no Django). It reads what the probe engine recorded; the engine never imports it.
"""

from __future__ import annotations

from apps.probes.autoscaling.kpis import (
    RequestArrays,
    autoscaling_kpis,
    canary_kpis,
    canary_series,
    request_arrays,
    timeline,
    timeline_json,
)
from apps.probes.autoscaling.policy import recommend_policy
from apps.probes.autoscaling.signals import rank_signals
from apps.probes.engine.records import Records


def analyze_autoscaling(
    requests: RequestArrays | Records,
    series: dict,
    *,
    step_up: float,
    step_down: float | None,
    slo_ttft_p95_ms: float,
    window: float = 10.0,
    stay: float = 60.0,
    dt: float = 1.0,
    replica_capacity_rps: float | None = None,
    canary: RequestArrays | Records | None = None,
    **policy,
) -> dict:
    """KPIs, timeline, signal ranking and recommended policy of one run, JSON-ready."""
    if isinstance(requests, Records):
        requests = request_arrays(requests)
    if isinstance(canary, Records):
        canary = request_arrays(canary)
    tl = timeline(requests, series, dt=dt, window=window)
    kpis = autoscaling_kpis(
        requests,
        series,
        step_up=step_up,
        step_down=step_down,
        slo_ttft_p95_ms=slo_ttft_p95_ms,
        window=window,
        stay=stay,
        dt=dt,
        replica_capacity_rps=replica_capacity_rps,
        tl=tl,
    )
    if canary is not None and len(canary):
        tl["canary_ttft_p95_ms"] = canary_series(canary, len(tl["t"]), dt=dt, window=window)
        kpis.update(canary_kpis(canary, tl, step_up=step_up, step_down=step_down))
    lead_ref = max(kpis["t_ready_s"] or 0.0, window)
    ranking = rank_signals(tl, step_up=step_up, slo_ttft_p95_ms=slo_ttft_p95_ms, lead_reference_s=lead_ref)
    return {
        "kpis": kpis,
        "timeline": timeline_json(tl),
        "ranking": ranking,
        "recommendation": recommend_policy(kpis, ranking, **policy),
    }
