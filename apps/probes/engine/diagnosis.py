"""What went wrong, in words a user can act on: redacted excerpts of what a server answered, and a hint
for the usual causes. Used by the preflight (a run that cannot start says why) and by the error
samples every run keeps.
"""

from __future__ import annotations

import re

EXCERPT_BYTES = 500
REDACTED = "[redacted]"
# Things that look like credentials, wherever a server echoes them: bearer tokens, OpenAI-style keys,
# our own token prefixes, webhook secrets, and "api_key": "..." in JSON.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\b(?:rdy|whsec|hf|ghp|gho|xox[abp])_[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(\"?(?:api[_-]?key|token|secret|password)\"?\s*[:=]\s*\"?)[^\s\"',}]+"),
)


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """`text` with every given secret, and anything shaped like one, replaced by [redacted]."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() and m.group(1) else "") + REDACTED, text)
    return text


def excerpt(body: bytes, secrets=(), limit: int = EXCERPT_BYTES) -> str:
    """The first `limit` bytes of a body as text, redacted ("" for none)."""
    text = bytes(body[:limit]).decode("utf-8", "replace")
    return redact(text, secrets) + ("…" if len(body) > limit else "")


def hint(status: int, error_class: str, *, content_type: str = "", body: str = "") -> str:
    """The usual cause of a failure like this one, and what to check."""
    if error_class == "connect":
        return (
            "Could not connect: check that the server is up, that the host and port are right, and that the "
            "workers can reach it."
        )
    if error_class == "timeout":
        return (
            "No complete answer in time: the server may be loading the model or overloaded, or the URL "
            "points at something that does not answer; raise the timeout only if it is just slow."
        )
    if status in (401, 403):
        return "The server refused the credentials: check the endpoint's API key (and that it belongs to this server)."
    if status == 404:
        return (
            "Not found: check the base URL (it usually ends in /v1), the API (chat or completions) and the model name."
        )
    if status == 405:
        return "Method not allowed: the base URL points at something other than the API (it usually ends in /v1)."
    if status in (400, 406, 415, 422):
        return (
            "The server refused a field or header of the request: the body excerpt usually names it (the model "
            "name, max_tokens, an unknown field). Optional parts the server refused were already retried "
            "without them."
        )
    if status == 429:
        return "Rate limited or out of quota: check the account's limits, or lower the load."
    if status == 500:
        return (
            "The server failed on the request: most often its chat template (a model without one, or one that "
            "refuses this message order) or a model it cannot load; its log says which."
        )
    if status >= 500:
        return "The server (or a gateway in front of it) is failing or unavailable: see its log and health."
    if status == 200 and error_class == "malformed":
        if "json" in content_type:
            return (
                'The server answered 200 with a JSON body, not an event stream: it ignores "stream": true '
                "(or a proxy buffers the stream)."
            )
        if "html" in content_type or body.lstrip().startswith("<"):
            return "The server answered 200 with an HTML page: a login page, proxy or error page, not the API."
        return "The server answered 200 but not with a valid event stream (text/event-stream of JSON chunks)."
    if status == 200 and error_class == "5xx":
        return "The server reported an error inside the stream: the excerpt says which."
    if error_class == "truncated":
        return "The stream ended without a finish_reason: the server (or a proxy) cut the answer off."
    return "The request failed: see the status and the excerpt."


def describe_request(head: bytes, body: bytes, secrets=()) -> str:
    """The request as sent (head and body), for the diagnosis: credentials redacted, size bounded."""
    text = head.decode("latin-1", "replace") + body[:2000].decode("utf-8", "replace")
    return redact(text, secrets)
