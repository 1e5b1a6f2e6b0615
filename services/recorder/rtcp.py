"""RTCP: PLI construction, Sender Report parsing, and the keyframe-request policy.

Janus's ``rtp_forward`` sends RTCP (Sender Reports) from its forwarder socket to our ``rtcp_port`` and
relays a PLI we send back to that address to the publisher. The SR gives the RTP-timestamp ↔ NTP wallclock
mapping.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from services.recorder.errors import MalformedPacketError

RTCP_SR = 200
RTCP_PSFB = 206
PSFB_PLI = 1
NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """RTCP payload-specific feedback, FMT=1 (Picture Loss Indication), RFC 4585 §6.3.1: 12 bytes."""
    return struct.pack("!BBHII", 0x80 | PSFB_PLI, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """An SR's timing: raw 64-bit ``ntp_time`` and the same instant as ``rtp_timestamp``."""

    ssrc: int
    ntp_time: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int

    @property
    def unix_time_us(self) -> int:
        """The SR's wallclock as microseconds since the Unix epoch."""
        seconds = self.ntp_time >> 32
        fraction = self.ntp_time & 0xFFFFFFFF
        return (seconds - NTP_EPOCH_OFFSET) * 1_000_000 + (fraction * 1_000_000 >> 32)


def parse_sender_reports(data: bytes) -> list[SenderReport]:
    """Every SR in a (compound) RTCP datagram; other packet types are skipped.

    Raises MalformedPacketError if the compound packet's length fields are inconsistent.
    """
    reports: list[SenderReport] = []
    pos = 0
    while pos + 4 <= len(data):
        b0, pt, words = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != 2:
            raise MalformedPacketError("rtcp version is not 2")
        end = pos + 4 * (words + 1)
        if end > len(data):
            raise MalformedPacketError("rtcp length exceeds datagram")
        if pt == RTCP_SR:
            if end - pos < 28:
                raise MalformedPacketError("rtcp sender report truncated")
            ssrc, ntp_hi, ntp_lo, rtp_ts, packets, octets = struct.unpack_from("!IIIIII", data, pos + 4)
            reports.append(SenderReport(ssrc, (ntp_hi << 32) | ntp_lo, rtp_ts, packets, octets))
        pos = end
    if pos != len(data):
        raise MalformedPacketError("trailing bytes after rtcp packets")
    return reports


def build_sender_report(ssrc: int, ntp_time: int, rtp_timestamp: int, packets: int, octets: int) -> bytes:
    """Serialize an SR without report blocks (tests and the bench play Janus with it)."""
    return struct.pack(
        "!BBHIIIIII",
        0x80,
        RTCP_SR,
        6,
        ssrc,
        ntp_time >> 32,
        ntp_time & 0xFFFFFFFF,
        rtp_timestamp,
        packets,
        octets,
    )


class KeyframeRequester:
    """Decides when to send a PLI: until the first keyframe, and whenever keyframes stop for too long.

    ``clock`` returns monotonic seconds. Recordings need a keyframe at least every ``max_keyframe_interval`` s
    so they are seekable and can be cut into parallel segments; ``retry_interval`` rate-limits the PLIs.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        max_keyframe_interval: float = 10.0,
        retry_interval: float = 1.0,
    ) -> None:
        self._clock = clock
        self._max_interval = max_keyframe_interval
        self._retry = retry_interval
        self._last_keyframe: float | None = None
        self._last_pli: float | None = None
        self._need = True
        self.plis_sent = 0

    def on_keyframe(self) -> None:
        self._last_keyframe = self._clock()
        self._need = False

    def on_loss(self) -> None:
        """A loss broke the reference chain: ask for a keyframe at once rather than waiting."""
        self._need = True

    def should_send(self) -> bool:
        """True when a PLI is due now; the caller sends it and then calls ``sent``."""
        now = self._clock()
        due = self._need or (
            self._last_keyframe is not None and now - self._last_keyframe >= self._max_interval
        )
        if not due:
            return False
        return self._last_pli is None or now - self._last_pli >= self._retry

    def sent(self) -> None:
        self._last_pli = self._clock()
        self.plis_sent += 1
