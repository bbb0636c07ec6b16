"""The probe engine end to end against hand-written HTTP/SSE byte streams with controlled timing.

A tiny threaded server (below) replays a script per request: byte strings are written as one
TCP write each (Nagle off), floats are pauses, CLOSE closes the connection and HANG never
answers again. Timings are asserted with generous upper bounds: only the lower bounds (a token
cannot be seen before it was written) are exact.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from apps.probes.engine import http1, openai
from apps.probes.engine.profiles import CONCURRENT, SYNCHRONOUS, Stage
from apps.probes.engine.records import ERROR_CLASSES, TOKENS_COUNTED, TOKENS_USAGE
from apps.probes.engine.runner import PreflightFailed, ProbeConfig, ProbeResult, ProbeRun, new_event_loop, run_probe

# --- the scripted server -------------------------------------------------------------------------

CLOSE = object()  # close the connection (FIN) and stop serving it
HANG = object()  # write nothing more, keep the connection open until the server stops


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int  # 1-based number of the TCP connection it came on
    arrival: float  # time.monotonic() when its last byte was read

    @property
    def seq(self) -> int:
        """The engine's send order, from the UUID in X-Request-Id (openai.RequestIds)."""
        return openai.RequestIds.parse(self.headers["x-request-id"])[2]


class ScriptedServer:
    def __init__(self, script: Callable[[Seen], list]):
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.requests: list[Seen] = []
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                seen = Seen(method, path, headers, body, number, time.monotonic())
                self.requests.append(seen)
                for step in self.script(seen):
                    if step is CLOSE:
                        return
                    if step is HANG:
                        self._stop.wait(30)
                        return
                    if isinstance(step, float):
                        time.sleep(step)
                    else:
                        conn.sendall(step)
        except OSError:
            return  # the client went away (timeouts and errors abort the connection)
        finally:
            conn.close()


@pytest.fixture
def serve():
    servers: list[ScriptedServer] = []

    def start(script) -> ScriptedServer:
        server = ScriptedServer(script if callable(script) else (lambda _seen: script))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# --- what the server says ------------------------------------------------------------------------

STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
DONE = b"data: [DONE]\n\n"


def event(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(finish_reason=None, **fields) -> bytes:
    return event(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "scripted",
            "choices": [{"index": 0, "delta": fields, "finish_reason": finish_reason}],
        }
    )


def usage(completion_tokens: int, prompt_tokens: int = 7, finish: str | None = "stop") -> bytes:
    """The end of an answer as vLLM writes it: a chunk with the finish_reason, then the usage chunk
    (empty choices), here in one write. `finish=None` leaves the finish_reason out: a cut-off stream."""
    return (delta(finish_reason=finish) if finish else b"") + event(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "scripted",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


ROLE = delta(role="assistant")


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def chunked(*items) -> list:
    """A chunked SSE response: each bytes item is one HTTP chunk (one write), floats are pauses."""
    return [STREAM_HEAD, *(item if isinstance(item, float) else chunk(item) for item in items), LAST_CHUNK]


def with_length(*items, content_type=b"text/event-stream") -> list:
    """The same with a Content-Length: the body's pieces are written as they come."""
    body = b"".join(item for item in items if isinstance(item, bytes))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (content_type, len(body))
    return [head, *items]


def json_response(status: int, obj, reason: bytes = b"Status") -> bytes:
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        reason,
        len(body),
        body,
    )


# --- running the engine --------------------------------------------------------------------------


def probe(server: ScriptedServer, *, requests: int = 1, concurrency: int | None = None, **overrides) -> ProbeResult:
    stage = Stage(CONCURRENT, 30, concurrency=concurrency) if concurrency else Stage(SYNCHRONOUS, 30)
    fields = dict(
        base_url=server.url,
        model="scripted",
        stages=[stage],
        allow_private=True,
        max_requests=requests,
        request_timeout=5.0,
    )
    fields.update(overrides)
    return run_probe(ProbeConfig(**fields))


