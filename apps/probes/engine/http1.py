"""A small HTTP/1.1 client built on asyncio.Protocol, for streaming at thousands of requests/s.

Why not httpx/aiohttp: the probe must not be the bottleneck, and its timestamps must be
taken when bytes arrive, not when a coroutine gets round to them. Here every read is handled
synchronously in `data_received` with one clock reading, de-chunked and handed to the
request's sink; a coroutine only waits for the end. Connections are pinned to the address
the guard checked (netguard.pin) and kept alive in a pool.

On Linux, plain-TCP connections go one step further: the time of a read is the kernel's receive
time of its bytes (SO_TIMESTAMPNS), not the time our callback runs (apps.net.kernel_time). Why:
when a decode step ends many streams at once, their bytes arrive together and the loop hands them
to data_received one after another. A clock reading there puts the processing of the streams
before into the token times of the streams after (about 2-3 ms at 64 streams on one core, more
under heavier load), and the loop-lag ticker cannot see it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable

from apps.net import kernel_time
from apps.net.kernel_time import KERNEL_TIMESTAMPS, StampedTransport

MAX_HEAD = 64 * 1024
MAX_ERROR_BODY = 4096


class ConnectError(Exception):
    pass


class ProtocolError(Exception):
    """The server's bytes are not valid HTTP/1.1 (bad status line, bad chunk size...)."""


