"""What an OpenAI-compatible server really does: a handful of requests, one table.

Streaming, the server's own token counts (`stream_options.include_usage`), `finish_reason` and
`[DONE]`, chat and completions, `/v1/models`, Prometheus `/metrics` and which servers' metric
families it has, whether it answers one request at a time, and which optional request parts it
accepts. A probe reads `accepts` to leave out what the server refuses (plans.refused_parts).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from urllib.parse import urlsplit

from apps.net.netguard import OutboundRefused, pin
from apps.probes.engine import openai
from apps.probes.engine.http1 import ConnectError, ConnectionPool, ProtocolError, ResponseSink, request_head
from apps.probes.engine.prompts import Prompt
from apps.probes.engine.records import ERROR_CLASSES, OK, TRUNCATED
from apps.probes.engine.runner import ProbeConfig, ProbeRun, new_event_loop

# Metric-name prefixes of the servers DESIGN.md names, and a few more a gateway may sit in front of.
METRIC_FAMILIES = {
    "vllm:": "vLLM",
    "sglang:": "SGLang",
    "tgi_": "TGI",
    "llamacpp:": "llama.cpp",
    "nv_inference_": "Triton",
    "jetstream_": "JetStream",
    "ollama_": "Ollama",
    "litellm_": "LiteLLM",
    "simulator_": "readiness simulator",
}
MAX_METRICS_BYTES = 5_000_000
SERIAL_REQUESTS = 3
PROMPT = Prompt("Count from one to twenty.", 8)


async def _get(url: str, *, allow_private: bool, headers: dict, timeout: float) -> tuple[int, bytes]:
    """One guarded GET: (status, body); status 0 when nothing answered."""
    parts = urlsplit(url)
    try:
        target = pin(url, allow_private=allow_private)
    except OutboundRefused:
        return 0, b""
    pool = ConnectionPool(target.address, target.port, tls=target.scheme == "https", server_hostname=target.host)
    try:
        conn = await pool.acquire()
        sink = ResponseSink(asyncio.get_running_loop().create_future(), max_body=MAX_METRICS_BYTES)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.send(request_head("GET", path, parts.netloc.rpartition("@")[2], headers, b""), sink)
        await asyncio.wait_for(sink.future, timeout)
        return sink.status, bytes(sink.body)
    except (TimeoutError, ConnectError, ProtocolError, OSError):
        return 0, b""
    finally:
        pool.close()


async def _stream(run: ProbeRun, parts: set[str], *, number: int, api: str | None = None) -> tuple[int, object]:
    """One streamed request with `parts` (and the other API, when given): (error class, sink)."""
    saved = run.config
    if api is not None:
        run.config = replace(saved, api=api)
    try:
        attempt = await run._attempt(parts, number, prompt=PROMPT, max_tokens=16)
    finally:
        run.config = saved
    return attempt["error"], attempt["sink"]


async def _serial(run: ProbeRun, number: int) -> tuple[bool | None, str]:
    """Does the server answer one request at a time? One request alone, then a few at once: served
    one after another, the last of them takes about that many times as long."""

    async def timed(n: int) -> float | None:
        start = time.monotonic()
        error, _ = await _stream(run, set(run.parts), number=n)
        return time.monotonic() - start if error in (OK, TRUNCATED) else None

    alone = await timed(number)
    together = await asyncio.gather(*(timed(number + 1 + i) for i in range(SERIAL_REQUESTS)))
    if alone is None or None in together:
        return None, "could not tell (a request failed)"
    ratio = max(together) / max(alone, 1e-3)
    serial = ratio >= SERIAL_REQUESTS * 0.75
    return serial, f"{SERIAL_REQUESTS} at once took {ratio:.1f}x one alone"


async def check(config: ProbeConfig) -> dict:
    """Run the checks against `config`'s endpoint; returns the stored form (see module docstring)."""
    run = ProbeRun(replace(config, parts_off=frozenset()))
    origin, base = run.host_header, run.base_path
    scheme = urlsplit(config.base_url).scheme or "http"
    auth = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    try:
        full, sink = await _stream(run, set(run.parts), number=0)
        streaming = full in (OK, TRUNCATED)
        bare, _ = await _stream(run, set(), number=1)
        accepts: dict[str, bool | None] = {}
        for i, part in enumerate(openai.OPTIONAL_PARTS):
            if part == openai.PART_REQUEST_ID and config.request_id_header is None:
                continue
            alone, _ = await _stream(run, {part}, number=2 + i)
            accepts[part] = (alone in (OK, TRUNCATED)) if bare in (OK, TRUNCATED) else None
        if not streaming and bare in (OK, TRUNCATED):
            run.parts = {p for p in run.parts if accepts.get(p)}
            full, sink = await _stream(run, set(run.parts), number=5)
            streaming = full in (OK, TRUNCATED)
        other_api = openai.COMPLETIONS if config.api == openai.CHAT else openai.CHAT
        other, _ = await _stream(run, set(run.parts), number=6, api=other_api)
        serial, serial_detail = await _serial(run, 7) if streaming else (None, "not tried: streaming failed")
    finally:
        run.pool.close()
    models_status, models_body = await _get(
        f"{scheme}://{origin}{base}/models",
        allow_private=config.allow_private,
        headers=auth,
        timeout=config.request_timeout,
    )
    metrics_url = config.metrics_url or f"{scheme}://{origin}/metrics"
    metrics_status, metrics_body = await _get(
        metrics_url, allow_private=config.allow_private, headers={}, timeout=config.request_timeout
    )
    text = metrics_body.decode("utf-8", "replace") if metrics_status == 200 else ""
    families = sorted({name for prefix, name in METRIC_FAMILIES.items() if f"\n{prefix}" in "\n" + text})
    served = {config.api: streaming, other_api: other in (OK, TRUNCATED)}
    return {
        "streaming": streaming,
        "stream_error": None if streaming else ERROR_CLASSES[full],
        "status": sink.status or None,
        "usage": sink.usage is not None,
        "finish_reason": sink.finished,
        "done": sink.done,
        "serves": {
            "chat": served[openai.CHAT],
            "completions": served[openai.COMPLETIONS],
            "models": models_status == 200 and config.model.encode() in models_body,
        },
        "metrics": {
            "url": metrics_url,
            "present": metrics_status == 200 and bool(text.strip()),
            "families": families,
        },
        "serial": serial,
        "serial_detail": serial_detail,
        "accepts": accepts,
    }