def error_classes(result: ProbeResult) -> list[str]:
    return [ERROR_CLASSES[e] for e in result.records.error]


def only(result: ProbeResult) -> dict:
    assert len(result.records) == 1
    return result.records.row(0)


def ttft_ms(row: dict) -> float:
    return (row["first"] - row["sent"]) * 1000


def e2e_ms(row: dict) -> float:
    return (row["last"] - row["sent"]) * 1000


# --- token timing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opening",
    [
        {"role": "assistant"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": None},
        {},
    ],
    ids=["role", "role-and-empty-content", "role-and-null-content", "empty-delta"],
)
def test_a_role_only_opening_chunk_is_not_the_first_token(serve, opening):
    server = serve(chunked(delta(**opening), 0.1, delta(content="Hello"), delta(content=" world"), usage(2), DONE))
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 2
    assert row["output_tokens"] == 2
    assert 95 <= ttft_ms(row) < 600


def test_trailing_finish_usage_and_done_events_do_not_extend_e2e(serve):
    server = serve(
        chunked(ROLE, delta(content="a"), delta(content="b"), 0.2, delta(finish_reason="stop"), usage(2), DONE)
    )
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert e2e_ms(row) < 150, "E2E ends at the last token event, not at the usage chunk or [DONE]"


def test_a_chunk_carrying_several_tokens_counts_them_all_from_usage(serve):
    events = []
    for i in range(5):
        events += [delta(content=f"tok{i}a tok{i}b"), 0.05]
    server = serve(chunked(ROLE, *events, usage(10), DONE))
    result = probe(server)
    row = only(result)
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["output_tokens"] == 10
    assert row["token_events"] == 5
    assert row["token_source"] == TOKENS_USAGE
    assert result.summary["token_counts_estimated"] is False
    # ITL = gap between token events / tokens in that event: 50 ms gaps, 2 tokens each.
    itl = result.summary["overall"]["itl_ms"]
    assert itl["n"] == 4
    assert 20 <= itl["p50"] < 60
    # TPOT = (E2E - TTFT) / (N_out - 1) over the 10 tokens, not the 5 events.
    tpot = (e2e_ms(row) - ttft_ms(row)) / 9
    assert result.summary["overall"]["tpot_ms"]["p50"] == pytest.approx(tpot, abs=0.01)


