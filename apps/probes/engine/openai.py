"""OpenAI-compatible request bodies and the meaning of each streamed event."""

from __future__ import annotations

import orjson

CHAT = "chat"
COMPLETIONS = "completions"

# What one SSE event is, for the timing rules in DESIGN.md.
EV_TOKEN = 1  # carries content, reasoning content or tool calls: a token event
EV_EMPTY = 2  # role-only opening chunk, empty delta, finish-only chunk: not a token
EV_DONE = 3
EV_MALFORMED = 4
EV_ERROR = 5  # an {"error": ...} object inside the stream


def request_path(api: str) -> str:
    return "/chat/completions" if api == CHAT else "/completions"


def request_body(api: str, model: str, prompt: str, max_tokens: int, extra: dict | None = None) -> bytes:
    body: dict = {
        "model": model,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
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
    if data == b"[DONE]":
        return EV_DONE, None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return EV_MALFORMED, None
    if not isinstance(obj, dict):
        return EV_MALFORMED, None
    if obj.get("error"):
        return EV_ERROR, None
    usage = obj.get("usage")
    parsed_usage = None
    if isinstance(usage, dict):
        try:
            parsed_usage = (int(usage.get("prompt_tokens") or 0), int(usage["completion_tokens"]))
        except (KeyError, TypeError, ValueError):
            parsed_usage = None
    choices = obj.get("choices")
    if isinstance(choices, list) and any(isinstance(c, dict) and _choice_has_token(c) for c in choices):
        return EV_TOKEN, parsed_usage
    return EV_EMPTY, parsed_usage
