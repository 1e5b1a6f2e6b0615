"""Chunk planning for the parallel renderer."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.compositor.media_io import VideoCodecSettings
from services.compositor.segments import ChunkTask, chunk_work, frame_time, plan_chunks
from services.compositor.timeline import Placement, Segment


@pytest.mark.parametrize(
    ("total", "size", "expected"),
    [
        (0, 300, []),
        (1, 300, [(0, 1)]),
        (300, 300, [(0, 300)]),
        (301, 300, [(0, 301)]),  # a short tail joins the last chunk
        (450, 300, [(0, 300), (300, 450)]),  # a half-chunk tail stands alone
        (3600, 300, [(i * 300, (i + 1) * 300) for i in range(12)]),
        (3601, 300, [(i * 300, (i + 1) * 300) for i in range(11)] + [(3300, 3601)]),
    ],
)
def test_plan_chunks(total: int, size: int, expected: list[tuple[int, int]]) -> None:
    chunks = plan_chunks(total, size)
    assert chunks == expected
    assert sum(b - a for a, b in chunks) == total


@pytest.mark.parametrize(("fps", "ticks"), [(24, 2000), (25, 1920), (30, 1600), (60, 800)])
def test_frame_times_are_exact_ticks(fps: int, ticks: int) -> None:
    assert frame_time(1, fps) == ticks
    assert frame_time(fps, fps) == 48000


def _task(first: int, last: int, segments: tuple[Segment, ...]) -> ChunkTask:
    return ChunkTask(
        index=0,
        first_frame=first,
        last_frame=last,
        segments=segments,
        grids=(),
        sources={},
        codec=VideoCodecSettings(fmt="mp4", width=640, height=480, fps=30),
        interpolation="AREA",
        max_hold_ms=2000,
        out_path=Path("part.nut"),
    )


def test_chunk_work_counts_visible_sources_inside_the_chunk() -> None:
    one = (Placement(0, 0, 1),)
    two = (Placement(0, 0, 1), Placement(0, 1, 2))
    # output seconds 0-5: one source, 5-20: two sources (48000 ticks a second, 1600 a frame at 30 fps)
    segments = (Segment(0, 5 * 48000, 0, one), Segment(5 * 48000, 20 * 48000, 5 * 48000, two))
    early = chunk_work(_task(0, 300, segments))  # 0-10 s: 5 s of one source + 5 s of two
    late = chunk_work(_task(300, 600, segments))  # 10-20 s: 10 s of two sources
    empty = chunk_work(_task(600, 900, ()))  # only encoding
    assert late - early == 5 * 48000  # exactly five source-seconds more decoding
    assert empty < early < late
    assert empty == chunk_work(_task(0, 300, ()))
