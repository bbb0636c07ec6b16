"""OpenAI-compatible requests, the correlation id they carry, and the meaning of each streamed event."""

from __future__ import annotations

import os
import uuid

import orjson

CHAT = "chat"
COMPLETIONS = "completions"

# What one SSE event is, for the timing rules in DESIGN.md.
EV_TOKEN = 1  # carries content, reasoning content or tool calls: a token event
EV_EMPTY = 2  # role-only opening chunk, empty delta, finish-only chunk: not a token
EV_DONE = 3
EV_MALFORMED = 4
EV_ERROR = 5  # an {"error": ...} object inside the stream


# The optional parts of a request: useful, but some servers refuse them (a strict middleware that
# wants a UUID, an API version that rejects unknown fields, a framework that answers 406 to an
# Accept it does not produce). The preflight drops the ones a server refuses (runner.py).
PART_REQUEST_ID = "request_id"  # the correlation header
PART_STREAM_OPTIONS = "stream_options"  # {"include_usage": true}: the server's own token counts
PART_ACCEPT = "accept"  # Accept: text/event-stream
OPTIONAL_PARTS = (PART_REQUEST_ID, PART_STREAM_OPTIONS, PART_ACCEPT)
DEFAULT_REQUEST_ID_HEADER = "X-Request-Id"


class RequestIds:
    """Canonical UUIDs (RFC 9562 text form, version 8) that carry the shard and the send sequence.

    Layout, high bits first: 48 bits of a per-run nonce, version 8, 12 bits of shard, variant
    0b10, 62 bits of sequence. Strict servers see an ordinary UUID; the simulator's ground truth and
    a server's logs can still be matched to a record (shard, seq). The nonce keeps two runs' ids
    apart: some servers refuse an id that is already in flight.
    """

    PREFLIGHT_SHARD = 0xFFF  # requests that are not load (preflight, compatibility check)
    __slots__ = ("nonce", "shard", "_prefix")

    def __init__(self, shard: int, nonce: int | None = None):
        if not 0 <= shard <= 0xFFF:
            raise ValueError("shard index out of range for a request id")
        self.nonce = (int.from_bytes(os.urandom(6), "big") if nonce is None else nonce) & 0xFFFFFFFFFFFF
        self.shard = shard
        n = f"{self.nonce:012x}"
        self._prefix = f"{n[:8]}-{n[8:]}-8{shard:03x}-".encode()

    def text(self, seq: int) -> bytes:
        return b"%s%04x-%012x" % (self._prefix, 0x8000 | (seq >> 48) & 0x3FFF, seq & 0xFFFFFFFFFFFF)

    @staticmethod
    def parse(text: str) -> tuple[int, int, int] | None:
        """(nonce, shard, seq) of an id this class made; None for anything else."""
        try:
            value = uuid.UUID(text).int
        except (ValueError, AttributeError, TypeError):
            return None
        if (value >> 76) & 0xF != 8 or (value >> 62) & 0x3 != 0b10:
            return None
        return value >> 80, (value >> 64) & 0xFFF, value & ((1 << 62) - 1)


def request_path(api: str) -> str:
    return "/chat/completions" if api == CHAT else "/completions"


def request_body(
    api: str, model: str, prompt: str, max_tokens: int, extra: dict | None = None, *, stream_usage: bool = True
) -> bytes:
    body: dict = {"model": model, "max_tokens": max_tokens, "stream": True}
    if stream_usage:
        body["stream_options"] = {"include_usage": True}
    if api == CHAT:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if extra:
        body.update(extra)
    return orjson.dumps(body)


def _choice_has_token(choice: dict) -> bool:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return bool(
            delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning") or delta.get("tool_calls")
        )
    return bool(choice.get("text"))  # completions API


def classify(data: bytes) -> tuple[int, tuple[int, int] | None]:
    """(kind, usage) of one event's data; usage is (prompt_tokens, completion_tokens) when present."""
    kind, usage, _ = classify_event(data)
    return kind, usage


def classify_event(data: bytes) -> tuple[int, tuple[int, int] | None, bool]:
    """(kind, usage, finished): `finished` when a choice carries a finish_reason (the server says the
    answer is complete; a stream that ends without one was cut off)."""
    if data == b"[DONE]":
        return EV_DONE, None, False
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return EV_MALFORMED, None, False
    if not isinstance(obj, dict):
        return EV_MALFORMED, None, False
    if obj.get("error"):
        return EV_ERROR, None, False
    usage = obj.get("usage")
    parsed_usage = None
    if isinstance(usage, dict):
        try:
            parsed_usage = (int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"]))
        except (KeyError, TypeError, ValueError):
            parsed_usage = None
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        return EV_EMPTY, parsed_usage, False
    finished = any(isinstance(c, dict) and c.get("finish_reason") for c in choices)
    if any(isinstance(c, dict) and _choice_has_token(c) for c in choices):
        return EV_TOKEN, parsed_usage, finished
    return EV_EMPTY, parsed_usage, finished
