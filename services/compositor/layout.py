"""Integer tile geometry of a VideoLayout: grid sizing, cells, fit-inside scaling, presets.

Pure integer arithmetic (no av, no numpy). Every rectangle this module returns has even x, y, width and height
so tiles map exactly onto YUV 4:2:0 chroma samples. The request-level types and parsing (Resolution, Region,
VideoLayout, parse_layout, …) are shared with the API services in libs.composition.spec and re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.composition.spec import (
    CODE_INVALID_LAYOUT,
    MAX_GRID,
    MIN_SIDE,
    Rect,
    Region,
    Resolution,
    Reuse,
    VideoLayout,
    normalized,
    parse_layout,
    parse_resolution,
)
from services.compositor.errors import LayoutError

__all__ = [
    "MAX_GRID",
    "MIN_SIDE",
    "Grid",
    "Rect",
    "Region",
    "Resolution",
    "Reuse",
    "VideoLayout",
    "fit_inside",
    "grid_shape",
    "normalized",
    "parse_layout",
    "parse_resolution",
    "preset",
    "region_grid",
]


@dataclass(frozen=True, slots=True)
class Grid:
    rows: int
    cols: int
    cells: tuple[Rect, ...]  # every cell, index = row * cols + col
    usable: tuple[int, ...]  # cell indices not excluded, ascending


def grid_shape(n: int, max_columns: int | None = None, max_rows: int | None = None) -> tuple[int, int]:
    """(rows, cols) for `n` cells (concurrent sources + excluded cells): as square as possible with columns
    allowed to exceed rows by one, then clamped by max_columns / max_rows (reference §11.3)."""
    n = max(n, 1)
    c = 1
    while c * c < n:
        c += 1
    rows, cols = (c - 1, c) if c * (c - 1) >= n else (c, c)
    if max_columns is not None and max_rows is not None:
        return min(rows, max_rows), min(cols, max_columns)
    if max_columns is not None:
        cols = min(cols, max_columns)
        return -(-n // cols), cols
    if max_rows is not None:
        rows = min(rows, max_rows)
        return rows, -(-n // rows)
    return rows, cols


def _even_down(value: int) -> int:
    return value - (value % 2)


def _even_round(value_num: int, value_den: int) -> int:
    """round(num/den) to the nearest even integer (ties up), at least 2."""
    return max(2, 2 * ((value_num + value_den) // (2 * value_den)))


def region_grid(region: Region, canvas: Resolution, concurrent: int) -> Grid:
    """The fixed grid of a region given the peak number of its concurrently active sources.

    Cells are region_w // cols by region_h // rows, rounded down to even sizes, positioned from the region's
    origin rounded down to even; excluded indices beyond the grid are ignored."""
    rows, cols = grid_shape(concurrent + len(region.cells_excluded), region.max_columns, region.max_rows)
    rect = region.rect(canvas)
    cell_w = max(2, _even_down(rect.width // cols))
    cell_h = max(2, _even_down(rect.height // rows))
    x0, y0 = _even_down(rect.x), _even_down(rect.y)
    cells = tuple(
        Rect(x0 + (i % cols) * cell_w, y0 + (i // cols) * cell_h, cell_w, cell_h) for i in range(rows * cols)
    )
    excluded = set(region.cells_excluded)
    usable = tuple(i for i in range(rows * cols) if i not in excluded)
    return Grid(rows, cols, cells, usable)


def fit_inside(cell: Rect, src_width: int, src_height: int) -> Rect:
    """The largest even-sized rectangle of the source's aspect inside `cell`, centred (letterbox/pillarbox).

    Scale = min(cell_w/src_w, cell_h/src_h); the other side is rounded to the nearest even pixel, so the
    aspect is kept within one pixel."""
    if src_width <= 0 or src_height <= 0:
        return cell
    if src_width * cell.height <= src_height * cell.width:
        height = cell.height
        width = min(cell.width, _even_round(src_width * cell.height, src_height))
    else:
        width = cell.width
        height = min(cell.height, _even_round(src_height * cell.width, src_width))
    x = cell.x + _even_down((cell.width - width) // 2)
    y = cell.y + _even_down((cell.height - height) // 2)
    return Rect(x, y, width, height)


def preset(name: str, canvas: Resolution) -> dict[str, object]:
    """Named layouts for the CLI: `grid` (everyone in one auto grid) and `speaker` (the earliest video fills
    the canvas, the most recent one shows in a bottom-right picture-in-picture a quarter of the canvas wide).
    Raises LayoutError for unknown names."""
    if name == "grid":
        return {"grid": {"video_sources": ["*"]}}
    if name == "speaker":
        pip_w = _even_down(canvas.width // 4)
        pip_h = _even_down(canvas.height // 4)
        margin = _even_down(max(MIN_SIDE, canvas.width // 40))
        return {
            "main": {"z_pos": 1, "max_rows": 1, "max_columns": 1, "video_sources": ["*"]},
            "pip": {
                "z_pos": 2,
                "x_pos": canvas.width - pip_w - margin,
                "y_pos": canvas.height - pip_h - margin,
                "width": pip_w,
                "height": pip_h,
                "max_rows": 1,
                "max_columns": 1,
                "reuse": "show_newest",
                "video_sources": ["*"],
            },
        }
    raise LayoutError(CODE_INVALID_LAYOUT, f"unknown layout preset '{name}' (known: grid, speaker)")