def test_reasoning_content_and_tool_call_deltas_count_as_tokens(serve):
    call_open = [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": ""}}]
    call_args = [{"index": 0, "function": {"arguments": '{"q": 1}'}}]
    server = serve(
        chunked(
            ROLE,
            0.1,
            delta(reasoning_content="Let me think"),
            delta(reasoning="more thinking"),
            delta(tool_calls=call_open),
            delta(tool_calls=call_args),
            delta(content="done"),
            delta(finish_reason="tool_calls"),
            DONE,
        )
    )
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 5
    assert row["output_tokens"] == 5
    assert ttft_ms(row) >= 95, "TTFT is measured to the first reasoning chunk, after the pause"


def test_completions_api_text_chunks_count_as_tokens(serve):
    def text(t):
        return event({"id": "cmpl-1", "object": "text_completion", "choices": [{"index": 0, "text": t}]})

    server = serve(chunked(0.1, text("one"), text(" two"), text(""), usage(2), DONE))
    row = only(probe(server, api=openai.COMPLETIONS))
    assert server.requests[0].path == "/v1/completions"
    assert json.loads(server.requests[0].body)["prompt"]
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 2
    assert ttft_ms(row) >= 95


def test_the_request_asks_for_a_stream_with_usage_and_carries_a_request_id(serve):
    server = serve(chunked(ROLE, delta(content="a"), usage(1), DONE))
    probe(server, requests=2, api_key="sk-test", max_tokens=7)
    first, second = server.requests
    body = json.loads(first.body)
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 7 and body["model"] == "scripted"
    assert first.headers["authorization"] == "Bearer sk-test"
    ids = [uuid.UUID(r.headers["x-request-id"]) for r in (first, second)]
    # Canonical UUIDs (strict servers refuse anything else) that still carry shard and send order.
    assert [str(i) for i in ids] == [r.headers["x-request-id"] for r in (first, second)]
    assert [openai.RequestIds.parse(str(i))[1:] for i in ids] == [(0, 0), (0, 1)]
    assert ids[0].version == 8


@pytest.mark.parametrize(("header", "seen"), [(None, None), ("X-Correlation-Id", "x-correlation-id")])
def test_the_correlation_header_can_be_renamed_or_left_out(serve, header, seen):
    server = serve(chunked(ROLE, delta(content="a"), usage(1), DONE))
    probe(server, request_id_header=header)
    headers = server.requests[0].headers
    assert "x-request-id" not in headers
    if seen:
        assert uuid.UUID(headers[seen]).version == 8


# --- token counts --------------------------------------------------------------------------------


def test_without_a_usage_chunk_tokens_are_counted_and_flagged_as_estimated(serve):
    server = serve(chunked(ROLE, delta(content="a"), delta(content="b"), delta("stop", content="c"), DONE))
    result = probe(server)
    row = only(result)
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_source"] == TOKENS_COUNTED
    assert row["output_tokens"] == 3
    assert result.summary["token_counts_estimated"] is True
    assert result.summary["overall"]["token_counts_estimated"] == 1


# --- SSE framing ---------------------------------------------------------------------------------


def test_comment_and_keep_alive_lines_are_ignored(serve):
    server = serve(
        chunked(
            b": ping\n\n",
            0.1,
            b": ping\n\n",
            delta(content="a"),
            b": keep-alive\n",
            b": ping\n" + delta(content="b"),
            usage(2),
            DONE,
        )
    )
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 2
    assert ttft_ms(row) >= 95, "a keep-alive comment is not a token"


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_crlf_and_cr_line_endings_are_understood(serve, newline):
    def ending(data: bytes) -> bytes:
        return data.replace(b"\n", newline)

    server = serve(
        chunked(ending(ROLE), ending(delta(content="a")), ending(delta(content="b")), ending(usage(2)), ending(DONE))
    )
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 2
    assert row["output_tokens"] == 2
    assert row["token_source"] == TOKENS_USAGE


def test_a_crlf_split_between_two_writes_is_one_line_ending(serve):
    # One event whose JSON spans two data lines (joined with "\n"); the CR of the first line's
    # CRLF ends one write and its LF starts the next. Read as two line endings, the blank line
    # would dispatch half an event (malformed JSON).
    first = b'data: {"choices": [{"index": 0, "delta":\r'
    rest = b'\ndata: {"content": "a"}}]}\r\n\r\n'
    server = serve([STREAM_HEAD, chunk(ROLE), chunk(first), 0.1, chunk(rest), chunk(usage(1)), chunk(DONE), LAST_CHUNK])
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 1
    assert ttft_ms(row) >= 95


def split_event_scripts():
    ev = delta(content="split across writes")
    size = b"%x\r\n" % len(ev)
    yield "one-http-chunk-in-pieces", [STREAM_HEAD, size + ev[:9], 0.05, ev[9:30], 0.05, ev[30:] + b"\r\n"]
    yield "several-http-chunks", [STREAM_HEAD, chunk(ev[:9]), 0.05, chunk(ev[9:30]), 0.05, chunk(ev[30:])]
    yield "chunk-size-line-split", [STREAM_HEAD, size[:1], 0.05, size[1:] + ev[:-1], 0.05, ev[-1:] + b"\r\n"]


@pytest.mark.parametrize(
    "steps", [s for _, s in split_event_scripts()], ids=[name for name, _ in split_event_scripts()]
)
def test_an_event_split_across_tcp_writes_is_timed_when_it_completes(serve, steps):
    server = serve([*steps, chunk(delta(content="next")), chunk(usage(2)), chunk(DONE), LAST_CHUNK])
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 2
    assert ttft_ms(row) >= 95, "the first token is the completed event, after both pauses"


@pytest.mark.skipif(not http1.KERNEL_TIMESTAMPS, reason="kernel receive timestamps are read on Linux only")
def test_a_token_is_timed_when_its_bytes_arrived_even_if_the_client_was_busy(serve):
    # The token is written 200 ms in; the client's loop is stalled from 100 to 600 ms, as by a
    # burst of other streams' bytes. Its time is when it arrived, not when the client read it.
    server = serve(chunked(ROLE, 0.2, delta(content="Hi"), usage(1), DONE))
    config = ProbeConfig(
        base_url=server.url,
        model="scripted",
        stages=[Stage(SYNCHRONOUS, 30)],
        allow_private=True,
        max_requests=1,
        request_timeout=5.0,
    )

    async def with_a_stall():
        asyncio.get_running_loop().call_later(0.1, time.sleep, 0.5)
        return await ProbeRun(config).execute()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        result = runner.run(with_a_stall())
    row = only(result)
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert 195 <= ttft_ms(row) < 400
    assert result.summary["event_loop_lag_ms"]["max"] >= 400, "the stall itself is still seen by the lag ticker"


def test_without_kernel_timestamps_tokens_are_timed_when_read_and_connections_kept(serve, monkeypatch):
    # What TLS connections (and other platforms) use: asyncio's transport, our clock at each read.
    monkeypatch.setattr(http1, "KERNEL_TIMESTAMPS", False)
    server = serve(chunked(ROLE, 0.1, delta(content="Hello"), 0.05, delta(content=" world"), usage(2), DONE))
    result = probe(server, requests=3)
    assert error_classes(result) == ["ok"] * 3
    assert result.meta["connections_opened"] == 1
    for i in range(3):
        row = result.records.row(i)
        assert row["token_events"] == 2 and row["output_tokens"] == 2
        assert 95 <= ttft_ms(row) < 600 and e2e_ms(row) - ttft_ms(row) >= 45


def test_a_one_megabyte_data_line_still_parses(serve):
    big = "x" * 1_000_000
    server = serve(chunked(ROLE, delta(content=big), delta(content="tail"), usage(2), DONE))
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 2
    assert row["output_tokens"] == 2


def test_a_data_line_over_the_parsers_cap_is_malformed_not_a_crash(serve):
    huge = "x" * (9 * 1024 * 1024)  # the SSE parser caps a line at 8 MiB
    script = chunked(ROLE, delta(content=huge), delta(content="tail"), usage(2), DONE)
    server = serve(lambda seen: script if seen.seq == 0 else chunked(ROLE, delta(content="a"), usage(1), DONE))
    result = probe(server, requests=2)
    assert error_classes(result) == ["malformed", "ok"]


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_event",
    [b'data: {"id": "broken, "choices": [\n\n', b"data: [1, 2, 3]\n\n", b'data: "just a string"\n\n'],
    ids=["broken-json", "json-list", "json-string"],
)
def test_a_malformed_event_fails_only_its_request_and_the_run_goes_on(serve, bad_event):
    good = chunked(ROLE, delta(content="a"), delta(content="b"), usage(2), DONE)
    bad = chunked(ROLE, delta(content="a"), bad_event, delta(content="b"), usage(2), DONE)
    server = serve(lambda seen: bad if seen.seq == 2 else good)
    result = probe(server, requests=5)
    assert error_classes(result) == ["ok", "ok", "malformed", "ok", "ok"]
    assert result.summary["overall"]["errors"] == {"malformed": 1}
    assert result.summary["overall"]["error_rate"] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, "429"), (500, "5xx"), (503, "5xx"), (404, "4xx"), (400, "4xx"), (401, "4xx")],
)
def test_http_error_statuses_get_their_error_class(serve, status, expected):
    server = serve([json_response(status, {"error": {"message": "nope", "code": status}})])
    result = probe(server, requests=2)
    assert error_classes(result) == [expected, expected]
    assert result.summary["overall"]["errors"] == {expected: 2}
    assert result.summary["overall"]["ttft_ms"] == {"n": 0}