class ResponseSink:
    """What a request does with its response; the default keeps a capped body."""

    __slots__ = ("status", "headers", "body", "future", "max_body")

    def __init__(self, future: asyncio.Future, max_body: int = MAX_ERROR_BODY):
        self.future = future
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = bytearray()
        self.max_body = max_body

    def on_head(self, status: int, headers: dict[bytes, bytes], now: float) -> None:
        self.status = status
        self.headers = headers

    def on_data(self, data: bytes, now: float) -> None:
        if len(self.body) < self.max_body:
            self.body += data[: self.max_body - len(self.body)]

    def on_end(self, now: float) -> None:
        if not self.future.done():
            self.future.set_result(now)

    def on_error(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


_HEAD, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _LENGTH, _UNTIL_CLOSE, _IDLE = range(8)


class HTTP11Connection(asyncio.Protocol):
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.sink: ResponseSink | None = None
        self.closed = False
        self.reusable = False
        self.requests = 0  # sent on this connection: more than one means it was reused
        self._buf = b""
        self._state = _IDLE
        self._remaining = 0

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        sink, self.sink = self.sink, None
        if sink is None:
            return
        if self._state == _UNTIL_CLOSE:
            sink.on_end(self.clock())
        else:
            sink.on_error(exc or ConnectionResetError("server closed the connection mid-response"))

    def data_received(self, data: bytes) -> None:
        self.data_received_at(data, self.clock())

    def data_received_at(self, data: bytes, now: float) -> None:
        """Bytes that arrived at `now` (our clock when read, or the kernel's receive time)."""
        sink = self.sink
        if sink is None:
            return  # bytes after a completed response on a connection we are closing
        try:
            self._parse(data, now, sink)
        except ProtocolError as exc:
            self.sink = None
            self.abort()
            sink.on_error(exc)

    # --- requests ------------------------------------------------------------------------

    def send(self, head_and_body: bytes, sink: ResponseSink) -> None:
        self.sink = sink
        self.reusable = False
        self.requests += 1
        self._state = _HEAD
        self._buf = b""
        self.transport.write(head_and_body)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- parsing -------------------------------------------------------------------------

    def _parse(self, data: bytes, now: float, sink: ResponseSink) -> None:
        state = self._state
        if state == _HEAD:
            buf = self._buf + data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("response head too large")
                self._buf = buf
                return
            self._buf = b""
            self._head(buf[:end], now, sink)
            data = buf[end + 4 :]
            state = self._state
            if state == _IDLE or not data:
                return
        if state == _LENGTH:
            take = data[: self._remaining]
            self._remaining -= len(take)
            if take:
                sink.on_data(take, now)
            if self._remaining == 0:
                self._finish(now, sink, keep_alive=len(data) == len(take))
            return
        if state == _UNTIL_CLOSE:
            if data:
                sink.on_data(data, now)
            return
        if state in (_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER):
            self._chunked(data, now, sink)

    def _head(self, head: bytes, now: float, sink: ResponseSink) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        sink.on_head(status, headers, now)
        self._keep_alive = headers.get(b"connection", b"").lower() != b"close" and parts[0] == b"HTTP/1.1"
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            self._state = _CHUNK_SIZE
        elif b"content-length" in headers:
            try:
                self._remaining = int(headers[b"content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length") from None
            self._state = _LENGTH
            if self._remaining == 0:
                self._finish(now, sink, keep_alive=True)
        elif status in (204, 304) or 100 <= status < 200:
            self._finish(now, sink, keep_alive=True)
        else:
            self._state = _UNTIL_CLOSE
            self._keep_alive = False

    def _chunked(self, data: bytes, now: float, sink: ResponseSink) -> None:
        buf = self._buf + data if self._buf else data
        pos = 0
        n = len(buf)
        state = self._state
        out = []
        while pos < n:
            if state == _CHUNK_DATA:
                take = min(self._remaining, n - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if n - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
                pos += 2
                state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > 1024:
                        raise ProtocolError("chunk size line too long")
                    break
                size_text = buf[pos:end].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
                pos = end + 2
                if size == 0:
                    state = _TRAILER
                else:
                    self._remaining = size
                    state = _CHUNK_DATA
            else:  # _TRAILER: skip trailer lines until the empty one
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    break
                line_empty = end == pos
                pos = end + 2
                if line_empty:
                    self._buf = b""
                    self._state = state
                    if out:
                        sink.on_data(b"".join(out), now)
                    self._finish(now, sink, keep_alive=pos == n)
                    return
        self._buf = buf[pos:]
        self._state = state
        if out:
            sink.on_data(out[0] if len(out) == 1 else b"".join(out), now)

    def _finish(self, now: float, sink: ResponseSink, keep_alive: bool) -> None:
        self._state = _IDLE
        self.sink = None
        self.reusable = keep_alive and self._keep_alive and not self.closed
        sink.on_end(now)


class ConnectionPool:
    """Keep-alive connections to one pinned address."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        tls: bool,
        server_hostname: str,
        connect_timeout: float = 10.0,
        kernel_timestamps: bool | None = None,
    ):
        self.address = address
        self.port = port
        self.ssl = ssl.create_default_context() if tls else None
        self.server_hostname = server_hostname if tls else None
        self.connect_timeout = connect_timeout
        # TLS decrypts in user space: its reads cannot be matched to the kernel's segments.
        stamps = KERNEL_TIMESTAMPS if kernel_timestamps is None else kernel_timestamps
        self.kernel_timestamps = stamps and not tls
        self._idle: list[HTTP11Connection] = []
        self.opened = 0

    async def acquire(self, *, fresh: bool = False) -> HTTP11Connection:
        """An idle kept-alive connection, or a new one (always new when `fresh`)."""
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        loop = asyncio.get_running_loop()
        try:
            if self.kernel_timestamps:
                conn = await asyncio.wait_for(self._connect_stamped(loop), self.connect_timeout)
            else:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(
                        HTTP11Connection, self.address, self.port, ssl=self.ssl, server_hostname=self.server_hostname
                    ),
                    self.connect_timeout,
                )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}") from None
        self.opened += 1
        return conn

    async def _connect_stamped(self, loop: asyncio.AbstractEventLoop) -> HTTP11Connection:
        sock = socket.socket(socket.AF_INET6 if ":" in self.address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio does for its transports
            kernel_time.enable(sock)
            # Not loop.sock_connect: uvloop's resolves the address again, which doubles the cost of
            # opening connections, and the first wave of a run shows it as schedule lag.
            err = sock.connect_ex((self.address, self.port))
            if err == errno.EINPROGRESS:
                connected = loop.create_future()
                loop.add_writer(sock.fileno(), lambda: connected.done() or connected.set_result(None))
                try:
                    await connected
                finally:
                    loop.remove_writer(sock.fileno())
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
        except BaseException:
            sock.close()
            raise
        conn = HTTP11Connection()
        StampedTransport(loop, sock, conn)
        return conn

    def release(self, conn: HTTP11Connection) -> None:
        if conn.reusable and not conn.closed:
            self._idle.append(conn)
        else:
            conn.abort()

    def close(self) -> None:
        for conn in self._idle:
            conn.abort()
        self._idle.clear()


def request_head(method: str, path: str, host_header: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