def rows(report: dict) -> list[tuple[str, bool | None, str]]:
    """The report as (check, passed, detail) rows: the CLI's table and the endpoint page's."""

    def yes(value):
        return None if value is None else bool(value)

    accepts = report.get("accepts") or {}
    part_names = {
        openai.PART_REQUEST_ID: "correlation header (UUID)",
        openai.PART_STREAM_OPTIONS: "stream_options",
        openai.PART_ACCEPT: "Accept: text/event-stream",
    }
    metrics = report.get("metrics") or {}
    serves = report.get("serves") or {}
    streamed = report.get("streaming")
    status = f" (HTTP {report['status']})" if report.get("status") else ""

    def of_stream(value):  # what the stream showed is unknown when there was no stream
        return yes(value) if streamed else None

    out = [
        ("streaming works", yes(streamed), "" if streamed else f"{report.get('stream_error')}{status}"),
        (
            "usage in the stream (include_usage honoured)",
            of_stream(report.get("usage")),
            "token counts will be estimated from events" if streamed and not report.get("usage") else "",
        ),
        (
            "finish_reason present",
            of_stream(report.get("finish_reason")),
            "every answer would count as cut off" if streamed and not report.get("finish_reason") else "",
        ),
        ("[DONE] sent", of_stream(report.get("done")), ""),
        ("chat completions served", yes(serves.get("chat")), ""),
        ("completions served", yes(serves.get("completions")), ""),
        ("/v1/models lists the model", yes(serves.get("models")), ""),
        (
            "Prometheus metrics",
            yes(metrics.get("present")),
            ", ".join(metrics.get("families") or []) or ("no known families" if metrics.get("present") else ""),
        ),
        (
            "handles requests concurrently",
            None if report.get("serial") is None else not report["serial"],
            report.get("serial_detail", ""),
        ),
    ]
    for part, ok in accepts.items():
        out.append((f"accepts {part_names.get(part, part)}", yes(ok), "" if ok is not False else "left out by probes"))
    return out


def format_table(report: dict) -> str:
    marks = {True: "yes", False: "NO", None: "?"}
    table = rows(report)
    width = max(len(name) for name, _, _ in table)
    return "\n".join(f"{name.ljust(width)}  {marks[ok]:<3}  {detail}".rstrip() for name, ok, detail in table)


def run_check(config: ProbeConfig, *, budget_s: float = 120.0) -> dict:
    """The check on a fresh event loop, bounded in time as a whole (a server that hangs on every
    request must not hold a web worker for minutes)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(asyncio.wait_for(check(config), budget_s))
