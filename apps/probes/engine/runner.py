"""Runs stages of load against one endpoint and records every request.

All timing happens on the event loop's thread with the monotonic clock: the send time just
before the request bytes are written, token times when their bytes arrive (http1.py). A
ticker measures how late the loop wakes up; if the loop (or the schedule) runs late, the run
says the client was saturated instead of reporting its own slowness as server latency.
"""

from __future__ import annotations

import asyncio
import math
import re
import resource
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from apps.core.headers import request_id_header
from apps.net.netguard import pin
from apps.probes.engine import diagnosis, openai
from apps.probes.engine.http1 import ConnectError, ConnectionPool, ProtocolError, ResponseSink, request_head
from apps.probes.engine.profiles import CONSTANT, OPEN_LOOP, Stage, arrival_times, shard, shard_concurrency
from apps.probes.engine.prompts import Prompt, PromptSet
from apps.probes.engine.records import (
    CANARY_STAGE,
    CANCELLED,
    CONNECT,
    ERROR_CLASSES,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_429,
    MALFORMED,
    MAX_SAMPLES,
    OK,
    TIMEOUT,
    TOKENS_COUNTED,
    TOKENS_USAGE,
    TRUNCATED,
    Records,
)
from apps.probes.engine.scrape import MetricsScraper
from apps.probes.engine.sse import MalformedStream, SSEParser
from apps.probes.engine.stats import SLO, Window, format_error_details, stage_windows, summarize, summarize_canary

NAN = math.nan
LOOP_TICK = 0.002  # often enough to catch the bursts that delay token timestamps
FAIL_FAST_AFTER = 200  # a run whose first this-many requests all failed stops there
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 token)
# Headers the engine writes itself: an extra header may not replace or repeat them.
_OWN_HEADERS = {"host", "content-length", "content-type", "accept", "authorization", "transfer-encoding"}


def api_base(url: str) -> tuple[str, str]:
    """(URL without path, API base path): "http://h:8000" and "http://h:8000/v1" both mean /v1."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return f"{parts.scheme}://{parts.netloc}", path


@dataclass(frozen=True)
class Canary:
    """Tiny requests at a low constant rate beside the load. Their TTFT is almost all queueing and
    scheduling delay, so they show what any user waits for while the deployment scales, apart from
    the prompt sizes of the load itself. They are recorded as stage CANARY_STAGE and kept out of
    the run's figures (summarized on their own as "canary")."""

    rate: float = 1.0
    prompt_tokens: int = 8
    max_tokens: int = 4

    def __post_init__(self):
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("the canary rate must be a positive number (requests/s)")
        if self.prompt_tokens < 1 or self.max_tokens < 1:
            raise ValueError("the canary's prompt_tokens and max_tokens must be at least 1")


@dataclass
class ProbeConfig:
    base_url: str
    model: str
    stages: list[Stage]
    api: str = openai.CHAT
    api_key: str | None = field(default=None, repr=False)  # never in a log line that prints a config
    prompts: PromptSet | None = None
    max_tokens: int = 128
    extra_body: dict | None = None
    request_timeout: float = 60.0
    warmup: float = 0.0
    cooldown: float = 0.0
    seed: int = 0
    slo: SLO = field(default_factory=SLO)
    metrics_url: str | None = None
    scrape_interval: float = 2.0
    allow_private: bool = False
    max_requests: int | None = None
    saturation_threshold_ms: float = 5.0
    shard_index: int = 0
    shard_count: int = 1
    cancel_grace: float = 2.0
    canary: Canary | None = None  # sent by shard 0 only, beside the stages (not a sweep)
    request_id_header: str | None = openai.DEFAULT_REQUEST_ID_HEADER  # None: send no correlation id
    request_id_nonce: int | None = None  # shared by a run's shards (random when None)
    parts_off: frozenset[str] = frozenset()  # optional request parts known to be refused (openai.OPTIONAL_PARTS)
    # Sent with every request, e.g. the tenant a gateway should bill it to (engine/tenants.py).
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __post_init__(self):
        key = self.api_key
        if key is not None and (not key.isascii() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key)):
            # Written into the request head: a CR or LF would inject header lines.
            raise ValueError("the API key contains control or non-ASCII characters")
        self.request_id_header = request_id_header(self.request_id_header)
        own = _OWN_HEADERS | {(self.request_id_header or "").lower()}
        for name, value in self.headers:
            if not _TOKEN.fullmatch(name) or name.lower() in own:
                raise ValueError(f"{name!r} cannot be sent as an extra header")
            if not value.isascii() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
                raise ValueError(f"the value of header {name} contains control or non-ASCII characters")


