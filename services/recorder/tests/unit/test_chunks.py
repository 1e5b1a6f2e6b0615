import asyncio

import pytest

from services.recorder.chunks import (
    CHUNK_CONTENT_TYPE,
    ChunkFrame,
    ChunkWriter,
    chunk_key,
    parse_chunk,
)
from services.recorder.errors import ChunkFormatError, UploadIncompleteError
from services.recorder.tests.unit.memory_store import FlakyStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_chunk_round_trip_and_cut_every_two_seconds() -> None:
    store = FlakyStore()
    clock = FakeClock()
    writer = ChunkWriter(store, "rec/RT1", "VP8", 90000, chunk_seconds=2.0, clock=clock)
    writer.set_origin(1_700_000_000_000_000, 12345)
    writer.start()
    frames = [ChunkFrame(i * 3000, i % 30 == 0, bytes([i % 256]) * (i + 1)) for i in range(150)]  # 5 s
    for f in frames:
        writer.add_frame(f.pts, f.data, f.keyframe)
    writer.add_sender_report(0xABCDEF, 449_000)
    await writer.close()
    keys = await store.keys()
    assert keys == [chunk_key("rec/RT1", i) for i in range(3)]
    info = await store.stat(keys[0])
    assert info is not None and info.content_type == CHUNK_CONTENT_TYPE
    decoded = [parse_chunk(store.read(k)) for k in keys]
    assert [c.header.index for c in decoded] == [0, 1, 2]
    assert all(c.header.codec == "VP8" and c.header.clock_rate == 90000 for c in decoded)
    assert decoded[0].header.origin_wallclock_us == 1_700_000_000_000_000
    assert decoded[0].header.origin_rtp_ts == 12345
    assert [len(c.frames) for c in decoded] == [60, 60, 30]
    assert [f for c in decoded for f in c.frames] == frames
    assert decoded[2].sender_reports[0].ntp_time == 0xABCDEF
    assert decoded[2].sender_reports[0].pts == 449_000
    assert writer.stats.chunks_uploaded == 3


async def test_wallclock_tick_seals_a_stalled_chunk() -> None:
    store = FlakyStore()
    clock = FakeClock()
    writer = ChunkWriter(store, "p", "OPUS", 48000, chunk_seconds=2.0, clock=clock)
    writer.start()
    writer.add_frame(0, b"\xf8x", True)
    writer.tick()
    await asyncio.sleep(0)
    assert await store.keys() == []
    clock.now = 2.5
    writer.tick()
    await asyncio.sleep(0.01)
    assert await store.keys() == [chunk_key("p", 0)]
    await writer.close()


async def test_upload_retries_after_store_failure() -> None:
    store = FlakyStore()
    store.fail_puts = 2
    writer = ChunkWriter(store, "p", "OPUS", 48000)
    writer.start()
    writer.add_frame(0, b"\xf8x", True)
    await writer.close()
    assert await store.keys() == [chunk_key("p", 0)]
    assert writer.stats.upload_failures == 2


async def test_damaged_chunks_are_rejected() -> None:
    store = FlakyStore()
    writer = ChunkWriter(store, "p", "OPUS", 48000)
    writer.add_frame(0, b"\xf8abc", True)
    writer.add_frame(960, b"\xf8def", True)
    await writer.close()
    data = store.read(chunk_key("p", 0))
    assert len(parse_chunk(data).frames) == 2
    with pytest.raises(ChunkFormatError):
        parse_chunk(data[:-3])
    flipped = bytearray(data)
    flipped[-15] ^= 0xFF
    with pytest.raises(ChunkFormatError):
        parse_chunk(bytes(flipped))
    with pytest.raises(ChunkFormatError):
        parse_chunk(b"NOPE" + data[4:])


async def test_close_gives_up_after_deadline_when_store_is_down() -> None:
    store = FlakyStore()
    store.fail_puts = 1_000_000
    writer = ChunkWriter(store, "p", "OPUS", 48000)
    writer.add_frame(0, b"\xf8x", True)
    with pytest.raises(UploadIncompleteError):
        await writer.close(upload_deadline=0.3)
    assert writer.pending_uploads == 1
    assert writer.stats.upload_failures >= 2
