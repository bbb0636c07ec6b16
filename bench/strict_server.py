"""Our CLI against a strict real OpenAI-compatible server: llama-cpp-python's own, on a tiny model, offline.

The simulator and the LiteLLM proxy accept whatever a client sends. llama-cpp-python's server
(`python -m llama_cpp.server`, FastAPI) does not: its starlette-context RequestIdPlugin answers
HTTP 400 with an empty body to an `X-Request-Id` that is not a canonical UUID, before the request
reaches the model. A probe that sends any other correlation id measures nothing there but refusals;
this check makes that a CI failure instead of a surprise at a customer's endpoint. It also runs real
inference (llama.cpp, compiled here), so the streams come from a real token loop.

Everything is offline: the server runs in its own venv (never in our dependencies), on a model
that bench/tiny_gguf.py writes from a fixed seed (random weights, about 0.5 MB; every answer is
exactly max_tokens words long), on a free 127.0.0.1 port. Then:

- `strictness`: plain http.client, one streamed chat completion with `X-Request-Id: 0-1` (must be
  400) and one with a uuid4 (must stream 200): the server is as strict as we say;
- `concurrent`: `manage.py probe --profile concurrent --concurrency 2 --duration 10 --max-tokens 16`:
  requests completed, zero errors of any class, every token count equal to the server's own
  `usage.completion_tokens` for the same max_tokens (read from a non-streamed answer: this server
  sends no usage in a stream, whatever stream_options says, so the counts must be flagged
  estimated), 0 < TTFT <= E2E;
- `synchronous`: our TTFT/E2E medians against an independent client's (http.client), one request at
  a time on the idle server, same prompts and definitions;
- `interrupting`: the same server with its default `interrupt_requests` (a waiting request cuts the
  stream in flight: `[DONE]` with no finish_reason), concurrency 2 for 3 s: a cut stream must not
  be counted as a complete answer.

The first three run with `--interrupt_requests False` (requests queue behind the model's lock and
every answer completes), so that any error there is ours or a refusal.

Prints one JSON object; exits 1 if a check failed, and always stops the server.

    python bench/strict_server.py [--duration 10] [--concurrency 2]

The venv is made once under $READINESS_VAR_DIR (default var/)/strict-server-venv: pip builds
llama.cpp from the sdist with cmake and the C++ compiler (about 5 min on 2 cores, download included;
the first run needs the package index) and reuses it afterwards (about 180 MB). The checks take about
25 s.
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from _common import ROOT, free_port, probe_cli, stop

from apps.probes.engine.prompts import PromptSet

# Pinned: the check must mean the same thing next time. 0.3.36 is an sdist only: pip compiles it.
SERVER = "llama-cpp-python[server]==0.3.36"
GGUF = "gguf==0.19.0"  # writes the model (bench/tiny_gguf.py)
STRICT = "starlette-context==0.3.6"  # its RequestIdPlugin is the strictness under test: pinned as well
# The smallest build that serves: CPU only, no llava/mtmd, no examples, tools or tests, no
# -march=native (the venv may be reused on another CPU), no OpenMP (one thread serves a tiny model).
CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF "
    "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DGGML_OPENMP=OFF"
)
MODEL = "tiny-random-llama"
MAX_TOKENS = 16
PROMPT_TOKENS = 32  # words; this vocabulary spends a token per character, so about 250 tokens of prompt
N_CTX = 1024


def venv_dir() -> Path:
    return Path(os.environ.get("READINESS_VAR_DIR") or ROOT / "var") / "strict-server-venv"


def ensure_venv(venv: Path) -> tuple[Path, float | None]:
    """The server's own venv, made once; a marker says what it holds. Returns (python, seconds spent installing)."""
    marker, want = venv / ".installed", f"{SERVER} {STRICT} {GGUF} {CMAKE_ARGS}"
    if marker.exists() and marker.read_text() == want:
        return venv / "bin/python", None
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}
    proc = subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "-q", SERVER, STRICT, GGUF],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"pip install {SERVER} failed:\n{proc.stderr[-3000:]}")
    marker.write_text(want)
    return venv / "bin/python", time.monotonic() - started


def start_server(python: Path, model: Path, workdir: Path, *, interrupt: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            python,
            "-m",
            "llama_cpp.server",
            "--model",
            model,
            "--model_alias",
            MODEL,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(N_CTX),
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--interrupt_requests",
            str(interrupt),
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"the server was not ready within 60 s:\n{tail(log_path)}")


def tail(path: Path) -> str:
    return path.read_bytes()[-2000:].decode(errors="replace")


def chat_body(prompt: str, *, stream: bool = True) -> bytes:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}  # what we ask for; this server ignores it
    return json.dumps(body).encode()


