"""Usage-log analysis of 10 million rows: elapsed time and peak memory.

Goal: under 60 s and under 500 MB on this machine. The log is generated first (a
month of CSV, diurnal, 100k users with a skewed mix, 300 tenants, a few bursty users), streamed
to a temp file; only the analysis is timed. Peak memory is the process's max RSS (what the
machine sees) and, with --tracemalloc, Python's traced peak (slower: tracing costs time).

    python bench/usage_analysis.py [--rows 10000000] [--tracemalloc]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import _common  # noqa: F401

from apps.costs.usage import analyze_usage

MINUTES = 30 * 24 * 60
START = datetime(2026, 10, 1, tzinfo=UTC)


def generate(path: Path, rows: int, *, users: int = 100_000, tenants: int = 300, seed: int = 6) -> None:
    """A month of rows in time order, per minute following a diurnal curve; written minute by minute."""
    rng = random.Random(seed)
    shape = [1.2 + math.sin(2 * math.pi * ((m % 1440) / 1440 - 0.3)) for m in range(MINUTES)]
    scale = rows / sum(shape)
    counts, running = [], 0.0
    for v in shape:  # cumulative rounding: the counts add up to exactly `rows`
        counts.append(round(running + v * scale) - round(running))
        running += v * scale
    # Skewed mix (Zipf-like weights): a few heavy users, a long tail.
    cum, acc = [], 0.0
    for i in range(users):
        acc += 1 / (i + 1) ** 0.9
        cum.append(acc)
    names = [f"u{i}" for i in range(users)]
    tenant_of = [f"t{rng.randrange(tenants)}" for _ in range(users)]
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("timestamp,user_id,tenant,input_tokens,output_tokens\n")
        for m, n in enumerate(counts):
            if not n:
                continue
            prefix = START.fromtimestamp(START.timestamp() + m * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
            picks = rng.choices(range(users), cum_weights=cum, k=n)
            if m % 997 == 0:  # now and then one user fires 50 requests in a minute
                picks[:50] = [users - 1] * min(50, n)
            millis = sorted(rng.randrange(60_000) for _ in range(n))
            tokens = rng.randrange
            out.write(
                "".join(
                    f"{prefix}{ms // 1000:02d}.{ms % 1000:03d}Z,{names[u]},{tenant_of[u]},"
                    f"{tokens(50, 4000)},{tokens(10, 800)}\n"
                    for ms, u in zip(millis, picks, strict=True)
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="readiness-usage-") as tmp:
        path = Path(tmp) / "usage.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        generate_s = time.perf_counter() - started
        size_mb = os.path.getsize(path) / 1e6
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        result = analyze_usage(
            path, replica_goodput_requests_per_s=2.0, usd_per_mtok_input=0.5, usd_per_mtok_output=1.5
        )
        elapsed = time.perf_counter() - started
        traced_peak = tracemalloc.get_traced_memory()[1] / 1e6 if args.tracemalloc else None
        tracemalloc.stop()
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": result.rows,
                "bad_rows": result.bad_rows.count,
                "users": result.users,
                "tenants": result.tenants,
                "file_mb": round(size_mb, 1),
                "generate_s": round(generate_s, 1),
                "analyse_s": round(elapsed, 1),
                "rows_per_s": round(result.rows / elapsed),
                "max_rss_mb_before_analysis": round(rss_before, 1),
                "max_rss_mb": round(rss_peak, 1),
                "traced_peak_mb": round(traced_peak, 1) if traced_peak is not None else None,
                "peak_requests_per_minute": result.per_minute["peak_requests_per_minute"],
                "peak_to_average_requests": round(result.per_minute["peak_to_average_requests"], 2),
                "replicas_for_peak_minute": result.capacity["replicas_for_peak_minute"],
                "gini_requests": round(result.concentration["gini_requests"], 3),
                "top_1pct_request_share": round(result.concentration["top_1pct_request_share"], 3),
                "max_requests_by_one_user_in_a_minute": result.burstiness["max_requests_by_one_user_in_a_minute"],
                "goal": "10,000,000 rows in under 60 s and under 500 MB",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
