"""Chunk planning for the parallel renderer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.compositor.media_io import VideoCodecSettings
from services.compositor.segments import ChunkTask, chunk_work, frame_time, plan_chunks, plan_runs
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


def _chunks(works_in_seconds: list[int]) -> list[ChunkTask]:
    """Consecutive 10 s chunks, each showing one source for the given number of seconds."""
    tasks = []
    for i, seconds in enumerate(works_in_seconds):
        start = i * 10 * 48000
        segment = Segment(start, start + seconds * 48000, start, (Placement(0, 0, 1),))
        tasks.append(replace(_task(i * 300, (i + 1) * 300, (segment,) if seconds else ()), index=i))
    return tasks


@pytest.mark.parametrize(
    ("seconds", "runs", "expected"),
    [
        ([10] * 8, 4, [[0, 1], [2, 3], [4, 5], [6, 7]]),  # equal chunks: equal runs
        ([10] * 12, 4, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]),
        ([0, 10, 10, 10], 2, [[0, 1], [2, 3]]),  # a light first chunk makes its run take one more
        ([10] * 3, 4, [[0], [1], [2]]),  # never more runs than chunks
        ([10], 2, [[0]]),
        ([], 2, []),
    ],
)
def test_plan_runs_cuts_consecutive_chunks_of_about_equal_work(
    seconds: list[int], runs: int, expected: list[list[int]]
) -> None:
    tasks = _chunks(seconds)
    planned = plan_runs(tasks, runs)
    assert [[task.index for task in run] for run in planned] == expected
    assert [task for run in planned for task in run] == tasks  # every chunk once, in time order
