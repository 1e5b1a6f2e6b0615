"""UDP plumbing for RTP/RTCP reception: the port allocator, socket setup and asyncio datagram protocols.

Many tracks share one event loop: each track owns one RTP socket and (video, or audio with SR sync) one RTCP
socket on the next port. Sockets get a large SO_RCVBUF so bursts (keyframes of many tracks at once) are not
dropped by the kernel.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

from services.recorder.errors import PortsExhaustedError

logger = logging.getLogger(__name__)

DEFAULT_RCVBUF = 4 * 1024 * 1024


def open_udp_socket(host: str, port: int, rcvbuf: int = DEFAULT_RCVBUF) -> socket.socket:
    """A non-blocking UDP socket bound to (host, port) with SO_RCVBUF raised (capped by net.core.rmem_max)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class PortAllocator:
    """Hands out bound UDP sockets on consecutive ports of [first, last], skipping busy ports."""

    def __init__(self, host: str, first: int, last: int, rcvbuf: int = DEFAULT_RCVBUF) -> None:
        if not 0 < first <= last < 65536:
            raise ValueError("bad port range")
        self.host = host
        self._first = first
        self._last = last
        self._rcvbuf = rcvbuf
        self._used: set[int] = set()
        self._cursor = first

    @property
    def in_use(self) -> int:
        return len(self._used)

    def allocate(self, count: int) -> list[socket.socket]:
        """Bind ``count`` sockets on consecutive ports (RTP, then RTCP); the first port is even when count=2.

        Raises PortsExhaustedError after one full sweep of the range without success.
        """
        span = self._last - self._first + 1
        for i in range(span):
            base = self._first + (self._cursor - self._first + i) % span
            if base + count - 1 > self._last or (count == 2 and base % 2):
                continue
            ports = list(range(base, base + count))
            if any(p in self._used for p in ports):
                continue
            socks: list[socket.socket] = []
            try:
                for p in ports:
                    socks.append(open_udp_socket(self.host, p, self._rcvbuf))
            except OSError as exc:
                for s in socks:
                    s.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._used.update(ports)
            self._cursor = base + count if base + count <= self._last else self._first
            return socks
        raise PortsExhaustedError("no free udp port in the configured range")

    def release(self, ports: list[int]) -> None:
        self._used.difference_update(ports)


class DatagramReceiver(asyncio.DatagramProtocol):
    """Calls ``on_datagram(data, addr)`` for each datagram; ``send`` replies to the last known peer."""

    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_datagram_endpoint always hands a datagram transport to its protocol.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.peer = addr
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.errors += 1
        logger.warning("udp socket error", extra={"error": str(exc)})

    def send(self, data: bytes) -> bool:
        """Send to the learned peer; False when no datagram has arrived yet (peer unknown)."""
        if self.transport is None or self.peer is None:
            return False
        self.transport.sendto(data, self.peer)
        return True


class _BatchTransport(asyncio.DatagramTransport):
    """A minimal datagram transport that drains up to ``batch`` datagrams per readiness event.

    asyncio's own datagram transport reads one datagram per event-loop wakeup; with hundreds of busy sockets
    that makes the selector the hot spot. Reading a batch per wakeup keeps the protocol interface unchanged.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: DatagramReceiver
    ) -> None:
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._protocol = protocol
        self._closed = False
        loop.add_reader(sock.fileno(), self._read_ready)
        protocol.connection_made(self)

    def _read_ready(self, batch: int = 64) -> None:
        recvfrom = self._sock.recvfrom
        deliver = self._protocol.datagram_received
        for _ in range(batch):
            try:
                data, addr = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            deliver(data, addr)

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        try:
            self._sock.sendto(data, addr)
        except OSError as exc:  # feedback is best effort: a full buffer must not break reception
            self._protocol.error_received(exc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self._closed

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "sockname":
            return self._sock.getsockname()
        return default


async def attach(sock: socket.socket, receiver: DatagramReceiver) -> asyncio.DatagramTransport:
    """Run ``receiver`` on an already-bound socket in the current loop (batched reads)."""
    sock.setblocking(False)
    return _BatchTransport(asyncio.get_running_loop(), sock, receiver)