class PreflightFailed(Exception):
    """The one request sent before any load failed: `diagnosis` says how, and what to check."""

    def __init__(self, diagnosis: dict):
        super().__init__(diagnosis["message"])
        self.diagnosis = diagnosis


class StreamSink(ResponseSink):
    """Turns a streamed completion into the request's timings, as its bytes arrive."""

    __slots__ = (
        "parser",
        "first",
        "last",
        "events",
        "gaps",
        "usage",
        "malformed",
        "stream_error",
        "done",
        "finished",
        "error_payload",
        "note",
    )

    def __init__(self, future):
        super().__init__(future)
        self.parser: SSEParser | None = None
        self.first = NAN
        self.last = NAN
        self.events = 0
        self.gaps: list[float] = []
        self.usage: tuple[int, int] | None = None
        self.malformed = False
        self.stream_error = False
        self.done = False
        self.finished = False  # a finish_reason was seen: the server says the answer is complete
        self.error_payload = b""  # the first {"error": ...} event, for the error samples
        self.note = ""  # what failed when there is no body to show (connect, timeout)

    def on_head(self, status, headers, now):
        self.status = status
        self.headers = headers
        if status == 200:
            self.parser = SSEParser()
            self.max_body = diagnosis.EXCERPT_BYTES  # the stream's first bytes: shown if it is not a stream

    def on_data(self, data, now):
        if self.parser is None:
            super().on_data(data, now)
            return
        if len(self.body) < self.max_body:
            self.body += data[: self.max_body - len(self.body)]
        try:
            events = self.parser.feed(data)
        except MalformedStream:
            self.malformed = True
            return
        for _, payload in events:
            self._event(payload, now)

    def _event(self, payload: bytes, now: float) -> None:
        kind, usage, finished = openai.classify_event(payload)
        if usage is not None:
            self.usage = usage
        if finished:
            self.finished = True
        if kind == openai.EV_TOKEN:
            if self.events:
                self.gaps.append(now - self.last)
            else:
                self.first = now
            self.last = now
            self.events += 1
        elif kind == openai.EV_DONE:
            self.done = True
        elif kind == openai.EV_MALFORMED:
            self.malformed = True  # the run goes on; this request counts as "malformed"
        elif kind == openai.EV_ERROR:
            self.stream_error = True
            self.error_payload = self.error_payload or payload[: diagnosis.EXCERPT_BYTES]

    def on_end(self, now):
        if self.parser is not None:
            for _, payload in self.parser.close():
                self._event(payload, now)
        super().on_end(now)


@dataclass
class ProbeResult:
    records: Records
    windows: list[Window]
    summary: dict
    server_metrics: dict | None
    meta: dict


@dataclass
class Progress:
    elapsed: float
    stage: str
    sent: int
    completed: int
    errors: int
    in_flight: int
    ttft_p95_ms_recent: float


