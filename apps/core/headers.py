"""What we put in HTTP request headers, checked when saved: secrets (endpoint API keys, connector
tokens) and header names chosen by users (the probe's correlation header).

Plain Python, no Django: the services that save them call it, and so does the probe engine.
"""

import re

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 token)
# Headers the probe sets itself: a correlation id under one of these names would clash.
_RESERVED = {"host", "content-length", "content-type", "authorization", "accept", "transfer-encoding", "connection"}


def request_id_header(value: str | None) -> str | None:
    """A header name for the correlation id, or None for "none"/empty (send no id); ValueError otherwise."""
    value = (value or "").strip()
    if not value or value.lower() == "none":
        return None
    if not _TOKEN.fullmatch(value) or len(value) > 100:
        raise ValueError(f"{value!r} is not an HTTP header name (letters, digits and -, or none)")
    if value.lower() in _RESERVED:
        raise ValueError(f"{value} is a header the request already sets; pick another name, or none")
    return value


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as (part of) an HTTP header value, or None when it can.

    A CR or LF ends the header line and starts a new one: a key like "sk-1\\r\\nX-Evil: 1" would
    inject a header into every request the probe sends. Other control characters (tab and DEL
    included) have no place in a key or token and are refused by servers and proxies. Outside
    ASCII is refused too, stricter than the Latin-1 an HTTP/1.1 header may carry, because httpx
    (the connection test, connector deliveries) encodes header values as ASCII and would fail
    every request with that key instead of refusing it once, here. The message names the kind
    of character and its position, never the value.
    """
    for position, char in enumerate(value, start=1):
        code = ord(char)
        if char in "\r\n":
            return f"Only printable ASCII characters are allowed: character {position} is a line break (CR or LF)."
        if code < 0x20 or code == 0x7F:
            return f"Only printable ASCII characters are allowed: character {position} is a control character."
        if code > 0x7E:
            return f"Only printable ASCII characters are allowed: character {position} is not ASCII."
    return None
