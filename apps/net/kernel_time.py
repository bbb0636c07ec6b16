"""Reads that carry the kernel's receive time of their bytes (SO_TIMESTAMPNS), on plain TCP.

Shared by the probe engine's HTTP client (token times) and the simulator (request arrivals):
both need the time bytes reached the host, not the time their event loop got round to them.
A callback that reads its clock puts everything the loop did before it (other streams' bytes,
other requests' writes) into the time, and nothing in the process can see how much.

The kernel stamps each segment as it arrives (CLOCK_REALTIME); converted to the monotonic clock
it is the time we want. A read that takes in several segments carries the newest one's stamp:
never later than our own clock reading would have been. Plain Python, no Django.
"""

from __future__ import annotations

import asyncio
import platform
import socket
import struct
import sys
import time
from typing import Protocol

READ_SIZE = 64 * 1024  # below glibc's mmap threshold: recvmsg allocates its buffer on every call

# SO_TIMESTAMPNS: the socket module does not export it. 35 with the generic Linux numbering and
# a 64-bit timespec; elsewhere (sparc, parisc, 32-bit, other systems) we read our own clock.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_GENERIC_64 = {"x86_64", "aarch64", "riscv64", "ppc64le", "s390x"}
KERNEL_TIMESTAMPS = sys.platform == "linux" and platform.machine() in _GENERIC_64


class StampedProtocol(Protocol):
    def connection_made(self, transport) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def data_received_at(self, data: bytes, now: float) -> None: ...


def enable(sock: socket.socket) -> bool:
    """Ask for receive stamps on `sock` (on a listening socket, its accepted sockets inherit them)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False  # reads without a stamp fall back to our clock
    return True


_wall_offset = [0.0, -1e9]  # [CLOCK_REALTIME - CLOCK_MONOTONIC, when it was measured (monotonic)]


def wall_minus_monotonic(now: float) -> float:
    """The offset between the kernel's receive stamps (wall clock) and ours, re-measured each second.

    Both clocks are slewed alike by NTP, so the offset only moves when the wall clock is stepped.
    Measured from the tightest of three monotonic/wall/monotonic readings: reading the two clocks
    per packet instead would put any preemption (or GIL switch) between the two readings into
    the stamp, making bytes look up to a few hundred microseconds early.
    """
    if now - _wall_offset[1] > 1.0:
        best = (1.0, 0.0)
        for _ in range(3):
            before = time.monotonic()
            wall = time.time()
            after = time.monotonic()
            best = min(best, (after - before, wall - (before + after) / 2))
        _wall_offset[0], _wall_offset[1] = best[1], now
    return _wall_offset[0]


def received_at(ancdata: list, now: float) -> float:
    """The monotonic time of a recvmsg's bytes: the kernel's stamp in `ancdata`, else `now`."""
    for level, kind, payload in ancdata:
        if kind == SO_TIMESTAMPNS and level == socket.SOL_SOCKET and len(payload) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(payload)
            stamped = sec + nsec * 1e-9 - wall_minus_monotonic(now)
            if now - 1.0 < stamped < now:  # outside: the wall clock was stepped; our own reading is better
                return stamped
    return now


class StampedTransport:
    """A plain-TCP stand-in for an asyncio transport whose reads carry the kernel's receive time.

    The protocol gets `data_received_at(data, now)` instead of `data_received(data)`. Writes go
    straight to the socket and are buffered only when it is full; `close()` sends what is buffered
    first, `abort()` does not.
    """

    __slots__ = ("_loop", "_sock", "_fd", "_protocol", "_out", "_closing", "_writing")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StampedProtocol):
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._out = bytearray()
        self._closing = False
        self._writing = False
        protocol.connection_made(self)
        loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            data, ancdata, _, _ = self._sock.recvmsg(READ_SIZE, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(exc)
            return
        if not data:
            self._close(None)  # EOF: the protocol decides whether that ended a response or broke one
            return
        now = time.monotonic()
        self._protocol.data_received_at(data, received_at(ancdata, now) if ancdata else now)

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._out:
            self._out += data
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._close(exc)
            return
        if sent < len(data):
            self._out += data[sent:]
            self._writing = True
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._out.clear()
            self._close(exc)
            return
        del self._out[:sent]
        if not self._out:
            self._writing = False
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._close(None)

    def get_write_buffer_size(self) -> int:
        return len(self._out)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close once what was written has been sent (as asyncio's transports do)."""
        if self._closing:
            return
        if not self._out:
            self._close(None)
            return
        self._closing = True  # no more writes; _writable closes when the buffer is empty
        self._loop.remove_reader(self._fd)

    def abort(self) -> None:
        self._out.clear()
        self._close(None)

    def _close(self, exc: BaseException | None) -> None:
        if self._sock.fileno() < 0:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, exc)  # as asyncio's transports do
