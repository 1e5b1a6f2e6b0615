"""Reorder buffer: RTP packets in arrival order in, packets in sequence order (with loss markers) out.

Sequence numbers are unwrapped to 64 bits, so a wrap at 65535 is invisible downstream. The buffer is
bounded by ``capacity`` packets: when more packets than that wait behind a hole, the hole is declared
lost and output skips to the oldest buffered packet. A jump larger than ``capacity`` (a restarted
forwarder) is treated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.recorder.rtp import RtpPacket, Unwrapper


@dataclass(frozen=True, slots=True)
class Loss:
    """``count`` consecutive sequence numbers that never arrived, at the place they were missing."""

    count: int


@dataclass(slots=True)
class ReorderStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0
    reordered: int = 0
    lost: int = 0


class ReorderBuffer:
    """Bounded sequence-number reorder buffer for one SSRC stream."""

    __slots__ = ("_buffer", "_capacity", "_highest", "_next", "_unwrap", "stats")

    def __init__(self, capacity: int = 128) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._unwrap = Unwrapper(16)
        self._buffer: dict[int, RtpPacket] = {}
        self._next: int | None = None
        self._highest = -1
        self.stats = ReorderStats()

    def push(self, packet: RtpPacket) -> list[RtpPacket | Loss]:
        """Add one packet; return whatever became releasable, in sequence order."""
        stats = self.stats
        stats.received += 1
        ext = self._unwrap.unwrap(packet.sequence_number)
        nxt = self._next
        if nxt is None:
            nxt = self._next = ext
        if ext < nxt:
            stats.late += 1  # already released or declared lost
            return []
        if ext in self._buffer:
            stats.duplicates += 1
            return []
        if ext < self._highest:
            stats.reordered += 1
        else:
            self._highest = ext
        if ext == nxt and not self._buffer:
            # Fast path: in-order packet with nothing waiting.
            self._next = ext + 1
            return [packet]
        out: list[RtpPacket | Loss] = []
        if ext - nxt > self._capacity:
            # A jump too big to be reordering: release what we hold, then resync at this packet.
            out.extend(self._drain())
            nxt = self._next
            if nxt is not None and ext > nxt:
                self._declare_lost(ext - nxt, out)
            self._next = ext
        self._buffer[ext] = packet
        self._release(out)
        while len(self._buffer) > self._capacity:
            oldest = min(self._buffer)
            assert self._next is not None  # noqa: S101 - set above; narrows the type
            self._declare_lost(oldest - self._next, out)
            self._next = oldest
            self._release(out)
        return out

    def flush(self) -> list[RtpPacket | Loss]:
        """Release everything still held (end of stream), with loss markers for remaining holes."""
        return self._drain()

    def _drain(self) -> list[RtpPacket | Loss]:
        out: list[RtpPacket | Loss] = []
        while self._buffer:
            oldest = min(self._buffer)
            assert self._next is not None  # noqa: S101 - non-empty buffer implies a start
            if oldest > self._next:
                self._declare_lost(oldest - self._next, out)
            self._next = oldest
            self._release(out)
        return out

    def _release(self, out: list[RtpPacket | Loss]) -> None:
        buffer = self._buffer
        nxt = self._next
        assert nxt is not None  # noqa: S101 - callers set it first
        while nxt in buffer:
            out.append(buffer.pop(nxt))
            nxt += 1
        self._next = nxt

    def _declare_lost(self, count: int, out: list[RtpPacket | Loss]) -> None:
        if count > 0:
            self.stats.lost += count
            out.append(Loss(count))