NOT_A_STREAM = {
    "json-completion": json_response(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
        b"OK",
    ),
    "html-page": with_length(b"<html><body>Sign in</body></html>", content_type=b"text/html")[0]
    + b"<html><body>Sign in</body></html>",
    "empty-body": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("response", list(NOT_A_STREAM.values()), ids=list(NOT_A_STREAM))
def test_a_200_response_that_is_not_an_event_stream_is_not_ok(serve, response):
    assert error_classes(probe(serve([response]))) == ["malformed"]


def test_an_error_event_inside_a_200_stream_fails_the_request(serve):
    server = serve(chunked(ROLE, delta(content="a"), event({"error": {"message": "overloaded", "code": 503}}), DONE))
    assert error_classes(probe(server)) == ["5xx"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([STREAM_HEAD, chunk(ROLE), chunk(delta(content="a")), 0.05, CLOSE], "truncated"),
        ([STREAM_HEAD, chunk(ROLE), chunk(delta(content="a"))[:20], 0.05, CLOSE], "malformed"),
        (
            [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 5000\r\n\r\n" + ROLE, 0.05, CLOSE],
            "malformed",
        ),
        ([CLOSE], "connect"),
    ],
    ids=["chunked-between-events", "chunked-inside-an-event", "content-length-short", "before-any-byte"],
)
def test_a_connection_closed_mid_response_is_not_ok(serve, steps, expected):
    result = probe(serve(steps))
    assert error_classes(result) == [expected]
    assert result.summary["overall"]["errors"] == {expected: 1}


# --- cut-off streams -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps",
    [
        chunked(ROLE, delta(content="a"), delta(content="b"), usage(2, finish=None), DONE),
        [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
            ROLE,
            delta(content="a"),
            delta(content="b"),
            CLOSE,
        ],
        [STREAM_HEAD, chunk(ROLE), chunk(delta(content="a")), chunk(delta(content="b")), 0.05, CLOSE],
    ],
    ids=["done-without-finish-reason", "eof-without-finish-reason", "dropped-mid-stream"],
)
def test_a_stream_that_ends_without_a_finish_reason_is_truncated_not_an_answer(serve, steps):
    result = probe(serve(steps))
    assert error_classes(result) == ["truncated"]
    overall = result.summary["overall"]
    # Its tokens are not a completed answer: no throughput, no latency figures from it.
    assert overall["completed_in_window"] == 0 and overall["output_token_throughput"] == 0
    assert overall["ttft_ms"] == {"n": 0}
    assert result.summary["truncated"]["count"] == 1
    assert result.summary["truncated"]["output_tokens"]["max"] == 2  # cut off after two tokens
    details = result.summary["error_details"]["truncated"]
    assert details["count"] == 1 and details["statuses"] == {"200": 1}
    assert "without a finish_reason" in details["samples"][0]["body"]


