"""Finalization and crash recovery: chunk log in object storage → one seekable .mkv/.mka.

``finalize`` streams the chunks of one track in index order (one chunk in memory at a time), muxes them
without transcoding, uploads the file, writes a small result manifest, then deletes the chunks. It is
idempotent and works from whatever chunks exist, so after a crash any process can call ``recover(store,
prefix)``:

* manifest present → the earlier run finished muxing and uploading; only leftover chunks are deleted.
* no chunks and no manifest → EmptyRecordingError (the service marks the recording failed).
* a damaged chunk → skipped (a gap); video then resumes at the next keyframe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from services.recorder.chunks import Chunk, ChunkFrame, MediaStore, chunk_prefix, parse_chunk
from services.recorder.depacketize import (
    NAL_SPS,
    Codec,
    annexb_nal_units,
    h264_sps_resolution,
    opus_packet_samples,
    vp8_keyframe_info,
)
from services.recorder.errors import ChunkFormatError, EmptyRecordingError, MalformedPacketError
from services.recorder.matroska import MatroskaWriter, container_format, content_type
from services.recorder.rtcp import SenderReport

logger = logging.getLogger(__name__)

MANIFEST_NAME = "finalized.json"
_DEFAULT_VIDEO_FRAME_TICKS = 3000  # 1/30 s at 90 kHz, for a lone last frame


@dataclass(frozen=True, slots=True)
class FinalizeResult:
    """What the Recording resource needs. Timestamps are ms from the track origin (its first frame)."""

    key: str
    codec: str
    container_format: str
    duration_ms: int
    size_bytes: int
    frames: int
    keyframes: int
    first_timestamp_ms: int
    last_timestamp_ms: int
    start_wallclock_us: int
    width: int | None
    height: int | None
    resolution_changes: int
    skipped_chunks: int
    sender_report_ntp: int | None
    sender_report_pts: int | None


def manifest_key(prefix: str) -> str:
    return prefix.rstrip("/") + "/" + MANIFEST_NAME


def media_key(prefix: str, codec: Codec) -> str:
    return f"{prefix.rstrip('/')}/media.{container_format(codec)}"


async def _read_object(store: MediaStore, key: str) -> bytes:
    parts = [block async for block in store.get_stream(key)]
    return b"".join(parts)


def _resolution(codec: Codec, frame: ChunkFrame) -> tuple[int, int] | None:
    if not frame.keyframe:
        return None
    if codec is Codec.VP8:
        _, width, height = vp8_keyframe_info(frame.data)
        return (width, height) if width and height else None
    if codec is Codec.H264:
        for unit in annexb_nal_units(frame.data):
            if unit[0] & 0x1F == NAL_SPS:
                try:
                    return h264_sps_resolution(unit)
                except MalformedPacketError:
                    return None
    return None


class _Muxer:
    """Chunk frames → Matroska, with one frame of lookahead so every packet gets its real duration."""

    def __init__(self, path: str, codec: Codec) -> None:
        self.path = path
        self.codec = codec
        self.writer: MatroskaWriter | None = None
        self.pending: ChunkFrame | None = None
        self.base_pts: int | None = None
        self.last_pts: int | None = None
        self.last_duration = 0
        self.frames = 0
        self.keyframes = 0
        self.need_keyframe = codec.is_video
        self.width: int | None = None
        self.height: int | None = None
        self.resolution_changes = 0

    def add(self, frame: ChunkFrame) -> None:
        if self.need_keyframe:
            if not frame.keyframe:
                return
            self.need_keyframe = False
        size = _resolution(self.codec, frame)
        if size is not None:
            if self.width is not None and size != (self.width, self.height):
                self.resolution_changes += 1
            self.width, self.height = size
        if self.writer is None:
            if self.codec.is_video and size is None:
                self.need_keyframe = True  # cannot size the track: wait for a parsable keyframe
                return
            self.writer = MatroskaWriter(
                self.path, self.codec, width=self.width or 0, height=self.height or 0
            )
            self.base_pts = frame.pts
        pending = self.pending
        if pending is not None:
            if frame.pts <= pending.pts:
                # Non-increasing RTP timestamps (sender bug or restart): keep order, nudge forward.
                frame = ChunkFrame(pending.pts + 1, frame.keyframe, frame.data)
            self._write(pending, frame.pts - pending.pts)
        self.pending = frame

    def gap(self) -> None:
        """A chunk was lost: video must restart at a keyframe."""
        if self.codec.is_video:
            self.need_keyframe = True

    def _write(self, frame: ChunkFrame, duration: int) -> None:
        assert self.writer is not None and self.base_pts is not None  # noqa: S101 - set with the first frame
        if self.codec is Codec.OPUS:
            duration = opus_packet_samples(frame.data) or duration
        self.writer.write(frame.pts - self.base_pts, frame.data, frame.keyframe, duration)
        self.frames += 1
        self.keyframes += int(frame.keyframe)
        self.last_pts = frame.pts
        self.last_duration = duration

    def close(self) -> None:
        if self.pending is not None:
            if self.codec is Codec.OPUS:
                duration = opus_packet_samples(self.pending.data) or 960
            else:
                duration = self.last_duration or _DEFAULT_VIDEO_FRAME_TICKS
            self._write(self.pending, duration)
            self.pending = None
        if self.writer is not None:
            self.writer.close()


async def finalize(store: MediaStore, prefix: str, dest_key: str | None = None) -> FinalizeResult:
    """Mux the chunk log under ``prefix`` into one Matroska object and delete the chunks.

    Returns the result (also stored as ``<prefix>/finalized.json``). Raises EmptyRecordingError when there is
    nothing playable (no chunks, or video without a keyframe). Safe to call again after any crash.
    """
    manifest = manifest_key(prefix)
    if any(obj.key == manifest for obj in await store.list(manifest)):
        result = FinalizeResult(**json.loads(await _read_object(store, manifest)))
        await store.delete_prefix(chunk_prefix(prefix))
        logger.info("recording already finalized", extra={"prefix": prefix, "key": result.key})
        return result
    keys = sorted(obj.key for obj in await store.list(chunk_prefix(prefix)))
    if not keys:
        raise EmptyRecordingError("no chunks recorded")
    with tempfile.TemporaryDirectory(prefix="mixdown-finalize-") as workdir:
        result = await _mux_chunks(store, prefix, keys, dest_key, workdir)
    await store.put_bytes(manifest, json.dumps(asdict(result)).encode(), "application/json")
    await store.delete_prefix(chunk_prefix(prefix))
    logger.info(
        "recording finalized",
        extra={
            "prefix": prefix,
            "key": result.key,
            "duration_ms": result.duration_ms,
            "size": result.size_bytes,
        },
    )
    return result


recover = finalize
"""Crash recovery is finalization from whatever chunks exist: same function, named for the call site."""


async def _mux_chunks(
    store: MediaStore, prefix: str, keys: list[str], dest_key: str | None, workdir: str
) -> FinalizeResult:
    muxer: _Muxer | None = None
    first: Chunk | None = None
    skipped = 0
    expected_index = 0
    report: tuple[int, int] | None = None
    for key in keys:
        try:
            chunk = parse_chunk(await _read_object(store, key))
        except ChunkFormatError:
            logger.warning("damaged chunk skipped", extra={"key": key})
            skipped += 1
            if muxer is not None:
                muxer.gap()
            continue
        if first is None:
            first = chunk
            codec = Codec(chunk.header.codec)
            path = os.path.join(workdir, "media." + container_format(codec))
            muxer = _Muxer(path, codec)
        assert muxer is not None  # noqa: S101 - created with the first chunk
        if chunk.header.index != expected_index:
            muxer.gap()  # a missing index means a chunk never made it to storage
        expected_index = chunk.header.index + 1
        if report is None and chunk.sender_reports:
            report = (chunk.sender_reports[0].ntp_time, chunk.sender_reports[0].pts)
        await asyncio.to_thread(_mux_frames, muxer, chunk.frames)
    if muxer is None or first is None:
        raise EmptyRecordingError("every chunk is damaged")
    await asyncio.to_thread(muxer.close)
    if muxer.frames == 0 or muxer.base_pts is None or muxer.last_pts is None:
        raise EmptyRecordingError("no playable frames (video never had a keyframe)")
    codec = muxer.codec
    key = dest_key or media_key(prefix, codec)
    size = await asyncio.to_thread(os.path.getsize, muxer.path)
    await store.put_file(key, Path(muxer.path), content_type(codec))
    clock = codec.clock_rate
    end_pts = muxer.last_pts + muxer.last_duration
    start_us = first.header.origin_wallclock_us + muxer.base_pts * 1_000_000 // clock
    if report is not None:
        # Prefer the sender's clock: the SR maps a pts to NTP wallclock without our receive jitter.
        sr = SenderReport(0, report[0], 0, 0, 0)
        start_us = sr.unix_time_us + (muxer.base_pts - report[1]) * 1_000_000 // clock
    return FinalizeResult(
        key=key,
        codec=codec.value,
        container_format=container_format(codec),
        duration_ms=(end_pts - muxer.base_pts) * 1000 // clock,
        size_bytes=size,
        frames=muxer.frames,
        keyframes=muxer.keyframes,
        first_timestamp_ms=muxer.base_pts * 1000 // clock,
        last_timestamp_ms=muxer.last_pts * 1000 // clock,
        start_wallclock_us=start_us,
        width=muxer.width,
        height=muxer.height,
        resolution_changes=muxer.resolution_changes,
        skipped_chunks=skipped,
        sender_report_ntp=report[0] if report else None,
        sender_report_pts=report[1] if report else None,
    )


def _mux_frames(muxer: _Muxer, frames: list[ChunkFrame]) -> None:
    for frame in frames:
        muxer.add(frame)
