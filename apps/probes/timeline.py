"""Per-interval series of a run for its charts, computed once when the run is finalized.

Pure Python. Stored on the run, so the results page renders stored JSON instead of
re-reading hundreds of thousands of records.
"""

from __future__ import annotations

import math

from apps.probes.engine.records import OK, Records
from apps.probes.engine.stats import percentile

MAX_POINTS = 600


def bucket_seconds(duration: float) -> float:
    return max(1.0, math.ceil(duration / MAX_POINTS))


def timeline(records: Records, duration: float, *, width: float | None = None) -> dict:
    """Offered and completed rate, errors, TTFT p50/p95 and E2E p95 per bucket (by send time)."""
    width = width or bucket_seconds(duration)
    n_buckets = max(1, int(math.ceil(duration / width)) + 1)
    offered = [0] * n_buckets
    completed = [0] * n_buckets
    errors = [0] * n_buckets
    tokens = [0] * n_buckets
    ttft: list[list[float]] = [[] for _ in range(n_buckets)]
    e2e: list[list[float]] = [[] for _ in range(n_buckets)]
    for i in range(len(records)):
        b = min(int(records.intended[i] / width), n_buckets - 1) if records.intended[i] >= 0 else 0
        offered[b] += 1
        if records.error[i] != OK:
            errors[b] += 1
            continue
        sent, first, last = records.sent[i], records.first[i], records.last[i]
        if first == first:
            ttft[b].append((first - sent) * 1000)
        if last == last:
            e2e[b].append((last - sent) * 1000)
            done = min(int(last / width), n_buckets - 1)
            completed[done] += 1
            tokens[done] += records.output_tokens[i]

    def pct(values: list[float], q: float):
        if not values:
            return None
        values.sort()
        return round(percentile(values, q), 2)

    return {
        "bucket_s": width,
        "t": [round(b * width, 3) for b in range(n_buckets)],
        "offered_rps": [round(v / width, 3) for v in offered],
        "completed_rps": [round(v / width, 3) for v in completed],
        "error_rps": [round(v / width, 3) for v in errors],
        "output_tps": [round(v / width, 1) for v in tokens],
        "ttft_p50_ms": [pct(v, 50) for v in ttft],
        "ttft_p95_ms": [pct(v, 95) for v in ttft],
        "e2e_p95_ms": [pct(v, 95) for v in e2e],
    }
