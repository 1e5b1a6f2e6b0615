"""The crash-safe chunk log: short self-contained pieces of a track, uploaded to object storage as recorded.

A chunk object (key ``<prefix>/chunks/<index:08d>.mxc``) is::

    header  b"MXCK" | version u8 | codec len u8 | codec ascii | clock_rate u32 | index u32
            | origin_wallclock_us i64 | origin_rtp_ts u32
    records 0x01 FRAME  pts i64 | flags u8 (bit 0 keyframe) | size u32 | data
            0x02 SR     ntp u64 | pts i64             (RTCP sender report: wallclock of that media instant)
            0x03 END    records u32 | crc32 u32       (crc32 of every byte before the END record)

All integers are big-endian. ``pts`` counts ``clock_rate`` ticks from the track's origin (its first frame's
RTP timestamp, unwrapped), so gaps are preserved. Frames are depayloaded access units (VP8 frames, Annex-B
H.264, Opus packets): a chunk may start on any frame and recovery rebuilds the exact stream. A chunk is
sealed when it holds ``chunk_seconds`` of media or has been open that long in wallclock, so a ``kill -9``
loses at most about ``chunk_seconds`` of media plus what the upload queue holds.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from services.recorder.errors import ChunkFormatError, UploadIncompleteError

logger = logging.getLogger(__name__)

MAGIC = b"MXCK"
VERSION = 1
CHUNK_CONTENT_TYPE = "application/x-mixdown-chunk"
REC_FRAME = 0x01
REC_SR = 0x02
REC_END = 0x03
_FRAME = struct.Struct("!BqBI")
_SR = struct.Struct("!BQq")
_END = struct.Struct("!BII")
_HEADER_TAIL = struct.Struct("!IIqI")


class StoredObject(Protocol):
    @property
    def key(self) -> str: ...


class MediaStore(Protocol):
    """The subset of ``libs.storage.ObjectStore`` the recorder core uses.

    ``MinioObjectStore``, ``InMemoryObjectStore`` and ``DirectoryObjectStore`` all satisfy it.
    """

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> object: ...

    async def put_file(self, key: str, path: Path, content_type: str) -> object: ...

    def get_stream(self, key: str, chunk: int = ...) -> AsyncIterator[bytes]: ...

    async def list(self, prefix: str) -> Sequence[StoredObject]: ...

    async def delete_prefix(self, prefix: str) -> int: ...


def chunk_prefix(prefix: str) -> str:
    return prefix.rstrip("/") + "/chunks/"


def chunk_key(prefix: str, index: int) -> str:
    return f"{chunk_prefix(prefix)}{index:08d}.mxc"


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    codec: str
    clock_rate: int
    index: int
    origin_wallclock_us: int
    origin_rtp_ts: int


@dataclass(frozen=True, slots=True)
class ChunkFrame:
    pts: int
    keyframe: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class ChunkSenderReport:
    ntp_time: int
    pts: int


@dataclass(frozen=True, slots=True)
class Chunk:
    header: ChunkHeader
    frames: list[ChunkFrame]
    sender_reports: list[ChunkSenderReport]


def encode_header(header: ChunkHeader) -> bytes:
    codec = header.codec.encode("ascii")
    return (
        MAGIC
        + bytes((VERSION, len(codec)))
        + codec
        + _HEADER_TAIL.pack(header.clock_rate, header.index, header.origin_wallclock_us, header.origin_rtp_ts)
    )


def encode_frame(frame: ChunkFrame) -> bytes:
    return _FRAME.pack(REC_FRAME, frame.pts, 1 if frame.keyframe else 0, len(frame.data)) + frame.data


def encode_sender_report(report: ChunkSenderReport) -> bytes:
    return _SR.pack(REC_SR, report.ntp_time, report.pts)


def encode_end(body: bytes, records: int) -> bytes:
    return _END.pack(REC_END, records, zlib.crc32(body))


def parse_chunk(data: bytes) -> Chunk:
    """Decode a whole chunk object and verify its trailer; raises ChunkFormatError when damaged."""
    if len(data) < 6 or data[:4] != MAGIC:
        raise ChunkFormatError("not a chunk object")
    if data[4] != VERSION:
        raise ChunkFormatError("unknown chunk version")
    codec_len = data[5]
    pos = 6 + codec_len
    if pos + _HEADER_TAIL.size > len(data):
        raise ChunkFormatError("chunk header truncated")
    codec = data[6:pos].decode("ascii", errors="replace")
    clock_rate, index, wallclock, origin_ts = _HEADER_TAIL.unpack_from(data, pos)
    pos += _HEADER_TAIL.size
    header = ChunkHeader(codec, clock_rate, index, wallclock, origin_ts)
    frames: list[ChunkFrame] = []
    reports: list[ChunkSenderReport] = []
    records = 0
    while pos < len(data):
        kind = data[pos]
        if kind == REC_FRAME:
            if pos + _FRAME.size > len(data):
                raise ChunkFormatError("frame record truncated")
            _, pts, flags, size = _FRAME.unpack_from(data, pos)
            start = pos + _FRAME.size
            if start + size > len(data):
                raise ChunkFormatError("frame data truncated")
            frames.append(ChunkFrame(pts, bool(flags & 1), data[start : start + size]))
            pos = start + size
        elif kind == REC_SR:
            if pos + _SR.size > len(data):
                raise ChunkFormatError("sender report record truncated")
            _, ntp, pts = _SR.unpack_from(data, pos)
            reports.append(ChunkSenderReport(ntp, pts))
            pos += _SR.size
        elif kind == REC_END:
            if pos + _END.size != len(data):
                raise ChunkFormatError("end record is not last")
            _, count, crc = _END.unpack_from(data, pos)
            if count != records or crc != zlib.crc32(data[:pos]):
                raise ChunkFormatError("chunk checksum mismatch")
            return Chunk(header, frames, reports)
        else:
            raise ChunkFormatError("unknown chunk record")
        records += 1
    raise ChunkFormatError("chunk has no end record")


@dataclass(slots=True)
class ChunkWriterStats:
    chunks_sealed: int = 0
    chunks_uploaded: int = 0
    bytes_uploaded: int = 0
    upload_failures: int = 0
    frames: int = 0


@dataclass(slots=True)
class _OpenChunk:
    parts: list[bytes] = field(default_factory=list)
    records: int = 0
    first_pts: int | None = None
    opened_at: float = 0.0


class ChunkWriter:
    """Buffers frames into chunks and uploads sealed chunks in order on a background task.

    ``add_frame``/``add_sender_report`` are synchronous (called from the datagram path); uploads retry with
    backoff until ``close()``'s deadline so a short object-store outage loses nothing.
    """

    def __init__(
        self,
        store: MediaStore,
        prefix: str,
        codec: str,
        clock_rate: int,
        *,
        chunk_seconds: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._prefix = prefix
        self._codec = codec
        self._clock_rate = clock_rate
        self._chunk_ticks = int(chunk_seconds * clock_rate)
        self._chunk_seconds = chunk_seconds
        self._clock = clock
        self._origin_wallclock_us = 0
        self._origin_rtp_ts = 0
        self._index = 0
        self._open: _OpenChunk | None = None
        self._queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.stats = ChunkWriterStats()

    def set_origin(self, wallclock_us: int, rtp_ts: int) -> None:
        """Record what pts 0 is (wallclock and RTP timestamp); written into every chunk header."""
        self._origin_wallclock_us = wallclock_us
        self._origin_rtp_ts = rtp_ts

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._upload_loop())

    def add_frame(self, pts: int, data: bytes, keyframe: bool) -> None:
        chunk = self._open
        if chunk is not None and chunk.first_pts is not None and pts - chunk.first_pts >= self._chunk_ticks:
            self.seal()
            chunk = None
        if chunk is None:
            chunk = self._open = _OpenChunk(opened_at=self._clock())
        if chunk.first_pts is None:
            chunk.first_pts = pts
        chunk.parts.append(encode_frame(ChunkFrame(pts, keyframe, data)))
        chunk.records += 1
        self.stats.frames += 1

    def add_sender_report(self, ntp_time: int, pts: int) -> None:
        if self._open is None:
            self._open = _OpenChunk(opened_at=self._clock())
        self._open.parts.append(encode_sender_report(ChunkSenderReport(ntp_time, pts)))
        self._open.records += 1

    def tick(self) -> None:
        """Seal the open chunk if it has been open for ``chunk_seconds`` (keeps the loss window bounded)."""
        chunk = self._open
        if chunk is not None and self._clock() - chunk.opened_at >= self._chunk_seconds:
            self.seal()

    def seal(self) -> None:
        """Close the open chunk (if it holds anything) and queue it for upload."""
        chunk, self._open = self._open, None
        if chunk is None or chunk.records == 0:
            return
        header = ChunkHeader(
            self._codec, self._clock_rate, self._index, self._origin_wallclock_us, self._origin_rtp_ts
        )
        body = encode_header(header) + b"".join(chunk.parts)
        data = body + encode_end(body, chunk.records)
        self._queue.put_nowait((chunk_key(self._prefix, self._index), data))
        self._index += 1
        self.stats.chunks_sealed += 1

    @property
    def pending_uploads(self) -> int:
        """Sealed chunks not yet stored (grows while the object store is unreachable)."""
        return self.stats.chunks_sealed - self.stats.chunks_uploaded

    async def close(self, upload_deadline: float | None = 120.0) -> None:
        """Seal the last chunk and wait until every sealed chunk is uploaded.

        Raises UploadIncompleteError if the store did not take them within ``upload_deadline`` seconds;
        what was uploaded stays recoverable.
        """
        self.seal()
        if self._task is None:
            self.start()
        self._queue.put_nowait(None)
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(task, upload_deadline)
        except TimeoutError:
            raise UploadIncompleteError("chunks still not uploaded at the close deadline") from None

    async def _upload_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            key, data = item
            delay = 0.1
            while True:
                try:
                    await self._store.put_bytes(key, data, CHUNK_CONTENT_TYPE)
                except Exception:  # the store's failures are not ours to classify: retry
                    self.stats.upload_failures += 1
                    logger.warning("chunk upload failed, retrying", extra={"key": key}, exc_info=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                self.stats.chunks_uploaded += 1
                self.stats.bytes_uploaded += len(data)
                break