def test_a_finish_reason_then_a_dropped_connection_is_still_a_complete_answer(serve):
    steps = [STREAM_HEAD, chunk(ROLE), chunk(delta(content="a")), chunk(delta("length", content="b")), 0.05, CLOSE]
    assert error_classes(probe(serve(steps))) == ["ok"]


def test_a_finish_only_chunk_completes_an_answer(serve):
    server = serve(chunked(ROLE, delta(content="a"), delta(finish_reason="length"), DONE))
    assert error_classes(probe(server)) == ["ok"]


# --- error details -------------------------------------------------------------------------------


def test_each_error_class_keeps_its_statuses_and_up_to_three_distinct_redacted_bodies(serve):
    bodies = [{"detail": "model x not found"}, {"detail": "bad max_tokens"}, {"detail": "no"}, {"detail": "more"}]

    def script(seen):
        i = seen.seq
        if i < 6:  # the same refusal twice, then others
            return [json_response(400, bodies[max(0, i - 2)] if i >= 2 else bodies[0])]
        return [json_response(401, {"error": "Incorrect API key provided: sk-live-abcdef0123456789"})]

    result = probe(serve(script), requests=7, api_key="sk-live-abcdef0123456789")
    details = result.summary["error_details"]
    assert details["4xx"]["count"] == 7
    assert details["4xx"]["statuses"] == {"400": 6, "401": 1}
    samples = [s["body"] for s in details["4xx"]["samples"]]
    assert len(samples) == 3 and len(set(samples)) == 3
    assert samples[0] == json.dumps(bodies[0])
    assert all(s["status"] == 400 for s in details["4xx"]["samples"])
    # The per-request rows keep the status too.
    assert sorted(set(result.records.status)) == [400, 401]


