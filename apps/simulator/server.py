"""The simulator's HTTP side: OpenAI-compatible routes over a small asyncio HTTP/1.1 server.

Routes: GET /v1/models, POST /v1/chat/completions and /v1/completions (stream or not, usage
in the last chunk when `stream_options.include_usage`), GET /metrics (Prometheus text),
GET /health, GET /admin/ground-truth (what was really sent when, per X-Request-Id, and for
which tenant), POST /admin/reset. Plain asyncio, no Django. A gateway (apps.simulator.tenancy)
names each request's tenant and, in bucket mode, refuses a tenant over its rate with 429.

Ground truth is what happened on the wire: a token's time is read just before it is written, and
a request's arrival is when its first bytes reached the host. On Linux the server reads with the
kernel's receive stamps (apps.net.kernel_time) to know that: its own loop reads a request late
whenever it is busy writing other streams' tokens (several ms at 64 streams), and that delay is
the simulator's, not the client's. Elsewhere arrival is our clock when the bytes are read.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
import uuid

import orjson

from apps.net.kernel_time import KERNEL_TIMESTAMPS, StampedTransport, enable
from apps.simulator.model import Deployment, Sequence, clock, metrics_text
from apps.simulator.scenarios import SimConfig
from apps.simulator.tenancy import Gateway, label

WORDS = [
    w.encode() + b" "
    for w in (
        "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
        "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
    ).split()
]
MAX_BODY = 10 * 1024 * 1024
ACCEPT_BURST = 64  # connections taken per wake-up, so a wave of connects does not hold up token writes


def approx_tokens(text: str) -> int:
    # One token per word: what BPE tokenizers give for the common short words of the
    # engine's synthetic prompts. Real text runs ~1.3 tokens a word; a real server says.
    return max(1, len(text.split()))


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class Stream:
    """Pre-encoded SSE events for one response, so a token costs one concatenation."""

    __slots__ = ("chat", "head", "tail", "tail_last", "include_usage", "prompt_tokens", "model", "rid")

    def __init__(self, chat: bool, rid: str, model: str, include_usage: bool, prompt_tokens: int):
        self.chat, self.rid, self.model = chat, rid, model
        self.include_usage, self.prompt_tokens = include_usage, prompt_tokens
        created = int(time.time())
        obj = b"chat.completion.chunk" if chat else b"text_completion"
        base = b'data: {"id":"%s","object":"%s","created":%d,"model":"%s","choices":[{"index":0,' % (
            rid.encode(),
            obj,
            created,
            model.encode(),
        )
        self.head = base + (b'"delta":{"content":"' if chat else b'"text":"')
        close = b'"}' if chat else b'"'
        self.tail = close + b',"finish_reason":null}]}\n\n'
        self.tail_last = close + b',"finish_reason":"length"}]}\n\n'

    def role(self) -> bytes:
        return chunk(
            self.head.split(b'"choices"')[0] + b'"choices":[{"index":0,"delta":{"role":"assistant"},'
            b'"finish_reason":null}]}\n\n'
        )

    def token(self, i: int, last: bool) -> bytes:
        return chunk(self.head + WORDS[i % len(WORDS)] + (self.tail_last if last else self.tail))

    def end(self, produced: int) -> bytes:
        out = b""
        if self.include_usage:
            usage = {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": produced,
                "total_tokens": self.prompt_tokens + produced,
            }
            obj = {
                "id": self.rid,
                "object": "chat.completion.chunk" if self.chat else "text_completion",
                "model": self.model,
                "choices": [],
                "usage": usage,
            }
            out += chunk(b"data: " + orjson.dumps(obj) + b"\n\n")
        return out + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def completion_json(chat: bool, rid: str, model: str, prompt_tokens: int, produced: int) -> bytes:
    text = b"".join(WORDS[i % len(WORDS)] for i in range(produced)).decode().rstrip()
    choice = (
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
        if chat
        else {"index": 0, "text": text, "finish_reason": "length"}
    )
    return orjson.dumps(
        {
            "id": rid,
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": produced,
                "total_tokens": prompt_tokens + produced,
            },
        }
    )


class SimProtocol(asyncio.Protocol):
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.seq: Sequence | None = None
        self.busy = False
        self.buf_at = 0.0  # when the first byte now in buf arrived
        self.last_read_at = 0.0
        self.arrival = 0.0  # when the first byte of the request being handled arrived

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.seq is not None:
            self.sim.deployment.cancel(self.seq)
            self.seq = None

    def data_received(self, data):
        # asyncio's transports (no kernel stamps): the bytes are timed when this loop reads them.
        self.data_received_at(data, clock())

    def data_received_at(self, data: bytes, now: float) -> None:
        """Bytes that reached the host at `now` (the kernel's receive time, or our clock when read)."""
        if not self.buf:
            # Ground truth "arrival" is when the request's first bytes came in, not when it was
            # parsed: parsing waits while this loop writes tokens for other streams.
            self.buf_at = now
        self.last_read_at = now
        self.buf += data
        self.parse()

    def parse(self) -> None:
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            try:
                method, target, _ = head[0].split(" ", 2)
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self.respond(400, {"error": {"message": "bad request"}}, close=True)
                return
            if length > MAX_BODY:
                self.respond(413, {"error": {"message": "body too large"}}, close=True)
                return
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            self.arrival = self.buf_at
            if self.buf:
                self.buf_at = self.last_read_at  # a pipelined next request: its bytes were in the latest read
            self.busy = True
            self.sim.handle(self, method, target.split("?", 1)[0], headers, body)

    # --- writing -------------------------------------------------------------------------

    def respond(self, status: int, body, *, content_type="application/json", close=False, headers=None) -> None:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        reason = {
            200: "OK",
            400: "Bad Request",
            401: "Unauthorized",
            404: "Not Found",
            413: "Payload Too Large",
            429: "Too Many Requests",
            500: "Internal Server Error",
        }.get(status, "Status")
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
            f"{extra}{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        )
        self.transport.write(head.encode() + data)
        self.done(close)

    def start_stream(self, first: bytes = b"") -> None:
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + first
        )

    def done(self, close: bool = False) -> None:
        self.seq = None
        self.busy = False
        if close:
            self.transport.close()
        elif self.buf:
            self.parse()


