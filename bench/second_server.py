"""Our CLI against a second, real OpenAI-compatible server: the LiteLLM proxy, offline.

Goal: the CLI measures another real OpenAI-compatible server as correctly as it measures the
simulator. The proxy runs with a `mock_response` model (no network, no keys), in its own venv
(never in our dependencies), on a free 127.0.0.1 port. Three `manage.py probe` runs:

- `concurrent`: --profile concurrent --concurrency 8 --duration 10 (the check asked for): no
  errors, every token count from the server's `usage`, equal to what an independent client
  reads from the same server, TTFT <= E2E, both > 0;
- `synchronous`: our TTFT/E2E medians against an independent client's (http.client), one request
  at a time on the idle proxy (same definitions: first/last event carrying content, from the send);
- `no_usage`: with `stream_options.include_usage` off, the counts are flagged estimated and
  equal the number of content events.

Prints one JSON object; exits 1 if a check failed, and always stops the proxy.

    python bench/second_server.py [--duration 10] [--concurrency 8]

The venv is made once under $READINESS_VAR_DIR (default var/)/second-server-venv (about
750 MB; pip needs the package index the first time) and reused afterwards.
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import ROOT, free_port, probe_cli, stop

LITELLM = "litellm[proxy]==1.108.7"  # pinned: the check must mean the same thing next time
MODEL = "mock-gpt"
CONFIG = f"""\
model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/mock
      mock_response: "A mocked answer from the LiteLLM proxy: no model, no network, streamed in small chunks."
"""
PROXY_ENV = {
    "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",  # no key: loopback only, torn down at the end
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else it tries to download its price list at start
    "LITELLM_TELEMETRY": "False",
}


def venv_dir() -> Path:
    return Path(os.environ.get("READINESS_VAR_DIR") or ROOT / "var") / "second-server-venv"


def ensure_venv(venv: Path) -> Path:
    """The proxy's own venv, made once; a marker file says which pinned version it holds."""
    marker = venv / ".installed"
    if not (marker.exists() and marker.read_text() == LITELLM):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [venv / "bin/python", "-m", "pip", "install", "-q", LITELLM],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        marker.write_text(LITELLM)
    return venv / "bin/litellm"


