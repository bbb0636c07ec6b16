"""Bytes per request record: in memory, and stored (compressed), for a 1,000,000-request run.

Goal: a run of 1,000,000 requests fits in memory and stores in well under 100 MB.

    python bench/record_memory.py [--requests 1000000]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import random
import time
import tracemalloc

import _common  # noqa: F401

from apps.probes.engine.records import OK, TOKENS_USAGE, Records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = random.Random(1)
    tracemalloc.start()
    rec = Records()
    t = 0.0
    for i in range(args.requests):
        t += rng.expovariate(1000)
        sent = t + rng.random() * 1e-4
        first = sent + 0.05 + rng.random() * 0.02
        last = first + 1.0 + rng.random() * 0.2
        rec.append(t, sent, first, last, 512, 128, 128, OK, TOKENS_USAGE, 0, i)
        rec.itl_for(0).add(0.008 + rng.random() * 0.002)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    blob = rec.to_bytes()
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    back = Records.from_bytes(blob)
    decode_s = time.perf_counter() - started
    assert len(back) == len(rec)
    print(
        json.dumps(
            {
                "requests": len(rec),
                "column_bytes_per_request": round(rec.nbytes / len(rec), 1),
                "traced_memory_mb": round(current / 1e6, 1),
                "traced_peak_mb": round(peak / 1e6, 1),
                "stored_mb_compressed": round(len(blob) / 1e6, 1),
                "stored_bytes_per_request": round(len(blob) / len(rec), 1),
                "encode_s": round(encode_s, 2),
                "decode_s": round(decode_s, 2),
                "goal": "1,000,000 requests stored in well under 100 MB",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
