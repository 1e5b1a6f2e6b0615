"""Chunk planning for the parallel renderer."""

from __future__ import annotations

import pytest

from services.compositor.segments import frame_time, plan_chunks


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
