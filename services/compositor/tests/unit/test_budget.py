"""Chunk length and the memory-bounded render process count (services.compositor.budget)."""

from __future__ import annotations

import pytest

from services.compositor.budget import (
    PARENT_MB,
    chunk_seconds,
    encoder_threads,
    process_mb,
    render_processes,
)

VGA = 640 * 480
HD = 1280 * 720
FULL_HD = 1920 * 1080


@pytest.mark.parametrize(
    ("duration_s", "expected"),
    [
        (0.5, 10),  # short outputs: the 10 s floor (one chunk)
        (30, 10),
        (120, 15),  # ~8 chunks
        (600, 75),
        (3600, 120),  # an hour: capped at 2 min, 30 chunks
        (86400, 120),
    ],
)
def test_chunk_seconds_from_duration(duration_s: float, expected: int) -> None:
    assert chunk_seconds(duration_s) == expected


def test_process_estimate_grows_with_canvas_and_sources() -> None:
    vga_four = process_mb(VGA, [VGA] * 4)
    assert 65 < vga_four < 85  # measured ~60 MB PSS per process: the model errs on the safe side
    assert process_mb(HD, [VGA] * 4) > vga_four + 45  # x264 at 720p holds ~50 MB more
    assert process_mb(VGA, [VGA] * 9) > vga_four + 12  # five more sources, ~3 MB each


@pytest.mark.parametrize(
    ("requested", "chunks", "canvas", "sources", "budget", "expected"),
    [
        (2, 8, VGA, [VGA] * 4, 300, 2),  # fits: 52 + 2 x ~75
        (8, 8, VGA, [VGA] * 4, 300, 3),  # the budget caps it
        (2, 8, HD, [VGA] * 4, 300, 2),  # two 720p encoders just fit (measured 286 MB)
        (2, 8, FULL_HD, [VGA] * 4, 300, 1),  # two 1080p encoders would not
        (2, 8, FULL_HD, [VGA] * 4, 500, 2),  # a larger budget lets them
        (2, 8, FULL_HD, [VGA] * 9, 150, 1),  # never below one
        (4, 1, VGA, [VGA], 300, 1),  # no more processes than chunks
        (8, 8, FULL_HD, [VGA] * 9, 0, 8),  # 0: unlimited
    ],
)
def test_render_processes(
    requested: int, chunks: int, canvas: int, sources: list[int], budget: float, expected: int
) -> None:
    count = render_processes(
        requested=requested, chunks=chunks, canvas_pixels=canvas, source_pixels=sources, budget_mb=budget
    )
    assert count == expected
    if budget > 0 and count > 1:
        assert PARENT_MB + count * process_mb(canvas, sources) <= budget


@pytest.mark.parametrize(
    ("configured", "processes", "requested", "expected"),
    [
        (1, 2, 2, 1),  # chunks in parallel: single-threaded encoders
        (1, 1, 1, 1),  # one process asked for: stays single-threaded (same output as the parallel run)
        (1, 1, 4, 4),  # budget- or chunk-limited to one process: the encoder takes the cores
        (0, 1, 4, 0),  # an explicit setting is kept
        (3, 2, 2, 3),
    ],
)
def test_encoder_threads(configured: int, processes: int, requested: int, expected: int) -> None:
    assert encoder_threads(configured, processes, requested) == expected