def test_an_error_body_never_shows_the_api_key(serve):
    key = "sk-live-abcdef0123456789"
    server = serve([json_response(401, {"error": f"Incorrect API key provided: {key}", "echo": f"Bearer {key}"})])
    body = probe(server, api_key=key).summary["error_details"]["4xx"]["samples"][0]["body"]
    assert key not in body and "[redacted]" in body


def test_a_garbage_status_line_is_malformed(serve):
    assert error_classes(probe(serve([b"SSH-2.0-OpenSSH_9.6\r\n\r\n", 0.05, CLOSE]))) == ["malformed"]


@pytest.mark.parametrize(
    "steps", [[STREAM_HEAD, chunk(ROLE), chunk(delta(content="a")), HANG], [HANG]], ids=["mid-stream", "silent"]
)
def test_a_server_that_hangs_times_out_after_the_request_timeout(serve, steps):
    started = time.monotonic()
    result = probe(serve(steps), request_timeout=1.0)
    elapsed = time.monotonic() - started
    assert error_classes(result) == ["timeout"]
    assert 0.95 <= elapsed < 3.0


# --- response framings and connections -----------------------------------------------------------


def test_a_content_length_sse_body_written_in_pieces_works(serve):
    server = serve(with_length(ROLE, 0.1, delta(content="a"), 0.05, delta(content="b"), usage(2) + DONE))
    row = only(probe(server))
    assert ERROR_CLASSES[row["error"]] == "ok"
    assert row["token_events"] == 2 and row["output_tokens"] == 2
    assert ttft_ms(row) >= 95
    assert e2e_ms(row) - ttft_ms(row) >= 45


def test_a_close_delimited_response_works(serve):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    server = serve([head, ROLE, 0.1, delta(content="a"), delta(content="b"), usage(2), DONE, CLOSE])
    result = probe(server, requests=3)
    assert error_classes(result) == ["ok", "ok", "ok"]
    assert result.records.token_events.tolist() == [2, 2, 2]
    assert result.meta["connections_opened"] == 3, "a close-delimited response cannot be followed on its connection"


def test_an_http_1_0_response_with_content_length_works(serve):
    body = ROLE + delta(content="a") + usage(1) + DONE
    head = b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body)
    result = probe(serve([head + body, CLOSE]), requests=2)
    assert error_classes(result) == ["ok", "ok"]


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_sequential_requests_reuse_one_keep_alive_connection(serve, framing):
    items = (ROLE, delta(content="a"), delta(content="b"), usage(2), DONE)
    server = serve(chunked(*items) if framing == "chunked" else with_length(*items))
    result = probe(server, requests=20, concurrency=1)
    assert error_classes(result) == ["ok"] * 20
    assert result.meta["connections_opened"] == 1
    assert server.connections == 1
    assert {seen.connection for seen in server.requests} == {1}