class ProbeRun:
    """One engine process's share of a probe. `await run.execute()` or drive stages yourself (sweep)."""

    def __init__(
        self,
        config: ProbeConfig,
        *,
        cancel: asyncio.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.cancel = cancel or asyncio.Event()
        self.on_progress = on_progress
        self.progress_interval = progress_interval
        self.clock = clock
        self.records = Records()
        self.windows: list[Window] = []
        self.prompts = config.prompts or PromptSet.synthetic(prompt_tokens=128, seed=config.seed)
        origin_url, self.base_path = api_base(config.base_url)
        self.target = pin(origin_url, allow_private=config.allow_private)
        self.host_header = urlsplit(origin_url).netloc
        self.pool = ConnectionPool(
            self.target.address, self.target.port, tls=self.target.scheme == "https", server_hostname=self.target.host
        )
        self._bodies: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        # The optional parts this run sends: all but those known refused (the preflight may drop more).
        self.parts = set(openai.OPTIONAL_PARTS) - set(config.parts_off)
        if config.request_id_header is None:
            self.parts.discard(openai.PART_REQUEST_ID)
        self.dropped: list[dict] = []  # parts the preflight found refused, and why
        self.ids = openai.RequestIds(config.shard_index, config.request_id_nonce)
        # Redacted from every sample and diagnosis: a tenant's header may be its credential.
        self.secrets = tuple(s for s in (config.api_key, *(v for _, v in config.headers)) if s)
        self._in_flight: dict[StreamSink, object] = {}
        self._tasks: set[asyncio.Task] = set()
        self.loop_lag_ms = array("f")
        self.loop_lag_at = array("d")  # when each late timer fired, seconds from origin
        self.sent = self.completed = self.errors = 0
        self.failed_fast = False  # stopped because every request so far failed (FAIL_FAST_AFTER)
        self.retried_stale = 0  # requests resent after a reused connection was closed under them
        self._recent_ttft: list[float] = []
        self.origin = 0.0
        self._stage_label = ""
        self.stage_arrivals: dict[int, list[float]] = {}  # open-loop sends per stage (intended times)
        self._t = 0.0  # where the next stage starts, seconds from origin

    # --- requests --------------------------------------------------------------------------

    def _build(self, prompt: Prompt, max_tokens: int, parts: set[str]) -> tuple[bytes, bytes]:
        """(head without its final CRLF, body): the correlation id, different per send, goes between."""
        c = self.config
        body = openai.request_body(
            c.api, c.model, prompt.text, max_tokens, c.extra_body, stream_usage=openai.PART_STREAM_OPTIONS in parts
        )
        headers = {"Content-Type": "application/json"}
        if openai.PART_ACCEPT in parts:
            headers["Accept"] = "text/event-stream"
        if c.api_key:
            headers["Authorization"] = f"Bearer {c.api_key}"
        headers.update(c.headers)
        path = self.base_path + openai.request_path(c.api)
        full = request_head("POST", path, self.host_header, headers, body)
        return full[: len(full) - len(body) - 2], body

    def _with_id(self, head: bytes, body: bytes, request_id: bytes | None) -> bytes:
        if request_id is None:
            return b"%s\r\n%s" % (head, body)
        return b"%s%s: %s\r\n\r\n%s" % (head, self.config.request_id_header.encode(), request_id, body)

    def _request_bytes(self, prompt: Prompt, seq: int, max_tokens: int) -> bytes:
        """The request, built once per prompt; only the correlation id differs between sends."""
        key = (id(prompt), max_tokens)
        parts = self._bodies.get(key)
        if parts is None:
            parts = self._bodies[key] = self._build(prompt, max_tokens, self.parts)
        head, body = parts
        return self._with_id(head, body, self.ids.text(seq) if openai.PART_REQUEST_ID in self.parts else None)

    def _take_seq(self) -> int:
        # Counted when a send is scheduled, not when its coroutine starts, so the request
        # budget check that follows sees it.
        seq = self.sent
        self.sent += 1
        return seq

    async def _request(
        self, intended: float, stage: int, seq: int, prompts: PromptSet | None = None, max_tokens: int | None = None
    ) -> int:
        """One request; `intended` is its scheduled send time (seconds from origin). Returns its error class."""
        prompt = (prompts or self.prompts).next()
        payload = self._request_bytes(prompt, seq, max_tokens or self.config.max_tokens)
        sink, sent, error = await self._exchange(payload)
        self._record(intended, sent - self.origin, sink, prompt, stage, error, seq)
        return error

    async def _exchange(self, payload: bytes) -> tuple[StreamSink, float, int]:
        """Send one request and read its answer: (sink, send time, error class)."""
        loop = asyncio.get_running_loop()
        for fresh in (False, True):
            sink = StreamSink(loop.create_future())
            try:
                conn = await self.pool.acquire(fresh=fresh)
            except ConnectError as exc:
                sink.note = str(exc)
                return sink, NAN, CONNECT
            sent = self.clock()
            self._in_flight[sink] = conn
            conn.send(payload, sink)
            timer = loop.call_later(self.config.request_timeout, self._expire, sink, conn, TIMEOUT)
            error = OK
            try:
                await sink.future
            except _Expired as exc:
                error = exc.error_class
            except ProtocolError as exc:
                error, sink.note = MALFORMED, f"not valid HTTP: {exc}"
            except (ConnectionError, OSError) as exc:
                sink.note = f"{type(exc).__name__}: {exc}"
                # Dropped before any answer, or during a stream: a cut-off stream is judged by what
                # arrived (an answer whose finish_reason came is complete; one without was cut off).
                error = CONNECT if sink.status == 0 else MALFORMED if sink.parser is None else TRUNCATED
            finally:
                timer.cancel()
                self._in_flight.pop(sink, None)
            if error == CONNECT and conn.requests > 1 and not fresh and not self.cancel.is_set():
                # A kept-alive connection the server closed as we reused it, before any reply (its
                # idle timeout raced our send): retried once on a new connection, as HTTP clients
                # do. The retry's send time is the one recorded, so the delay shows as schedule lag.
                conn.abort()
                self.retried_stale += 1
                continue
            break
        if error in (OK, TRUNCATED):
            error = self._status_class(sink)
        if error == TIMEOUT:
            sink.note = f"no complete answer within {self.config.request_timeout:g} s ({sink.events} token events)"
        if error == OK:
            self.pool.release(conn)
        else:
            conn.abort()
        return sink, sent, error

    @staticmethod
    def _status_class(sink: StreamSink) -> int:
        s = sink.status
        if s == 200:
            if sink.malformed or (sink.events == 0 and not sink.done):
                return MALFORMED  # a 200 that is not an event stream (an HTML page, plain JSON, nothing)
            if sink.stream_error:
                return HTTP_5XX
            # [DONE] or the end of the body without a finish_reason: the answer was cut off.
            return OK if sink.finished else TRUNCATED
        if s == 429:
            return HTTP_429
        return HTTP_5XX if s >= 500 else HTTP_4XX

    def _sample(self, sink: StreamSink, error: int, out_tokens: int) -> str:
        """What the user should see of one failed request (redacted, bounded)."""
        if error == TRUNCATED:
            how = "after [DONE]" if sink.done else "at the end of the body" if not sink.note else "when dropped"
            return f"stream ended without a finish_reason {how}, after {out_tokens} tokens"
        if sink.stream_error:
            return diagnosis.excerpt(sink.error_payload, self.secrets)
        if sink.status and sink.body:
            return diagnosis.excerpt(sink.body, self.secrets)
        if sink.note:
            return diagnosis.redact(sink.note, self.secrets)
        return "(empty body)" if sink.status else ERROR_CLASSES[error]

    # --- preflight ---------------------------------------------------------------------------

    REFUSAL_STATUSES = (400, 406, 415, 422)  # what a server answers to a field or header it will not take
    TRANSIENT_STATUSES = (429, 500, 502, 503, 504)  # may pass on a second try: the preflight tries again
    PREFLIGHT_RETRIES = 2
    PREFLIGHT_RETRY_DELAY_S = 1.0

    PREFLIGHT_PROMPT = Prompt("Say hello in one short sentence.", 8)

    async def _attempt(
        self, parts: set[str], number: int, *, prompt: Prompt | None = None, max_tokens: int | None = None
    ) -> dict:
        """One request (not load) with `parts` of the optional ones: what happened, in full."""
        max_tokens = max_tokens or min(self.config.max_tokens, 16)
        head, body = self._build(prompt or self.PREFLIGHT_PROMPT, max_tokens, parts)
        request_id = openai.RequestIds(openai.RequestIds.PREFLIGHT_SHARD, self.ids.nonce).text(number)
        sink, _, error = await self._exchange(
            self._with_id(head, body, request_id if openai.PART_REQUEST_ID in parts else None)
        )
        sent_head = (
            head
            + (
                b"%s: %s\r\n" % (self.config.request_id_header.encode(), request_id)
                if openai.PART_REQUEST_ID in parts
                else b""
            )
            + b"\r\n"
        )
        return {"parts": parts, "error": error, "sink": sink, "head": sent_head, "body": body}

    async def preflight(self) -> dict:
        """One request before any load. If the server refuses it for an optional part (a 400, 406,
        415 or 422), the request is tried once with no optional parts; if that works, each part is
        tried alone and those it refuses are dropped for the run. Anything else that fails raises
        PreflightFailed with the diagnosis: a run never sends thousands of requests that all fail
        the same way. Returns what was sent and what was dropped."""
        number = 0
        first = await self._attempt(set(self.parts), number)
        attempts = [first]
        for _ in range(self.PREFLIGHT_RETRIES):  # one unlucky 429 or 5xx must not fail a whole run
            if first["sink"].status not in self.TRANSIENT_STATUSES:
                break
            await asyncio.sleep(self.PREFLIGHT_RETRY_DELAY_S)
            number += 1
            first = await self._attempt(set(self.parts), number)
            attempts.append(first)
        if first["error"] not in (OK, TRUNCATED) and first["sink"].status in self.REFUSAL_STATUSES and self.parts:
            number += 1
            bare = await self._attempt(set(), number)
            attempts.append(bare)
            if bare["error"] in (OK, TRUNCATED):
                refused = []
                for part in sorted(self.parts):
                    number += 1
                    alone = await self._attempt({part}, number)
                    attempts.append(alone)
                    if alone["error"] not in (OK, TRUNCATED):
                        refused.append(part)
                # Each alone passed but not together: send none of them rather than guess.
                refused = refused or sorted(self.parts)
                why = f"HTTP {first['sink'].status} with it, 200 without"
                self.dropped = [{"part": part, "why": why} for part in refused]
                self.parts -= set(refused)
                self._bodies.clear()
                first = bare
        if first["error"] not in (OK, TRUNCATED):
            raise PreflightFailed(self._diagnosis(first, attempts))
        report = {"ok": True, "parts": sorted(self.parts), "dropped": self.dropped, "requests": len(attempts)}
        if first["error"] == TRUNCATED:
            report["warning"] = diagnosis.hint(200, "truncated")
        return report

    def _diagnosis(self, attempt: dict, attempts: list[dict]) -> dict:
        sink, error = attempt["sink"], ERROR_CLASSES[attempt["error"]]
        content_type = sink.headers.get(b"content-type", b"").decode("latin-1") if sink.status else ""
        body = self._sample(sink, attempt["error"], sink.events) if sink.status else ""
        status_text = f"HTTP {sink.status}" if sink.status else error
        lines = body.strip().splitlines()
        first_line = (lines[0][:200] if lines else "(empty body)") if sink.status else sink.note
        return {
            "error_class": error,
            "status": sink.status or None,
            "content_type": content_type,
            "body": body,
            "request": diagnosis.describe_request(attempt["head"], attempt["body"], self.secrets),
            "hint": diagnosis.hint(sink.status, error, content_type=content_type, body=body),
            "message": f"preflight failed: {status_text}: {first_line}"[:300],
            "attempts": [
                {
                    "parts": sorted(a["parts"]),
                    "status": a["sink"].status or None,
                    "error_class": ERROR_CLASSES[a["error"]],
                }
                for a in attempts
            ],
        }

    def _expire(self, sink: StreamSink, conn, error_class: int) -> None:
        sink.on_error(_Expired(error_class))
        conn.abort()

    def _record(self, intended, sent, sink: StreamSink, prompt: Prompt, stage: int, error: int, seq: int) -> None:
        o = self.origin
        first = sink.first - o
        last = sink.last - o
        if sink.usage is not None:
            in_tok, out_tok, source = sink.usage[0] or prompt.approx_tokens, sink.usage[1], TOKENS_USAGE
        else:
            in_tok, out_tok, source = prompt.approx_tokens, sink.events, TOKENS_COUNTED
        self.records.append(
            intended, sent, first, last, in_tok, out_tok, sink.events, error, source, stage, seq, sink.status
        )
        if error != OK and error != CANCELLED and len(self.records.samples.get(error, ())) < MAX_SAMPLES:
            self.records.add_sample(error, sink.status, self._sample(sink, error, out_tok))
        if error == OK:
            self.completed += 1
            if sink.gaps and out_tok:
                per_event = out_tok / sink.events  # tokens in an event, when a chunk carries several
                hist = self.records.itl_for(stage)
                for gap in sink.gaps:
                    hist.add(gap / per_event)
            if first == first:
                self._recent_ttft.append((first - sent) * 1000)
        else:
            self.errors += 1
            if not self.completed and self.errors >= FAIL_FAST_AFTER and not self.cancel.is_set():
                # The preflight passed, then nothing did: stop rather than send thousands more.
                self.failed_fast = True
                self.cancel.set()

    # --- stages ----------------------------------------------------------------------------

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def budget_left(self) -> bool:
        m = self.config.max_requests
        return m is None or self.sent < m

    async def _capped(self, cap: asyncio.Semaphore, t: float, index: int, seq: int) -> None:
        try:
            await self._request(t, index, seq)
        finally:
            cap.release()

    async def _until(self, t: float) -> None:
        """Wait until `t` without waking early: timers (uvloop's are 1 ms) may fire a little
        before their deadline, and a send before its intended time would hide lag."""
        while (delay := self.origin + t - self.clock()) > 0:
            await asyncio.sleep(delay if delay > 0.002 else 0)

    async def _sleep_until(self, t: float) -> None:
        delay = self.origin + t - self.clock()
        if delay > 0:
            try:
                await asyncio.wait_for(self.cancel.wait(), delay)
            except TimeoutError:
                pass

    async def run_stage(
        self, stage: Stage, index: int, *, warmup: float = 0.0, start_at: float | None = None
    ) -> Window:
        """Run one stage from where the previous one ended; return its measurement window.

        A stage stopped early (cancel, request budget spent) gets a window that ends when it
        stopped, so its throughput is not divided by time in which nothing was sent.
        """
        c = self.config
        start = self._t if start_at is None else start_at  # a stage placed later (a tenant's burst)
        end = start + stage.duration
        self._stage_label = stage.label
        if stage.kind in OPEN_LOOP:
            times = shard(arrival_times(stage, seed=c.seed + index, start=start), c.shard_index, c.shard_count)
            # Optional cap on requests in flight: when reached, sends wait (and their lag shows it).
            cap = None
            if stage.concurrency:
                cap = asyncio.Semaphore(max(shard_concurrency(stage.concurrency, c.shard_index, c.shard_count), 1))
            dispatched = self.stage_arrivals[index] = []
            for t in times:
                if self.cancel.is_set() or not self.budget_left():
                    break
                await self._until(t)
                if self.cancel.is_set():
                    break
                dispatched.append(t)
                seq = self._take_seq()
                if cap is not None:
                    await cap.acquire()
                    self._spawn(self._capped(cap, t, index, seq))
                else:
                    self._spawn(self._request(t, index, seq))
            if self.cancel.is_set():
                pass  # in-flight streams get their grace in _drain
            elif not self.budget_left():
                if self._tasks:  # the budget is spent: finish what is in flight, then stop
                    await asyncio.wait(set(self._tasks))
            else:
                await self._sleep_until(end)
        else:
            workers = shard_concurrency(stage.workers, c.shard_index, c.shard_count)

            async def worker():
                backoff = 0.0
                while not self.cancel.is_set() and self.budget_left() and self.clock() - self.origin < end:
                    error = await self._request(self.clock() - self.origin, index, self._take_seq())
                    if error == CONNECT:
                        # A refused connection fails in microseconds: back off instead of hammering.
                        backoff = min(max(backoff * 2, 0.05), 1.0)
                        await self._sleep_until(self.clock() - self.origin + backoff)
                    else:
                        backoff = 0.0

            await asyncio.gather(*(worker() for _ in range(workers)))
        stopped_early = self.cancel.is_set() or not self.budget_left()
        stopped = min(end, self.clock() - self.origin) if stopped_early else end
        self._t = end
        window = Window(index, stage.label, start + warmup, max(stopped, start + warmup))
        self.windows.append(window)
        return window

    async def _canary(self, until: float) -> None:
        """The canary's sends, from the origin to `until` (the end of the last stage)."""
        canary = self.config.canary
        prompts = PromptSet.synthetic(prompt_tokens=canary.prompt_tokens, seed=self.config.seed + 0xCA)
        for t in arrival_times(Stage(CONSTANT, until, rate=canary.rate), seed=0):
            await self._sleep_until(t)  # wakes at once on cancel
            if self.cancel.is_set() or not self.budget_left():
                return
            await self._until(t)
            self._spawn(self._request(t, CANARY_STAGE, self._take_seq(), prompts, canary.max_tokens))

    async def _drain(self) -> None:
        """Let in-flight requests finish: all of them normally, `cancel_grace` seconds after a cancel."""
        if not self._tasks:
            return
        timeout = self.config.cancel_grace if self.cancel.is_set() else self.config.request_timeout + 1
        done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        if pending:
            for sink, conn in list(self._in_flight.items()):
                sink.on_error(_Expired(CANCELLED))
                conn.abort()
            await asyncio.wait(pending, timeout=2)

    async def _tick(self, stop: asyncio.Event) -> None:
        """Event-loop lag: how late a short timer fires. Late timers mean late timestamps."""
        # self.clock, not loop.time(): uvloop's loop clock has 1 ms resolution.
        expected = self.clock() + LOOP_TICK
        while not stop.is_set():
            await asyncio.sleep(max(0.0, expected - self.clock()))
            now = self.clock()
            self.loop_lag_ms.append((now - expected) * 1000)
            self.loop_lag_at.append(now - self.origin)
            expected = now + LOOP_TICK

    def measured_loop_lag_ms(self) -> list[float]:
        """Loop-lag samples from the first measurement window on: the ones that can matter.

        A request counted in the figures is sent inside a window, so a stall that was over before
        the first window began (the warm-up: opening the first wave of connections, say) delayed
        none of its sends or reads. Later ones count, cool-down and drain included, since counted
        requests may still be streaming then. A stall straddling the start counts, in full.
        """
        if not self.windows:
            return list(self.loop_lag_ms)
        start = min(w.start for w in self.windows)
        return [lag for lag, at in zip(self.loop_lag_ms, self.loop_lag_at, strict=True) if at >= start]

    def recent_ttft_p95(self) -> float:
        """p95 TTFT (ms) of the last 500 successful requests: the live figure on progress bars."""
        if len(self._recent_ttft) > 5000:
            del self._recent_ttft[:-500]
        recent = sorted(self._recent_ttft[-500:])
        return recent[int(0.95 * (len(recent) - 1))] if recent else NAN

    async def _report(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.progress_interval)
            except TimeoutError:
                pass
            p95 = self.recent_ttft_p95()
            self.on_progress(
                Progress(
                    elapsed=self.clock() - self.origin,
                    stage=self._stage_label,
                    sent=self.sent,
                    completed=self.completed,
                    errors=self.errors,
                    in_flight=len(self._in_flight),
                    ttft_p95_ms_recent=p95,
                )
            )

    async def execute(self, driver=None) -> ProbeResult:
        """Run the configured stages (or `driver(self)`, e.g. a sweep) with metrics and lag tracking."""
        raise_fd_limit()
        c = self.config
        self.origin = self.clock()
        stop = asyncio.Event()
        helpers = [asyncio.ensure_future(self._tick(stop))]
        scraper = None
        if c.metrics_url:
            scraper = MetricsScraper(
                c.metrics_url, allow_private=c.allow_private, interval=c.scrape_interval, origin=self.origin
            )
            helpers.append(asyncio.ensure_future(scraper.run(stop)))
        if self.on_progress:
            helpers.append(asyncio.ensure_future(self._report(stop)))
        if c.canary is not None and driver is None and c.shard_index == 0:
            helpers.append(asyncio.ensure_future(self._canary(sum(s.duration for s in c.stages))))
        extra: dict = {}
        try:
            if driver is not None:
                extra = await driver(self)
            else:
                for index, stage in enumerate(c.stages):
                    if self.cancel.is_set() or not self.budget_left():
                        break
                    await self.run_stage(stage, index)
                self._apply_run_windows()
            await self._drain()
        finally:
            stop.set()
            await asyncio.gather(*helpers, return_exceptions=True)
            self.pool.close()
        if not self.windows:
            self.windows = [Window(0, "none", 0.0, 0.0)]
        records, canary = self.records.split(CANARY_STAGE)
        summary = summarize(
            records,
            self.windows,
            c.slo,
            loop_lag_ms=self.measured_loop_lag_ms(),
            saturation_threshold_ms=c.saturation_threshold_ms,
        )
        summary.update(extra)
        if len(canary):
            summary["canary"] = summarize_canary(canary, self.windows, c.slo)
        summary["cancelled"] = self.cancel.is_set() and not self.failed_fast
        if self.failed_fast:
            lines = format_error_details(summary["error_details"])
            summary["failed_fast"] = f"stopped: the first {self.errors} requests all failed ({'; '.join(lines)})"[:500]
        meta = {
            "target": c.base_url,
            "model": c.model,
            "api": c.api,
            "max_tokens": c.max_tokens,
            "seed": c.seed,
            "shard": [c.shard_index, c.shard_count],
            "stages": [s.to_dict() for s in c.stages],
            "connections_opened": self.pool.opened,
            "request_id": {
                "header": c.request_id_header if openai.PART_REQUEST_ID in self.parts else None,
                "nonce": f"{self.ids.nonce:012x}",
                "shard": c.shard_index,
            },
            "request_parts": sorted(self.parts),
            "dropped_parts": self.dropped,
            "stale_connection_retries": self.retried_stale,
            "origin_monotonic": self.origin,  # record times are seconds after this CLOCK_MONOTONIC reading
            "record_bytes": self.records.nbytes,
        }
        return ProbeResult(self.records, self.windows, summary, scraper.to_dict() if scraper else None, meta)

    def _apply_run_windows(self) -> None:
        spans = [(w.start, w.end, w.label) for w in self.windows]
        self.windows = stage_windows(spans, self.config.warmup, self.config.cooldown)


class _Expired(Exception):
    def __init__(self, error_class: int):
        super().__init__(error_class)
        self.error_class = error_class


def raise_fd_limit() -> None:
    # Thousands of concurrent streams need thousands of sockets; the soft limit is often 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()


def run_probe(config: ProbeConfig, **kwargs) -> ProbeResult:
    """Run a probe to completion on a fresh event loop (uvloop when available)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(ProbeRun(config, **kwargs).execute())