def streamed(conn: http.client.HTTPConnection, prompt: str, headers: dict | None = None) -> dict:
    """One streamed request read by plain http.client, not our engine: status, timings and the stream's shape."""
    first = last = None
    events, usage, finish, done, chunks = 0, None, None, False, 0
    sent = time.monotonic()  # like ours: just before the request is written on a kept-alive connection
    headers = {"Content-Type": "application/json", **(headers or {})}
    conn.request("POST", "/v1/chat/completions", chat_body(prompt), headers)
    with conn.getresponse() as response:
        if response.status != 200:
            body = response.read()
            return {"status": response.status, "body_bytes": len(body), "body": body[:200].decode(errors="replace")}
        for line in response:
            now = time.monotonic()
            if not line.startswith(b"data:"):
                continue
            if line[5:].strip() == b"[DONE]":
                done = True
                continue
            chunk = json.loads(line[5:])
            chunks += 1
            usage = chunk.get("usage") or usage
            for c in chunk.get("choices") or []:
                finish = c.get("finish_reason") or finish
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                first = first or now
                last = now
                events += 1
    return {
        "status": 200,
        "ttft_ms": (first - sent) * 1000 if first else None,
        "e2e_ms": (last - sent) * 1000 if last else None,
        "chunks": chunks,
        "content_events": events,
        "finish_reason": finish,
        "usage": usage,
        "done": done,
    }