def test_concurrent_workers_each_keep_their_own_connection(serve):
    server = serve(chunked(ROLE, 0.02, delta(content="a"), usage(1), DONE))
    result = probe(server, requests=40, concurrency=4)
    assert error_classes(result) == ["ok"] * 40
    assert result.meta["connections_opened"] == 4
    assert server.connections == 4


def test_an_error_response_does_not_leave_a_broken_connection_in_the_pool(serve):
    good = chunked(ROLE, delta(content="a"), usage(1), DONE)
    server = serve(lambda seen: [json_response(500, {"error": "x"})] if seen.seq % 2 else good)
    result = probe(server, requests=6, concurrency=1)
    assert error_classes(result) == ["ok", "5xx"] * 3
    # Failed requests abort their connection; the next request opens a fresh one.
    assert result.meta["connections_opened"] == 3


def test_a_kept_alive_connection_closed_as_it_is_reused_is_retried_once_on_a_new_one(serve):
    # The server answers one request per connection and closes the next without a reply: what a
    # client sees when an idle timeout races its send. Each such request is resent on a new connection.
    server = None

    def script(seen):
        if sum(1 for r in server.requests if r.connection == seen.connection) > 1:
            return [CLOSE]
        return chunked(ROLE, delta(content="hi"), usage(1), DONE)

    server = serve(script)
    result = probe(server, requests=4)
    assert error_classes(result) == ["ok"] * 4
    assert server.connections == 4 and result.meta["stale_connection_retries"] == 3


def test_a_fresh_connection_closed_before_a_reply_is_not_retried(serve):
    server = serve([CLOSE])
    result = probe(server, requests=2)
    assert error_classes(result) == ["connect", "connect"] and server.connections == 2
    assert result.meta["stale_connection_retries"] == 0


# --- preflight -----------------------------------------------------------------------------------


def preflight(server: ScriptedServer, **overrides) -> tuple[ProbeRun, dict]:
    fields = dict(
        base_url=server.url,
        model="scripted",
        stages=[Stage(SYNCHRONOUS, 1)],
        allow_private=True,
        request_timeout=5.0,
        api_key="sk-preflight-0123456789",
    )
    fields.update(overrides)

    async def main():
        run = ProbeRun(ProbeConfig(**fields))
        try:
            return run, await run.preflight()
        finally:
            run.pool.close()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main())


GOOD = chunked(ROLE, delta(content="a"), usage(1), DONE)


def test_a_preflight_that_works_sends_one_request_and_drops_nothing(serve):
    server = serve(GOOD)
    _, report = preflight(server)
    assert report == {"ok": True, "parts": ["accept", "request_id", "stream_options"], "dropped": [], "requests": 1}
    assert len(server.requests) == 1
    assert json.loads(server.requests[0].body)["max_tokens"] <= 16


def test_a_server_that_refuses_the_accept_header_gets_requests_without_it(serve):
    def script(seen):
        if seen.headers.get("accept") == "text/event-stream":
            return [json_response(406, {"detail": "Not Acceptable"})]
        return GOOD

    server = serve(script)
    run, report = preflight(server)
    assert report["dropped"] == [{"part": "accept", "why": "HTTP 406 with it, 200 without"}]
    assert run.parts == {"request_id", "stream_options"}
    # with all, bare, then each part alone
    assert len(server.requests) == 5
    result = probe(server, parts_off=frozenset({"accept"}))
    assert error_classes(result) == ["ok"]