def start_proxy(litellm: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    (workdir / "config.yaml").write_text(CONFIG)
    port = free_port()
    log = open(workdir / "proxy.log", "wb")  # noqa: SIM115 - lives as long as the proxy
    proc = subprocess.Popen(
        [litellm, "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **PROXY_ENV},
        start_new_session=True,  # its own process group, so that stopping it stops its children too
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited with {proc.returncode}; see {workdir / 'proxy.log'}")
        try:
            with urllib.request.urlopen(url + "/health/readiness", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise RuntimeError("the proxy was not ready within 120 s")


def reference_request(conn: http.client.HTTPConnection, prompt: str) -> dict:
    """One streamed request read by plain http.client, not our engine: timings and counts to compare with."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 128,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    payload = json.dumps(body).encode()
    first = last = None
    events, usage = 0, None
    sent = time.monotonic()  # like ours: just before the request is written on a kept-alive connection
    conn.request("POST", "/v1/chat/completions", payload, {"Content-Type": "application/json"})
    with conn.getresponse() as response:
        for line in response:
            now = time.monotonic()
            if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                continue
            chunk = json.loads(line[5:])
            usage = chunk.get("usage") or usage
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                first = first or now
                last = now
                events += 1
    return {"ttft_ms": (first - sent) * 1000, "e2e_ms": (last - sent) * 1000, "events": events, "usage": usage}


def figures(data: dict) -> dict:
    s, o = data["summary"], data["summary"]["overall"]
    return {
        "requests": o["requests"],
        "completed_in_window": o["completed_in_window"],
        "errors": o["errors"],
        "req_per_s": o["request_throughput"],
        "tokens_per_s": o["output_token_throughput"],
        "token_sources": sorted({r["token_source"] for r in data["requests"]}),
        "token_counts_estimated": s["token_counts_estimated"],
        "ttft_ms": {k: o["ttft_ms"].get(k) for k in ("p50", "p99")},
        "e2e_ms": {k: o["e2e_ms"].get(k) for k in ("p50", "p99")},
        "client_saturated": s["client_saturated"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    started = time.monotonic()
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            failures.append(what)

    litellm = ensure_venv(venv_dir())
    report: dict = {"server": LITELLM, "model": MODEL}
    with tempfile.TemporaryDirectory(prefix="second-server-") as tmp:
        work = Path(tmp)
        proxy, url = start_proxy(litellm, work)
        try:
            report["proxy_ready_s"] = round(time.monotonic() - started, 1)
            prompt = "Tell me about load testing. " * 20
            conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
            reference = [reference_request(conn, prompt) for _ in range(30)]
            conn.close()
            usage_tokens = reference[-1]["usage"]["completion_tokens"]
            content_events = reference[-1]["events"]
            report["reference"] = {
                "completion_tokens": usage_tokens,
                "content_events": content_events,
                "ttft_p50_ms": round(statistics.median(r["ttft_ms"] for r in reference), 2),
                "e2e_p50_ms": round(statistics.median(r["e2e_ms"] for r in reference), 2),
            }

            # 1. The concurrent run: errors, token counts and timings under load.
            rc, data, err = probe_cli(
                url,
                work / "concurrent.json",
                "--profile",
                "concurrent",
                "--concurrency",
                str(args.concurrency),
                "--duration",
                str(args.duration),
            )
            check(rc == 0 and data is not None, f"concurrent: exit {rc}: {err}")
            if data:
                f = report["concurrent"] = figures(data)
                ok = [r for r in data["requests"] if r["error"] == "ok"]
                check(f["completed_in_window"] > 0, "concurrent: no request completed in the window")
                check(not f["errors"], f"concurrent: errors {f['errors']}")
                check(
                    f["token_sources"] == ["usage"] and not f["token_counts_estimated"],
                    f"concurrent: token counts not from usage: {f['token_sources']}",
                )
                check(
                    all(r["output_tokens"] == usage_tokens for r in ok),
                    f"concurrent: output tokens differ from the server's usage ({usage_tokens})",
                )
                check(
                    all(r["token_events"] == content_events for r in ok),
                    f"concurrent: token events differ from the content chunks sent ({content_events})",
                )
                check(all(r["sent"] < r["first"] <= r["last"] for r in ok), "concurrent: not send < first <= last")
                check(
                    f["ttft_ms"]["p50"] > 0 and f["e2e_ms"]["p50"] >= f["ttft_ms"]["p50"],
                    "concurrent: TTFT/E2E implausible",
                )

            # 2. Same timings as an independent client, one request at a time.
            rc, data, err = probe_cli(url, work / "sync.json", "--profile", "synchronous", "--duration", "3")
            check(rc == 0 and data is not None, f"synchronous: exit {rc}: {err}")
            if data:
                f = report["synchronous"] = figures(data)
                ref = report["reference"]
                for name in ("ttft", "e2e"):
                    ours, theirs = f[f"{name}_ms"]["p50"], ref[f"{name}_p50_ms"]
                    # The proxy's own latency varies by a few ms between runs: a loose bound, but a
                    # wrong clock point (a role-only chunk, the usage chunk, [DONE]) is off by more.
                    check(
                        abs(ours - theirs) <= 3 + 0.25 * theirs,
                        f"synchronous: {name} p50 {ours} ms vs an independent client's {theirs} ms",
                    )

            # 3. A server that sends no usage: counted, and flagged.
            rc, data, err = probe_cli(
                url,
                work / "no_usage.json",
                "--duration",
                "3",
                "--concurrency",
                "2",
                "--extra-body",
                '{"stream_options": {"include_usage": false}}',
            )
            check(rc == 0 and data is not None, f"no_usage: exit {rc}: {err}")
            if data:
                f = report["no_usage"] = figures(data)
                ok = [r for r in data["requests"] if r["error"] == "ok"]
                check(
                    bool(ok) and f["token_sources"] == ["counted"] and f["token_counts_estimated"],
                    f"no_usage: counts not flagged estimated: {f['token_sources']}",
                )
                check(all(r["output_tokens"] == content_events for r in ok), "no_usage: counts != content chunks")
        finally:
            stop(proxy)
    report["runtime_s"] = round(time.monotonic() - started, 1)
    report["failures"] = failures
    report["ok"] = not failures
    print(json.dumps(report, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
