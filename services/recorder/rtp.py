"""RTP packet parsing and 16/32-bit sequence and timestamp unwrapping.

Owns the wire format of RFC 3550 RTP headers as Janus's ``rtp_forward`` sends them (no SRTP, no header
extensions in practice, but extensions, CSRCs and padding are handled).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from services.recorder.errors import MalformedPacketError

_HEADER = struct.Struct("!BBHII")
RTP_VERSION = 2


@dataclass(slots=True)
class RtpPacket:
    """One parsed RTP packet; ``payload`` is a memoryview-free bytes copy of the media payload."""

    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram.

    Raises MalformedPacketError for short packets, a wrong version, or inconsistent padding/extension lengths.
    """
    size = len(data)
    if size < 12:
        raise MalformedPacketError("rtp packet shorter than its fixed header")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise MalformedPacketError("rtp version is not 2")
    offset = 12 + 4 * (b0 & 0x0F)
    end = size
    if b0 & 0x10:
        if offset + 4 > size:
            raise MalformedPacketError("rtp header extension truncated")
        (ext_words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * ext_words
    if b0 & 0x20:
        pad = data[-1]
        if pad == 0:
            raise MalformedPacketError("rtp padding length is zero")
        end -= pad
    if offset > end:
        raise MalformedPacketError("rtp header longer than the packet")
    return RtpPacket(
        payload_type=b1 & 0x7F,
        marker=bool(b1 & 0x80),
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=data[offset:end],
    )


def build_rtp(
    payload_type: int, sequence_number: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False
) -> bytes:
    """Serialize a minimal RTP packet (no CSRC, no extension, no padding); used by tests and the bench."""
    return (
        _HEADER.pack(
            0x80,
            (0x80 if marker else 0) | (payload_type & 0x7F),
            sequence_number & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


class Unwrapper:
    """Extends a wrapping counter of ``bits`` bits into a monotonic-ish 64-bit integer.

    Values within half the range of the last value are taken as the nearest neighbour, so reordered packets
    just before a wrap map below it and packets just after map above it.
    """

    __slots__ = ("_half", "_last", "_modulus")

    def __init__(self, bits: int) -> None:
        self._modulus = 1 << bits
        self._half = 1 << (bits - 1)
        self._last: int | None = None

    def unwrap(self, value: int) -> int:
        """Return the extended value of ``value`` (``0 <= value < 2**bits``)."""
        last = self._last
        if last is None:
            # Start one cycle up so early reordered packets never go negative.
            self._last = self._modulus + value
            return self._last
        delta = (value - last) % self._modulus
        if delta >= self._half:
            delta -= self._modulus
        extended = last + delta
        if extended > last:
            self._last = extended
        return extended
