"""TrackRecorder: one published track's RTP stream → reorder → frames → crash-safe chunk log.

Glue only: ``receiver`` supplies datagrams, ``jitter`` orders them, ``depacketize`` builds frames, ``chunks``
stores them, ``rtcp`` decides when to ask Janus (and so the publisher) for a keyframe. Everything runs on the
event loop; per packet the work is a header parse, a dict insert/pop and a list append.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.recorder.chunks import ChunkWriter, MediaStore
from services.recorder.depacketize import Codec, FrameAssembler
from services.recorder.errors import MalformedPacketError
from services.recorder.jitter import Loss, ReorderBuffer
from services.recorder.receiver import DatagramReceiver, attach
from services.recorder.rtcp import KeyframeRequester, build_pli, parse_sender_reports
from services.recorder.rtp import RtpPacket, Unwrapper, parse_rtp

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrackRecorderConfig:
    chunk_seconds: float = 1.5
    keyframe_interval: float = 10.0
    pli_retry: float = 1.0
    reorder_capacity: int = 128
    tick_seconds: float = 0.25
    upload_deadline: float = 120.0


@dataclass(frozen=True, slots=True)
class TrackStats:
    """Counters of one track; ``lost`` counts sequence numbers that never arrived."""

    packets: int
    bytes: int
    malformed: int
    lost: int
    reordered: int
    duplicates: int
    late: int
    frames: int
    keyframes: int
    dropped_frames: int
    plis_sent: int
    sender_reports: int
    chunks: int
    bytes_uploaded: int
    upload_failures: int
    width: int | None
    height: int | None


class TrackRecorder:
    """Records one track from ``rtp_sock`` (and optional ``rtcp_sock``) into chunks under ``prefix``."""

    def __init__(
        self,
        codec: Codec,
        store: MediaStore,
        prefix: str,
        rtp_sock: socket.socket,
        rtcp_sock: socket.socket | None = None,
        config: TrackRecorderConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.codec = codec
        self.prefix = prefix
        self.config = config or TrackRecorderConfig()
        self._rtp_sock = rtp_sock
        self._rtcp_sock = rtcp_sock
        self._wallclock_us = wallclock_us
        self._reorder = ReorderBuffer(self.config.reorder_capacity)
        self._assembler = FrameAssembler(codec)
        self._writer = ChunkWriter(
            store, prefix, codec.value, codec.clock_rate, chunk_seconds=self.config.chunk_seconds, clock=clock
        )
        self._requester = KeyframeRequester(clock, self.config.keyframe_interval, self.config.pli_retry)
        self._ts_unwrap = Unwrapper(32)
        self._origin_ts: int | None = None
        self._last_ts32 = 0
        self._last_pts = 0
        self._media_ssrc: int | None = None
        self._our_ssrc = random.getrandbits(32)
        self._rtp = DatagramReceiver(self._on_rtp)
        self._rtcp = DatagramReceiver(self._on_rtcp)
        self._transports: list[asyncio.DatagramTransport] = []
        self._ticker: asyncio.Task[None] | None = None
        self.packets = 0
        self.bytes = 0
        self.malformed = 0
        self.sender_reports = 0

    @property
    def rtp_port(self) -> int:
        return int(self._rtp_sock.getsockname()[1])

    @property
    def rtcp_port(self) -> int | None:
        return int(self._rtcp_sock.getsockname()[1]) if self._rtcp_sock is not None else None

    async def start(self) -> None:
        """Begin receiving; returns once the sockets are attached to the running loop."""
        self._writer.start()
        self._transports.append(await attach(self._rtp_sock, self._rtp))
        if self._rtcp_sock is not None:
            self._transports.append(await attach(self._rtcp_sock, self._rtcp))
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        logger.info(
            "track recording started",
            extra={"prefix": self.prefix, "codec": self.codec.value, "rtp_port": self.rtp_port},
        )

    async def stop(self) -> TrackStats:
        """Stop receiving, flush buffered packets and the last chunk, wait for uploads; return counters.

        Raises UploadIncompleteError when the store does not take the chunks within ``upload_deadline``.
        """
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        for item in self._reorder.flush():
            self._on_ordered(item)
        self._assembler.flush()
        await self._writer.close(self.config.upload_deadline)
        stats = self.stats()
        logger.info(
            "track recording stopped",
            extra={
                "prefix": self.prefix,
                "packets": stats.packets,
                "lost": stats.lost,
                "frames": stats.frames,
            },
        )
        return stats

    def stats(self) -> TrackStats:
        r, a, w = self._reorder.stats, self._assembler.stats, self._writer.stats
        return TrackStats(
            packets=self.packets,
            bytes=self.bytes,
            malformed=self.malformed + a.malformed,
            lost=r.lost,
            reordered=r.reordered,
            duplicates=r.duplicates,
            late=r.late,
            frames=a.frames,
            keyframes=a.keyframes,
            dropped_frames=a.dropped_frames,
            plis_sent=self._requester.plis_sent,
            sender_reports=self.sender_reports,
            chunks=w.chunks_sealed,
            bytes_uploaded=w.bytes_uploaded,
            upload_failures=w.upload_failures,
            width=self._assembler.width,
            height=self._assembler.height,
        )

    # --- datagram path -----------------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets += 1
        self.bytes += len(data)
        try:
            packet = parse_rtp(data)
        except MalformedPacketError:
            self.malformed += 1
            return
        self._media_ssrc = packet.ssrc
        for item in self._reorder.push(packet):
            self._on_ordered(item)

    def _on_ordered(self, item: RtpPacket | Loss) -> None:
        if isinstance(item, Loss) and self.codec.is_video:
            self._requester.on_loss()
        for frame in self._assembler.push(item):
            ext = self._ts_unwrap.unwrap(frame.timestamp)
            if self._origin_ts is None:
                self._origin_ts = ext
                self._writer.set_origin(self._wallclock_us(), frame.timestamp)
            pts = ext - self._origin_ts
            self._last_ts32, self._last_pts = frame.timestamp, pts
            if frame.keyframe and self.codec.is_video:
                self._requester.on_keyframe()
            self._writer.add_frame(pts, frame.data, frame.keyframe)

    def _on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reports = parse_sender_reports(data)
        except MalformedPacketError:
            self.malformed += 1
            return
        for report in reports:
            if self._origin_ts is None or (self._media_ssrc is not None and report.ssrc != self._media_ssrc):
                continue
            delta = (report.rtp_timestamp - self._last_ts32) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            self._writer.add_sender_report(report.ntp_time, self._last_pts + delta)
            self.sender_reports += 1
        self._maybe_request_keyframe()

    # --- periodic work -----------------------------------------------------------------------------------

    def _maybe_request_keyframe(self) -> None:
        if not self.codec.is_video or self._media_ssrc is None or self._rtcp.peer is None:
            return
        if self._requester.should_send() and self._rtcp.send(build_pli(self._our_ssrc, self._media_ssrc)):
            self._requester.sent()
            logger.debug("pli sent", extra={"prefix": self.prefix})

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            self._writer.tick()
            self._maybe_request_keyframe()
