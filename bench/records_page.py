"""One page of a big run's records over the API: 300,000 requests stored in 100 batches.

Measures the server-side time of `GET /api/v1/probe-runs/{id}/records/?page=…&page_size=10` for a
page in the middle of the run, and what that page read: the batches decoded and their bytes
(compressed, as fetched from the database), against the whole run's. Goal: a page reads only
the batches holding its rows, whatever the size of the run.

    python bench/records_page.py [--requests 300000] [--batches 100] [--page-size 10]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from _common import demo_objects, django_setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    django_setup()

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from apps.probes import services
    from apps.probes.engine.records import OK, TOKENS_USAGE, Records
    from apps.probes.models import ProbeRecordBatch
    from apps.probes.selectors import run_record_rows

    setup_test_environment()
    user, org, access, plan = demo_objects(
        "http://127.0.0.1:9/v1", profile={"stages": [{"kind": "poisson", "rate": 1000, "duration": 300}]}
    )
    run = services.probe_run_start(access=access, plan=plan)
    shard = run.shards.get()
    rng = random.Random(7)
    per_batch = -(-args.requests // args.batches)
    t, seq = 0.0, 0
    for sequence in range(args.batches):
        part = Records()
        for _ in range(min(per_batch, args.requests - seq)):
            t += rng.expovariate(1000)
            sent = t + rng.random() * 1e-4
            first = sent + 0.05 + rng.random() * 0.05
            last = first + 0.2 + rng.random() * 0.1
            part.append(t, sent, first, last, 256, 16, 16, OK, TOKENS_USAGE, 0, seq)
            part.itl_for(0).add(0.01 + rng.random() * 0.005)
            seq += 1
        ProbeRecordBatch.objects.create(shard=shard, sequence=sequence, count=len(part), data=part.to_bytes())

    page = args.requests // args.page_size // 2 + 1  # a page in the middle of the run
    client = Client()
    client.force_login(user)
    url = f"/api/v1/probe-runs/{run.pk}/records/?page={page}&page_size={args.page_size}"
    samples = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content[:200]
    body = response.json()
    assert body["count"] == args.requests and len(body["results"]) == args.page_size
    with CaptureQueriesContext(connection) as queries:
        client.get(url)

    # What the same page reads, from the selector the API pages through.
    rows = run_record_rows(run)
    start = (page - 1) * args.page_size
    assert rows[start : start + args.page_size] == body["results"]
    run_bytes = sum(len(bytes(b)) for b in ProbeRecordBatch.objects.filter(shard=shard).values_list("data", flat=True))
    print(
        json.dumps(
            {
                "requests": args.requests,
                "batches": args.batches,
                "database": connection.vendor,
                "page": page,
                "page_size": args.page_size,
                "page_ms_median": round(statistics.median(samples), 1),
                "page_queries": len(queries.captured_queries),
                "page_batches_read": rows.batches_read,
                "page_bytes_read": rows.bytes_read,
                "run_bytes_stored": run_bytes,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
