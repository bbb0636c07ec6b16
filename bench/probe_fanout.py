"""Fan-out: one plan at parallelism 1 and 2, run by two Celery worker processes.

The target is the simulator's `instant` scenario with 256-token answers: the server writes
each answer in one go while the client parses 256 events, so the client is the bottleneck.
Closed loop at concurrency 64 (split across shards). With shorter answers the server's share
of the 2 cores grows and bounds the ratio (128 tokens at concurrency 128 gave 1.53x here).
Reports the achieved request rate of each, their ratio, schedule/loop lag, and a CPU profile
of who used the machine. This 2-core machine also runs the simulator, so the ratio is bounded
by CPU, not by the design: shards share nothing but the arrival schedule and their rows.
Goal: >= 1.6x here.

    python bench/probe_fanout.py [--duration 10]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import ROOT, demo_objects, django_setup, start_simulator


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc (Linux)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        ticks = sum(int(v) for v in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def tree_cpu(pid: int) -> float:
    total = cpu_seconds(pid)
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        total += tree_cpu(int(child))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    django_setup()
    from apps.probes import services
    from apps.probes.models import ProbeRun

    server, url = start_simulator("instant", core=None)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "-c",
                "1",
                "-n",
                f"bench{i}@%h",
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    time.sleep(4)
    report = {
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "duration_s": args.duration,
        "server": "instant simulator",
        "runs": {},
    }
    try:
        for parallelism in (1, 2):
            profile = {"stages": [{"kind": "concurrent", "concurrency": args.concurrency, "duration": args.duration}]}
            _, _, access, plan = demo_objects(
                url, profile=profile, parallelism=parallelism, name=f"p{parallelism}", max_tokens=args.max_tokens
            )
            before = {"server": tree_cpu(server.pid), **{f"worker{i}": tree_cpu(w.pid) for i, w in enumerate(workers)}}
            started = time.monotonic()
            run = services.probe_run_start(access=access, plan=plan)
            while ProbeRun.objects.get(pk=run.pk).status not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.5)
            wall = time.monotonic() - started
            after = {"server": tree_cpu(server.pid), **{f"worker{i}": tree_cpu(w.pid) for i, w in enumerate(workers)}}
            run.refresh_from_db()
            s = run.summary
            report["runs"][f"parallelism_{parallelism}"] = {
                "status": run.status,
                "requests": run.request_count,
                "req_per_s": s["overall"]["request_throughput"],
                "tokens_per_s": s["overall"]["output_token_throughput"],
                "loop_lag_p99_ms": s["event_loop_lag_ms"].get("p99"),
                "client_saturated": s["client_saturated"],
                "shard_start_skew_s": s.get("shard_start_skew_s"),
                "cpu_core_share_during_run": {k: round((after[k] - before[k]) / wall, 2) for k in before},
            }
        one = report["runs"]["parallelism_1"]["req_per_s"]
        two = report["runs"]["parallelism_2"]["req_per_s"]
        report["ratio_2_over_1"] = round(two / one, 2) if one else None
        report["goal_ratio"] = 1.6
    finally:
        for w in workers:
            w.terminate()
        server.terminate()
        for w in workers:
            w.wait(timeout=20)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
