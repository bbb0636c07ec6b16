"""Autoscaling KPIs, timeline, signal ranking and policy for a 1-hour step-load run.

How long the analysis takes on a 1-hour run. The run is synthetic (no server): Poisson
arrivals averaging 20 req/s for an hour (≈72k records) – 10 req/s, 40 req/s from 20 to 40 min,
10 req/s after – served FIFO by replicas of 15 req/s each, an autoscaler that decides 5 s after
the step and whose replicas are ready 25 s later, a scale-down 2 min after the step down, and
gauges (waiting, running, KV cache usage, desired and available replicas) scraped every second.
Only the analysis is timed: Records → arrays → analyze_autoscaling.

    python bench/autoscaling_kpis.py [--rate 20] [--seconds 3600] [--scrape 1]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
from bisect import bisect_right
import heapq
import json
import random
import time

import _common  # noqa: F401

from apps.probes.autoscaling import analyze_autoscaling
from apps.probes.autoscaling.kpis import request_arrays
from apps.probes.engine.records import OK, TOKENS_USAGE, Records

PER_REPLICA_RPS = 15.0
SLOTS = 16


def synthetic_run(rate: float, seconds: float, scrape: float, seed: int = 6):
    rng = random.Random(seed)
    step_up, step_down = seconds / 3, 2 * seconds / 3
    low, high = rate / 2, rate * 2  # averages to `rate` over the three equal phases

    def available_at(t: float) -> int:
        if step_up + 30 <= t < step_down + 120:
            return 3
        return 1

    def desired_at(t: float) -> int:
        if step_up + 5 <= t < step_down + 90:
            return 3
        return 1

    sends, t = [], 0.0
    while True:
        t += rng.expovariate(high if step_up <= t < step_down else low)
        if t >= seconds:
            break
        sends.append(t)
    # FIFO over a fluid server of available × 15 req/s: each start is spaced 1/capacity after the last.
    rec = Records()
    starts, dones = [], []
    free = 0.0
    for i, a in enumerate(sends):
        start = max(free, a)
        free = start + 1 / (available_at(start) * PER_REPLICA_RPS)
        ttft = 0.05 + (start - a) + rng.random() * 0.02
        done = a + ttft + 1.0 + rng.random() * 0.2
        starts.append(start)
        dones.append(done)
        rec.append(a, a + 0.0002, a + ttft, done, 512, 128, 128, OK, TOKENS_USAGE, 0, i)
    # Gauges at every scrape: waiting = arrived, not started; running = started, not done.
    series = {
        k: []
        for k in (
            "vllm:num_requests_waiting",
            "vllm:num_requests_running",
            "vllm:kv_cache_usage_perc",
            "kube_horizontalpodautoscaler_status_desired_replicas",
            "kube_deployment_status_replicas_available",
        )
    }
    ends: list[float] = []
    i = 0
    n = len(sends)
    s = 0.0
    while s <= seconds + 5:
        while i < n and starts[i] <= s:
            heapq.heappush(ends, dones[i])
            i += 1
        while ends and ends[0] <= s:
            heapq.heappop(ends)
        arrived = bisect_right(sends, s)
        waiting, running = arrived - i, len(ends)
        series["vllm:num_requests_waiting"].append((s, float(waiting)))
        series["vllm:num_requests_running"].append((s, float(running)))
        series["vllm:kv_cache_usage_perc"].append((s, min(1.0, running / (desired_at(s) * SLOTS))))
        series["kube_horizontalpodautoscaler_status_desired_replicas"].append((s, float(desired_at(s))))
        series["kube_deployment_status_replicas_available"].append((s, float(available_at(s))))
        s = round(s + scrape, 6)
    return rec, series, step_up, step_down


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--scrape", type=float, default=1.0)
    args = parser.parse_args()
    rec, series, step_up, step_down = synthetic_run(args.rate, args.seconds, args.scrape)
    started = time.perf_counter()
    analysis = analyze_autoscaling(
        request_arrays(rec),
        series,
        step_up=step_up,
        step_down=step_down,
        slo_ttft_p95_ms=500.0,
        window=10.0,
        stay=60.0,
        dt=1.0,
    )
    elapsed = time.perf_counter() - started
    k = analysis["kpis"]
    keep = (
        "t_decide_s",
        "t_ready_s",
        "t_recover_s",
        "ttft_p99_peak_ms",
        "slo_violation_s",
        "backlog_area_req_s",
        "replica_flaps",
        "overprovisioned_replica_minutes",
    )
    print(
        json.dumps(
            {
                "bench": "autoscaling_kpis",
                "records": len(rec),
                "seconds": args.seconds,
                "scrapes": len(series["vllm:num_requests_waiting"]),
                "elapsed_s": round(elapsed, 3),
                "kpis": {key: k[key] for key in keep},
                "ranking": [(r["signal"], r["score"]) for r in analysis["ranking"]],
                "recommended": [analysis["recommendation"]["signal"], analysis["recommendation"]["threshold"]],
            }
        )
    )


if __name__ == "__main__":
    main()