@pytest.mark.parametrize(
    ("response", "status", "hint"),
    [
        (json_response(500, {"message": "chat template not found"}), 500, "chat template"),
        (json_response(404, {"detail": "Not Found"}), 404, "/v1"),
        (json_response(403, {"error": "forbidden"}), 403, "API key"),
        (json_response(422, {"detail": [{"loc": ["body", "model"], "msg": "field required"}]}), 422, "field"),
        (
            with_length(b'{"choices": [{"message": {"content": "hi"}}]}', content_type=b"application/json")[0]
            + b'{"choices": [{"message": {"content": "hi"}}]}',
            200,
            "ignores",
        ),
    ],
    ids=["500-template", "404-base-url", "403-key", "422-field", "200-json-not-a-stream"],
)
def test_a_failed_preflight_says_status_body_request_and_a_hint(serve, response, status, hint):
    server = serve([response])
    with pytest.raises(PreflightFailed) as failed:
        preflight(server)
    d = failed.value.diagnosis
    assert d["status"] == status
    assert hint in d["hint"]
    assert d["body"] and len(d["body"]) <= 501
    assert d["request"].startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert "Bearer [redacted]" in d["request"] and "sk-preflight" not in d["request"]
    assert d["message"].startswith(f"preflight failed: HTTP {status}")


def test_a_blank_error_body_is_reported_as_empty_not_a_crash(serve):
    server = serve([b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\n \r\n"])
    with pytest.raises(PreflightFailed) as failed:
        preflight(server)
    assert failed.value.diagnosis["message"].endswith("HTTP 400: (empty body)")


def test_a_long_error_body_is_cut_to_500_bytes_in_the_diagnosis(serve):
    server = serve([json_response(500, {"trace": "x" * 5000})])
    with pytest.raises(PreflightFailed) as failed:
        preflight(server)
    assert len(failed.value.diagnosis["body"]) == 501 and failed.value.diagnosis["body"].endswith("…")


def test_a_refusal_that_persists_without_the_optional_parts_fails_with_every_attempt_listed(serve):
    server = serve([json_response(400, {"error": "model 'scripted' does not exist"})])
    with pytest.raises(PreflightFailed) as failed:
        preflight(server)
    d = failed.value.diagnosis
    assert [a["parts"] for a in d["attempts"]] == [["accept", "request_id", "stream_options"], []]
    assert "does not exist" in d["body"]


def test_a_transient_refusal_at_the_preflight_is_tried_again_before_the_run_fails(serve):
    server = serve(lambda seen: [json_response(503, {"error": "warming up"})] if len(server.requests) == 1 else GOOD)
    _, report = preflight(server)
    assert report["ok"] and report["requests"] == 2
    always = serve([json_response(503, {"error": "down"})])
    with pytest.raises(PreflightFailed) as failed:
        preflight(always)
    assert [a["status"] for a in failed.value.diagnosis["attempts"]] == [503, 503, 503]


def test_a_run_whose_first_two_hundred_requests_all_fail_stops_there(serve):
    """What must survive: the endpoint (and the budget). A server that refuses everything gets a
    couple of hundred requests, not the thousands the stage would send, and the run says why."""
    server = serve(lambda seen: [json_response(400, {"detail": "unsupported"})])
    result = probe(server, requests=None, concurrency=4)  # 30 s of closed loop: thousands without the stop
    assert 200 <= len(result.records) < 210
    assert result.summary["failed_fast"].startswith("stopped: the first 20")
    assert "4xx: 400 x" in result.summary["failed_fast"] and "unsupported" in result.summary["failed_fast"]
    assert result.summary["cancelled"] is False


def test_one_success_keeps_a_run_going_through_later_errors(serve):
    server = serve(lambda seen: GOOD if seen.seq == 0 else [json_response(429, {"detail": "slow down"})])
    result = probe(server, requests=300)
    assert len(result.records) == 300 and "failed_fast" not in result.summary


def test_a_probe_config_never_shows_its_api_key_when_printed():
    config = ProbeConfig(base_url="http://127.0.0.1:9/v1", model="m", stages=[], api_key="sk-live-0123456789")
    assert "sk-live" not in repr(config) and "sk-live" not in str(config)