def server_usage(port: int, prompt: str) -> dict:
    """The server's own token counts, from a non-streamed answer (it has none in a stream)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/chat/completions", chat_body(prompt, stream=False), {"Content-Type": "application/json"})
    with conn.getresponse() as response:
        answer = json.loads(response.read())
    conn.close()
    return {"usage": answer.get("usage"), "finish_reason": answer["choices"][0].get("finish_reason")}


def probe(port: int, out: Path, *args: str) -> tuple[int, dict | None, str]:
    return probe_cli(
        f"http://127.0.0.1:{port}/v1",
        out,
        "--model",
        MODEL,
        "--max-tokens",
        str(MAX_TOKENS),
        "--prompt-tokens",
        str(PROMPT_TOKENS),
        *args,
    )


def figures(data: dict) -> dict:
    s, o = data["summary"], data["summary"]["overall"]
    return {
        "requests": o["requests"],
        "completed_in_window": o["completed_in_window"],
        "errors": o["errors"],
        "req_per_s": o["request_throughput"],
        "tokens_per_s": o["output_token_throughput"],
        "token_sources": sorted({r["token_source"] for r in data["requests"]}),
        "output_tokens": sorted({r["output_tokens"] for r in data["requests"] if r["error"] == "ok"}),
        "token_counts_estimated": s["token_counts_estimated"],
        "ttft_ms": {k: o["ttft_ms"].get(k) for k in ("p50", "p99")},
        "e2e_ms": {k: o["e2e_ms"].get(k) for k in ("p50", "p99")},
        "client_saturated": s["client_saturated"],
        "schedule_lag_p99_ms": o["schedule_lag_ms"].get("p99"),
        # What the engine says it sent: a part the server refused is dropped by the preflight, and a run
        # without the correlation header would pass here while proving nothing.
        "request_id_header": (data["meta"].get("request_id") or {}).get("header", "(not reported)"),
        "dropped_parts": data["meta"].get("dropped_parts", []),
    }


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def check_sent_all(check, name: str, f: dict) -> None:
    check(not f["dropped_parts"], f"{name}: the engine dropped parts the server refused: {f['dropped_parts']}")
    check(bool(f["request_id_header"]), f"{name}: sent without a correlation header")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    # `timeout` (CI's budget) sends SIGTERM: unwind, so that the finally clauses stop the server (its own
    # process group) and the probe, and the temporary directory goes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            failures.append(what)

    python, install_s = ensure_venv(venv_dir())
    report: dict = {"server": SERVER, "model": MODEL, "venv_install_s": install_s and round(install_s, 1)}
    prompts = [p.text for p in PromptSet.synthetic(prompt_tokens=PROMPT_TOKENS, seed=0).prompts]
    with tempfile.TemporaryDirectory(prefix="strict-server-") as tmp:
        work = Path(tmp)
        subprocess.run([python, ROOT / "bench/tiny_gguf.py", work / "tiny.gguf"], check=True)
        report["model_bytes"] = (work / "tiny.gguf").stat().st_size
        t = time.monotonic()
        server, port = start_server(python, work / "tiny.gguf", work, interrupt=False)
        try:
            report["server_ready_s"] = round(time.monotonic() - t, 1)

            # 1. The server is as strict as we say: a non-UUID correlation id is refused outright.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            refused = streamed(conn, prompts[0], {"X-Request-Id": "0-1"})
            conn.close()  # the 400 may leave the connection in any state
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            accepted = streamed(conn, prompts[0], {"X-Request-Id": str(uuid.uuid4())})
            report["strictness"] = {"x_request_id_0_1": refused, "x_request_id_uuid4": accepted}
            check(refused["status"] == 400, f"strictness: X-Request-Id 0-1 answered {refused['status']}, not 400")
            check(
                accepted["status"] == 200 and accepted["content_events"] > 0,
                f"strictness: X-Request-Id uuid4 answered {accepted['status']}, not a 200 stream",
            )

            # 2. An independent client, one request at a time: what the server sends and how fast.
            reference = [streamed(conn, prompts[i % len(prompts)]) for i in range(60)]
            conn.close()
            counts = server_usage(port, prompts[0])
            expected = (counts["usage"] or {}).get("completion_tokens")
            report["reference"] = {
                "server_usage_non_streamed": counts,
                "content_events": sorted({r["content_events"] for r in reference}),
                "finish_reasons": sorted({str(r["finish_reason"]) for r in reference}),
                "usage_in_stream": any(r["usage"] for r in reference),
                "done": all(r["done"] for r in reference),
                "ttft_p50_ms": median(r.get("ttft_ms") for r in reference),
                "e2e_p50_ms": median(r.get("e2e_ms") for r in reference),
            }
            check(
                expected == MAX_TOKENS and counts["finish_reason"] == "length",
                f"model: the server counts {expected} completion tokens, not max_tokens {MAX_TOKENS}",
            )
            check(
                report["reference"]["content_events"] == [expected],
                "model: an independent client does not read one content event per token",
            )

            # 3. The run the check asks for.
            rc, data, err = probe(
                port,
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
                check_sent_all(check, "concurrent", f)
                # No usage in this server's streams: counted, and said to be counted.
                check(
                    not ok or f["token_sources"] == ["counted"] and f["token_counts_estimated"],
                    f"concurrent: token counts not flagged counted/estimated: {f['token_sources']}",
                )
                check(
                    all(r["output_tokens"] == expected for r in ok),
                    f"concurrent: output tokens {f['output_tokens']} != the server's usage ({expected})",
                )
                check(all(r["sent"] < r["first"] <= r["last"] for r in ok), "concurrent: not send < first <= last")
                check(not ok or 0 < f["ttft_ms"]["p50"] <= f["e2e_ms"]["p50"], "concurrent: TTFT/E2E implausible")

            # 4. Same timings as the independent client, one request at a time.
            rc, data, err = probe(port, work / "sync.json", "--profile", "synchronous", "--duration", "5")
            check(rc == 0 and data is not None, f"synchronous: exit {rc}: {err}")
            if data:
                f = report["synchronous"] = figures(data)
                check(not f["errors"], f"synchronous: errors {f['errors']}")
                check_sent_all(check, "synchronous", f)
                ref = report["reference"]
                for name in ("ttft", "e2e"):
                    ours, theirs = f[f"{name}_ms"]["p50"], ref[f"{name}_p50_ms"]
                    # Both clients read the same idle server one request at a time: medians of a few
                    # dozen requests agree to about a millisecond here, and a 2-core VM adds a few ms of
                    # scheduling noise. Looser (a 20 ms floor) would accept anything: the whole answer
                    # takes about 13 ms. A client that adds its own latency is off by more.
                    check(
                        None not in (ours, theirs) and abs(ours - theirs) <= 3 + 0.25 * theirs,
                        f"synchronous: {name} p50 {ours} ms vs an independent client's {theirs} ms",
                    )
        finally:
            stop(server)

        # 5. The server's default: a waiting request cuts the stream in flight. Never a complete answer.
        server, port = start_server(python, work / "tiny.gguf", work, interrupt=True)
        try:
            rc, data, err = probe(
                port,
                work / "interrupting.json",
                "--profile",
                "concurrent",
                "--concurrency",
                str(args.concurrency),
                "--duration",
                "3",
            )
            if data:
                f = report["interrupting"] = figures(data)
                cut = [r for r in data["requests"] if r["error"] == "ok" and r["output_tokens"] != expected]
                check(not cut, f"interrupting: {len(cut)} cut streams counted ok (tokens {f['output_tokens']})")
                check("truncated" in f["errors"], f"interrupting: no stream reported truncated: {f['errors']}")
                check(set(f["errors"]) <= {"truncated"}, f"interrupting: errors besides truncated: {f['errors']}")
                check_sent_all(check, "interrupting", f)
            else:
                check(False, f"interrupting: exit {rc}: {err}")
        finally:
            stop(server)
    report["runtime_s"] = round(time.monotonic() - started, 1)
    report["failures"] = failures
    report["ok"] = not failures
    print(json.dumps(report, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