class Simulator:
    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        self.deployment = Deployment(self.config)
        self.gateway = Gateway(self.config)
        self.server: asyncio.base_events.Server | None = None
        self.listener: socket.socket | None = None  # with kernel stamps: our own accept loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = self._loop = asyncio.get_running_loop()
        if KERNEL_TIMESTAMPS:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.listener = socket.create_server((host, port), family=family, backlog=4096)
            self.listener.setblocking(False)
            enable(self.listener)  # accepted sockets inherit it, so a request sent before accept() is stamped too
            loop.add_reader(self.listener.fileno(), self._accept)
        else:
            self.server = await loop.create_server(
                lambda: SimProtocol(self), host, port, backlog=4096, reuse_address=True
            )
        if self.config.autoscale:
            self._tasks.append(asyncio.ensure_future(self.deployment.autoscaler()))

    def _accept(self) -> None:
        listener, loop = self.listener, self._loop
        for _ in range(ACCEPT_BURST):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError:
                # Out of descriptors (or memory): retry shortly rather than spin on a readable listener.
                loop.remove_reader(listener.fileno())
                loop.call_later(0.1, self._resume_accept)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio does for its transports
            StampedTransport(loop, sock, SimProtocol(self))

    def _resume_accept(self) -> None:
        if self.listener is not None and self.listener.fileno() >= 0:
            self._loop.add_reader(self.listener.fileno(), self._accept)

    @property
    def port(self) -> int:
        return (self.listener or self.server.sockets[0]).getsockname()[1]

    def base_url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/v1"

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.server:
            self.server.close()
        if self.listener is not None and self.listener.fileno() >= 0:
            self._loop.remove_reader(self.listener.fileno())
            self.listener.close()

    # --- routing -------------------------------------------------------------------------

    def handle(self, conn: SimProtocol, method: str, path: str, headers: dict, body: bytes) -> None:
        c = self.config
        tenant = self.gateway.tenant(headers) if path.startswith("/v1/") else ""
        if path.startswith("/v1/") and c.api_key and headers.get("authorization") != f"Bearer {c.api_key}":
            conn.respond(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
        elif tenant is None:
            error = {"message": "invalid api key: not a tenant's", "type": "invalid_request_error"}
            conn.respond(401, {"error": {**error, "code": "invalid_api_key"}})
        elif method == "GET" and path == "/v1/models":
            conn.respond(200, {"object": "list", "data": [{"id": c.model, "object": "model", "owned_by": "simulator"}]})
        elif method == "GET" and path == "/metrics":
            conn.respond(200, metrics_text(self.deployment).encode(), content_type="text/plain; version=0.0.4")
        elif method == "GET" and path == "/health":
            conn.respond(200, {"status": "ok"})
        elif method == "GET" and path == "/admin/ground-truth":
            truth = {
                rid: dict(zip(("arrival", "first", "last", "tokens", "status", "tenant"), v, strict=True))
                for rid, v in self.deployment.ground_truth.items()
            }
            conn.respond(200, {"clock": "CLOCK_MONOTONIC", "requests": truth})
        elif method == "POST" and path == "/admin/reset":
            self.deployment.ground_truth.clear()
            conn.respond(200, {"ok": True})
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            if self._throttled(conn, headers, tenant):
                return
            if c.strict_request_id and not _is_uuid(headers.get("x-request-id")):
                conn.respond(400, b"", content_type="text/plain")  # what starlette-context answers: nothing
                return
            self.completion(conn, path.endswith("chat/completions"), headers, body, tenant)
        else:
            conn.respond(404, {"error": {"message": f"no route {method} {path}"}})

    def _throttled(self, conn: SimProtocol, headers: dict, tenant: str) -> bool:
        """The gateway's rate limit: answers 429 and returns True when the tenant's bucket is empty."""
        wait = self.gateway.throttle(tenant, clock())
        d = self.deployment
        if not wait:
            d.count_tenant(tenant, "ok")
            return False
        d.count_tenant(tenant, "throttled")
        rid = headers.get("x-request-id") or f"cmpl-{uuid.uuid4().hex[:16]}"
        # The server never sees it: ground truth only, not the vLLM counters.
        d.remember(Sequence(rid, 0, 0, None, None, arrival=conn.arrival, tenant=tenant), "throttled")
        error = {
            "message": f"rate limit reached for tenant {label(tenant)!r}",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        conn.respond(429, {"error": error}, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return True

    def _fault(self) -> str:
        c = self.config
        r = self.deployment.rng.random()
        for name, share in (
            ("429", c.fail_429),
            ("500", c.fail_500),
            ("hang", c.hang),
            ("malformed", c.malformed),
            ("drop", c.drop),
        ):
            if r < share:
                return name
            r -= share
        return ""

    def completion(self, conn: SimProtocol, chat: bool, headers: dict, body: bytes, tenant: str = "") -> None:
        c = self.config
        try:
            req = orjson.loads(body or b"{}")
            prompt = (
                " ".join(str(m.get("content", "")) for m in req.get("messages", []))
                if chat
                else str(req.get("prompt", ""))
            )
            max_tokens = int(req.get("max_tokens") or c.default_max_tokens)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            conn.respond(400, {"error": {"message": "body is not a valid completion request"}})
            return
        if max_tokens < 1:
            conn.respond(400, {"error": {"message": "max_tokens must be at least 1"}})
            return
        refused = [f for f in c.refuse_fields.split(",") if f and f in req]
        if refused:
            message = f"Unrecognized request argument supplied: {refused[0]}"
            conn.respond(400, {"error": {"message": message, "type": "invalid_request_error", "param": None}})
            return
        rid = headers.get("x-request-id") or f"cmpl-{uuid.uuid4().hex[:16]}"
        stream = bool(req.get("stream"))
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        prompt_tokens = approx_tokens(prompt)
        fault = self._fault()
        d = self.deployment
        if fault in ("429", "500"):
            seq = Sequence(rid, prompt_tokens, 0, None, None, tenant=tenant)
            d.record(seq, fault)
            code = int(fault)
            conn.respond(code, {"error": {"message": "injected fault", "code": code}}, headers={"Retry-After": "1"})
            return
        if fault == "hang":
            d.record(Sequence(rid, prompt_tokens, 0, None, None, tenant=tenant), "hang")
            return  # never answer; the client's timeout decides
        events = Stream(chat, rid, c.model, include_usage, prompt_tokens) if stream else None
        if c.instant:
            self._instant(conn, events, chat, rid, prompt_tokens, max_tokens, tenant)
            return

        def emit(seq: Sequence, i: int) -> bool:
            transport = conn.transport
            if transport.is_closing():
                return False
            # Read before the write: a client stamping bytes as the kernel receives them (the probe
            # engine does) can see them while write() is still returning, never before it started.
            now = clock()
            if events is not None:
                last = i == seq.max_tokens - 1
                if seq.fault == "drop" and i == seq.max_tokens // 2:
                    transport.abort()
                    d.record(seq, "dropped")
                    return False
                data = events.token(i, last)
                if seq.fault == "malformed" and i == seq.max_tokens // 2:
                    data = chunk(b'data: {"id": "broken, "choices": [\n\n') + data
                transport.write(data)
            if i == 0:
                seq.first = now
            seq.last = now
            return True

        def finish(seq: Sequence) -> None:
            if events is not None:
                conn.transport.write(events.end(seq.produced))
            else:
                conn.respond(200, completion_json(chat, rid, c.model, prompt_tokens, seq.produced))
                d.record(seq, "length")
                return
            d.record(seq, "length")
            conn.done()

        seq = Sequence(rid, prompt_tokens, max_tokens, emit, finish, fault, arrival=conn.arrival, tenant=tenant)
        conn.seq = seq
        if events is not None:
            conn.start_stream(events.role() if chat else b"")
        d.submit(seq)

    def _instant(self, conn, events: Stream | None, chat, rid, prompt_tokens, max_tokens, tenant="") -> None:
        seq = Sequence(rid, prompt_tokens, max_tokens, None, None, tenant=tenant)
        if events is None:
            conn.respond(200, completion_json(chat, rid, self.config.model, prompt_tokens, max_tokens))
        else:
            parts = [events.role()] if chat else []
            parts += [events.token(i, i == max_tokens - 1) for i in range(max_tokens)]
            conn.start_stream(b"".join(parts) + events.end(max_tokens))
            conn.done()
        seq.first = seq.last = clock()
        seq.produced = max_tokens
        self.deployment.record(seq, "length")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


class ThreadedSimulator:
    """A simulator on its own event loop in a background thread (tests, demos)."""

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.sim = Simulator(config)
        self.loop = new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.sim.start(host, port))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="simulator", daemon=True)
        self.thread.start()
        started.wait(10)
        self.host = host

    @property
    def base_url(self) -> str:
        return self.sim.base_url(self.host)

    @property
    def deployment(self) -> Deployment:
        return self.sim.deployment

    def shutdown(self) -> None:
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    def server_close(self) -> None:
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


def start_in_thread(host: str = "127.0.0.1", port: int = 0, config: SimConfig | None = None) -> ThreadedSimulator:
    return ThreadedSimulator(config, host, port)


def _is_uuid(value: str | None) -> bool:
    """A missing id is fine (one is made up); a present one must be a canonical UUID."""
    if value is None:
        return True
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
