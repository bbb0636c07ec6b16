"""Incremental Server-Sent Events parser (WHATWG rules) for bytes that arrive in any chunking.

Lines end in CRLF, LF or CR; `:` starts a comment; `data:` lines accumulate until a blank
line dispatches the event. A CR at the end of a read ends its line at once; if the next read
opens with LF, that LF is the rest of the CRLF and is skipped.
"""

from __future__ import annotations

DEFAULT_MAX_LINE = 8 * 1024 * 1024


class MalformedStream(Exception):
    pass


class SSEParser:
    __slots__ = ("_pending", "_data", "_event", "_skip_lf", "max_line")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE):
        self._pending = b""
        self._data: list[bytes] = []
        self._event = b""
        self._skip_lf = False  # the last read ended in CR: an LF opening the next read completes that CRLF
        self.max_line = max_line

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """Parse `chunk`; return the completed events as (event name, data) pairs."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._pending + chunk if self._pending else chunk
        if b"\r" in buf:
            # A CR ends its line at once (no waiting for the next read, which would delay the event).
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > self.max_line:
            self._pending = b""
            raise MalformedStream(f"line longer than {self.max_line} bytes")
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[tuple[bytes, bytes]]:
        events = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append((self._event or b"message", b"\n".join(data)))
                    data.clear()
                self._event = b""
                continue
            if line[0] == 58:  # b":" comment / keep-alive
                continue
            field, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                self._event = value
            # id / retry / unknown fields: not needed for completions streams
        return events

    def close(self) -> list[tuple[bytes, bytes]]:
        """End of stream: an event without its final blank line still counts (many servers do this)."""
        events = self._lines(self._pending.replace(b"\r", b"\n").split(b"\n") + [b""]) if self._pending else []
        self._pending = b""
        self._skip_lf = False
        if self._data:
            events.append((self._event or b"message", b"\n".join(self._data)))
            self._data.clear()
        return events
