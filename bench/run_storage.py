"""Storing and showing a big run: 200,000 request records.

Measures: time to store the records (as shard flushes would, in batches), time to finalize
(merge + summary + chart series), bytes in the database, and the server-side time and query
count of the results page and of the summary API. Goal: results page < 500 ms,
summary API < 100 ms, a constant number of queries.

    python bench/run_storage.py [--requests 200000]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from _common import demo_objects, django_setup


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=15_000, help="records per flush (~3 s at 5,000 req/s)")
    args = parser.parse_args()
    django_setup()

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from apps.probes import services
    from apps.probes.engine.records import OK, TOKENS_USAGE, Records
    from apps.probes.models import ProbeRecordBatch, ProbeRun, ProbeShard

    setup_test_environment()
    duration = args.requests / 1000
    user, org, access, plan = demo_objects(
        "http://127.0.0.1:9/v1", profile={"stages": [{"kind": "poisson", "rate": 1000, "duration": duration}]}
    )
    run = services.probe_run_start(access=access, plan=plan)
    shard = run.shards.get()
    rng = random.Random(7)
    records, t = Records(), 0.0
    for i in range(args.requests):
        t += rng.expovariate(1000)
        sent = t + rng.random() * 1e-4
        first = sent + 0.05 + rng.random() * 0.05
        last = first + 0.2 + rng.random() * 0.1
        err = OK if rng.random() > 0.01 else 4
        records.append(t, sent, first, last, 256, 16, 16, err, TOKENS_USAGE, 0, i)
        records.itl_for(0).add(0.01 + rng.random() * 0.005)

    started = time.perf_counter()
    snapshot: dict = {}
    for seq, start in enumerate(range(0, len(records), args.batch)):
        end = min(start + args.batch, len(records))
        part = records.since(start, end, snapshot)
        snapshot = records.itl_snapshot()
        ProbeRecordBatch.objects.create(shard=shard, sequence=seq, count=len(part), data=part.to_bytes())
    store_ms = (time.perf_counter() - started) * 1000
    ProbeShard.objects.filter(pk=shard.pk).update(status="done", origin_wall=run.start_at)
    ProbeRun.objects.filter(pk=run.pk).update(status="running")

    started = time.perf_counter()
    assert services.probe_run_finalize(run.pk)
    finalize_ms = (time.perf_counter() - started) * 1000
    run.refresh_from_db()

    client = Client()
    client.force_login(user)
    page_url = f"/o/{org.slug}/runs/{run.pk}/"
    api_url = f"/api/v1/probe-runs/{run.pk}/"
    page_ms, page = timed(lambda: client.get(page_url))
    api_ms, api = timed(lambda: client.get(api_url))
    assert page.status_code == 200 and api.status_code == 200
    with CaptureQueriesContext(connection) as page_q:
        client.get(page_url)
    with CaptureQueriesContext(connection) as api_q:
        client.get(api_url)
    batch_bytes = sum(
        len(bytes(b)) for b in ProbeRecordBatch.objects.filter(shard=shard).values_list("data", flat=True)
    )
    json_bytes = len(json.dumps(run.summary)) + len(json.dumps(run.timeline)) + len(json.dumps(run.config))
    print(
        json.dumps(
            {
                "requests": run.request_count,
                "database": connection.vendor,
                "store_records_ms": round(store_ms, 1),
                "finalize_ms": round(finalize_ms, 1),
                "record_batches_bytes": batch_bytes,
                "bytes_per_request": round(batch_bytes / run.request_count, 1),
                "summary_and_chart_json_bytes": json_bytes,
                "results_page_ms_median": page_ms,
                "results_page_bytes": len(page.content),
                "results_page_queries": len(page_q.captured_queries),
                "summary_api_ms_median": api_ms,
                "summary_api_queries": len(api_q.captured_queries),
                "goal": {"results_page_ms": 500, "summary_api_ms": 100},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
