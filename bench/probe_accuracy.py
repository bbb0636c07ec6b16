"""How close the engine's timings are to what the server really did.

The simulator (`steady` scenario, its own core) records, per X-Request-Id, when the request
arrived and when it wrote the first and the last token to the socket (CLOCK_MONOTONIC, shared by
both processes on one machine). The engine (other core) runs closed-loop at concurrency 1, 64
and 512. Per request:

    first_token_error = our first-token time - server's first-token write time
    last_token_error  = our last-token time  - server's last-token write time

(the client cannot see a token before it is written, so errors are >= 0 up to clock noise;
what is left is loopback transit plus client delay). Goal: p99 error < 2 ms at 64,
and the run flags itself client_saturated whenever the error would be larger.

TTFT/E2E errors compare durations: ours from our send, the server's from its arrival, which on
Linux is the kernel's receive stamp of the request's first bytes, so the simulator's own loop
delay (it reads requests late while writing other streams' tokens) stays out of it.
`request_to_server_ms` (server arrival - our send) shows what is left: loopback transit, and the
simulator's read delay where it has no kernel stamps.

Like the run's own figures, only requests whose intended send lies in the measurement window
are compared: the first second is warm-up (opening the first wave of connections), as a plan's
warm-up would be, and client_saturated is judged on the same window.

    python bench/probe_accuracy.py [--duration 10]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import urllib.request

from _common import pin_self, start_simulator

from apps.probes.engine.openai import RequestIds
from apps.probes.engine.profiles import Stage
from apps.probes.engine.runner import ProbeConfig, run_probe
from apps.probes.engine.stats import distribution

WARMUP = 1.0


def measure(url: str, concurrency: int, duration: float) -> dict:
    urllib.request.urlopen(urllib.request.Request(url[:-3] + "/admin/reset", method="POST")).read()
    config = ProbeConfig(
        base_url=url,
        model="sim-llama-3-8b",
        stages=[Stage("concurrent", WARMUP + duration, concurrency=concurrency)],
        warmup=WARMUP,
        max_tokens=32,
        allow_private=True,
        request_timeout=60,
    )
    result = run_probe(config)
    truth = json.loads(urllib.request.urlopen(url[:-3] + "/admin/ground-truth").read())["requests"]
    rec, origin = result.records, result.meta["origin_monotonic"]
    # The simulator keys its ground truth by X-Request-Id: the run's UUIDs (nonce, shard 0, seq).
    ids = RequestIds(0, int(result.meta["request_id"]["nonce"], 16))
    window = result.windows[0]
    first_err, last_err, ttft_err, e2e_err, to_server = [], [], [], [], []
    for i in range(len(rec)):
        if not window.start <= rec.intended[i] < window.end:
            continue
        t = truth.get(ids.text(rec.seq[i]).decode())
        if t is None or rec.error[i] != 0 or t["status"] != "length":
            continue
        first_err.append((origin + rec.first[i] - t["first"]) * 1000)
        last_err.append((origin + rec.last[i] - t["last"]) * 1000)
        # Durations: ours run from our send, the server's from its arrival.
        ttft_err.append(((rec.first[i] - rec.sent[i]) - (t["first"] - t["arrival"])) * 1000)
        e2e_err.append(((rec.last[i] - rec.sent[i]) - (t["last"] - t["arrival"])) * 1000)
        to_server.append((t["arrival"] - origin - rec.sent[i]) * 1000)
    s = result.summary
    return {
        "requests_compared": len(first_err),
        "first_token_error_ms": distribution(first_err),
        "last_token_error_ms": distribution(last_err),
        "ttft_error_ms": distribution(ttft_err),
        "e2e_error_ms": distribution(e2e_err),
        "request_to_server_ms": distribution(to_server),
        "client_saturated": s["client_saturated"],
        "schedule_lag_p99_ms": s["overall"]["schedule_lag_ms"].get("p99"),
        "loop_lag_p99_ms": s["event_loop_lag_ms"].get("p99"),
        "ttft_p50_ms": s["overall"]["ttft_ms"].get("p50"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 64, 512])
    args = parser.parse_args()
    server, url = start_simulator("steady", core=1)
    pin_self(0)
    try:
        report = {"goal": {"p99_error_ms_at_64": 2.0}, "scenario": "steady", "max_tokens": 32, "warmup_s": WARMUP}
        for c in args.concurrency:
            report[f"concurrency_{c}"] = measure(url, c, args.duration)
    finally:
        server.terminate()
        server.wait()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
