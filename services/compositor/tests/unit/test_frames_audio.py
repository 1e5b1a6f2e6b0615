"""YUV canvas painting and the audio mixer (numpy only, no media files)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from services.compositor.audio import KNEE, mix, soft_limit
from services.compositor.frames import BLACK_C, BLACK_Y, Canvas
from services.compositor.layout import Rect, fit_inside


def planes(w: int, h: int, y: int, u: int, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.full((h, w), y, np.uint8),
        np.full((h // 2, w // 2), u, np.uint8),
        np.full((h // 2, w // 2), v, np.uint8),
    )


def test_canvas_starts_black_and_letterboxes() -> None:
    canvas = Canvas.allocate(64, 48)
    assert (canvas.y == BLACK_Y).all() and (canvas.u == BLACK_C).all() and (canvas.v == BLACK_C).all()
    canvas.y.fill(200)  # dirty it: bars must be repainted black
    cell = Rect(0, 0, 32, 24)
    content = fit_inside(cell, 32, 12)  # 8:3 source -> 32x12 centred at y 6
    assert content == Rect(0, 6, 32, 12)
    canvas.paint_tile(cell, content, planes(32, 12, 100, 60, 70))
    assert (canvas.y[6:18, 0:32] == 100).all()
    assert (canvas.y[0:6, 0:32] == BLACK_Y).all() and (canvas.y[18:24, 0:32] == BLACK_Y).all()
    assert (canvas.u[3:9, 0:16] == 60).all() and (canvas.v[3:9, 0:16] == 70).all()
    assert (canvas.u[0:3, 0:16] == BLACK_C).all()
    assert (canvas.y[:, 32:] == 200).all()  # outside the cell untouched


def test_paint_order_is_z_order() -> None:
    canvas = Canvas.allocate(32, 32)
    canvas.paint_tile(Rect(0, 0, 32, 32), Rect(0, 0, 32, 32), planes(32, 32, 50, 50, 50))
    canvas.paint_tile(Rect(8, 8, 8, 8), Rect(8, 8, 8, 8), planes(8, 8, 150, 150, 150))
    assert canvas.y[10, 10] == 150 and canvas.y[2, 2] == 50
    canvas.paint_tile(Rect(8, 8, 8, 8), None, None)  # a cell without a picture is black
    assert canvas.y[10, 10] == BLACK_Y and canvas.u[5, 5] == BLACK_C


def test_canvas_rejects_odd_planes() -> None:
    with pytest.raises(ValueError):
        Canvas(np.zeros((5, 4), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))


def blocks(*items: tuple[int, list[float]]) -> Iterator[tuple[int, np.ndarray]]:
    for position, values in items:
        yield position, np.array(values, np.float32)


def test_mix_positions_sums_and_leaves_gaps_silent() -> None:
    out = np.concatenate(
        list(mix([blocks((1, [0.1, 0.1]), (6, [0.2])), blocks((2, [0.3, 0.3, 0.3]))], total=8, block=3))
    )
    np.testing.assert_allclose(out, [0, 0.1, 0.4, 0.3, 0.3, 0, 0.2, 0], atol=1e-7)


def test_mix_drops_samples_outside_the_output() -> None:
    out = np.concatenate(list(mix([blocks((-2, [1.0, 1.0, 0.5]), (3, [0.25, 0.25]))], total=4, block=2)))
    np.testing.assert_allclose(out, [0.5, 0, 0, 0.25], atol=1e-7)


def test_soft_limiter_only_when_clipping() -> None:
    quiet = np.array([0.95, -0.95, 0.5], np.float32)
    assert np.array_equal(soft_limit(quiet.copy()), quiet)  # no sample over full scale: untouched
    loud = np.array([1.8, -1.4, 0.95, 0.5, KNEE], np.float32)
    limited = soft_limit(loud.copy())
    assert (np.abs(limited) <= 1.0).all()
    assert limited[3] == 0.5 and limited[4] == KNEE  # below the knee: unchanged
    assert limited[0] > limited[2] > KNEE  # monotonic above the knee
    assert limited[1] < 0
