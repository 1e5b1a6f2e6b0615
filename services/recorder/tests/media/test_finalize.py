"""Finalize from a damaged chunk log: a corrupt chunk and a missing chunk become gaps, video resumes at the
next keyframe, everything else is kept exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import pytest

from services.recorder.chunks import ChunkWriter, chunk_key
from services.recorder.depacketize import Codec
from services.recorder.finalize import finalize
from services.recorder.tests.media.synthetic import encode_video, read_frame_number
from services.recorder.tests.unit.memory_store import FlakyStore

pytestmark = pytest.mark.media


async def test_corrupt_and_missing_chunks_become_gaps() -> None:
    frames = encode_video(Codec.VP8, 135, forced_keyframes=frozenset({8}))  # keyframes 0, 8, 68, 128
    store = FlakyStore()
    writer = ChunkWriter(store, "rec/RTdamaged", "VP8", 90000, chunk_seconds=1.0)
    writer.set_origin(1_700_000_000_000_000, 0)
    for f in frames:
        writer.add_frame(f.index * 3000, f.data, f.keyframe)
    await writer.close()
    assert await store.keys("rec/RTdamaged/chunks/") == [chunk_key("rec/RTdamaged", i) for i in range(5)]
    # Chunk 1 (frames 30-59) is corrupted in storage, chunk 3 (frames 90-119) never arrived.
    damaged = bytearray(store.read(chunk_key("rec/RTdamaged", 1)))
    damaged[len(damaged) // 2] ^= 0x55
    await store.put_bytes(chunk_key("rec/RTdamaged", 1), bytes(damaged), "application/octet-stream")
    await store.delete(chunk_key("rec/RTdamaged", 3))

    result = await finalize(store, "rec/RTdamaged")
    assert result.skipped_chunks == 1
    assert result.start_wallclock_us == 1_700_000_000_000_000
    expected = [*range(0, 30), *range(68, 90), *range(128, 135)]
    assert result.frames == len(expected)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.mkv"
        path.write_bytes(store.read(result.key))
        with av.open(str(path)) as container:
            decoded = [
                (read_frame_number(f.to_ndarray(format="rgb24")), round(float(f.time or 0) * 30))
                for f in container.decode(container.streams.video[0])
            ]
    assert [n for n, _ in decoded] == expected
    assert all(n == t for n, t in decoded), "timestamps keep the gaps"
    assert result.duration_ms == pytest.approx(4500, abs=1)
