"""Does the simulator keep its own timing at hundreds of concurrent streams on one core?

The simulator (its own core) serves 2 replicas x 256 slots; the engine (the other core)
keeps 512 streams open. With every slot busy, the model's decode step is
decode_ms x (1 + slowdown x 255); the measured inter-token latency (p50) should match it.
If the simulator fell behind, ITL would exceed the model's step time.

`simulator_cpu_us_per_token` (the simulator process's CPU time over the run ÷ tokens streamed)
is its cost per token: the headroom the ITL check cannot show until it is gone.

    python bench/simulator_capacity.py [--duration 10]
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import os

from _common import pin_self, start_simulator

from apps.probes.engine.profiles import Stage
from apps.probes.engine.runner import ProbeConfig, run_probe
from apps.simulator.scenarios import SimConfig


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=512)
    args = parser.parse_args()
    slots = args.streams // 2
    server, url = start_simulator(
        "steady", core=1, extra=["--slots", str(slots), "--replicas", "2", "--min-replicas", "2", "--max-replicas", "2"]
    )
    pin_self(0)
    try:
        config = ProbeConfig(
            base_url=url,
            model="sim-llama-3-8b",
            max_tokens=64,
            allow_private=True,
            warmup=3.0,
            stages=[Stage("concurrent", args.duration, concurrency=args.streams)],
            request_timeout=60,
        )
        cpu_before = cpu_seconds(server.pid)
        result = run_probe(config)
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait()
    c = SimConfig()
    expected_ms = c.decode_ms_per_token * (1 + c.decode_slowdown_per_seq * (slots - 1))
    o = result.summary["overall"]
    print(
        json.dumps(
            {
                "concurrent_streams": args.streams,
                "replicas_x_slots": f"2 x {slots}",
                "model_step_ms_at_full_batch": round(expected_ms, 2),
                "measured_itl_ms": o["itl_ms"],
                "measured_tpot_ms": o["tpot_ms"],
                "itl_p50_over_model": round(o["itl_ms"]["p50"] / expected_ms, 3) if o["itl_ms"].get("p50") else None,
                "tokens_per_s": o["output_token_throughput"],
                "errors": o["errors"],
                "simulator_cpu_us_per_token": round(cpu / max(sum(result.records.output_tokens), 1) * 1e6, 2),
                "client_saturated": result.summary["client_saturated"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
