"""VideoLayout and Resolution: parsing, validation, the normalized echo, and integer tile geometry.

Pure integer arithmetic (no av, no numpy). Every rectangle this module returns has even x, y, width and height
so tiles map exactly onto YUV 4:2:0 chroma samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from services.compositor.errors import CODE_INVALID_LAYOUT, CODE_INVALID_RESOLUTION, LayoutError

MIN_SIDE = 16
MAX_SIDE = 1280
MAX_PIXELS = 921_600
HD_MAX_WIDTH = 1920
HD_MAX_HEIGHT = 1080
Z_MIN, Z_MAX = -99, 99
MAX_GRID = 1000

_INT_KEYS = ("x_pos", "y_pos", "z_pos", "width", "height", "max_columns", "max_rows")
_KNOWN_KEYS = frozenset(
    (*_INT_KEYS, "cells_excluded", "reuse", "video_sources", "video_sources_excluded"),
)


class Reuse(StrEnum):
    NONE = "none"
    SHOW_OLDEST = "show_oldest"
    SHOW_NEWEST = "show_newest"


@dataclass(frozen=True, slots=True)
class Resolution:
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    def contains(self, other: Rect) -> bool:
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )

    def overlaps(self, other: Rect) -> bool:
        return (
            self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom
        )


@dataclass(frozen=True, slots=True)
class Region:
    """One region as requested; `width`/`height`/`max_*` stay None when omitted (the echo shows null)."""

    name: str
    video_sources: tuple[str, ...]
    video_sources_excluded: tuple[str, ...] = ()
    x_pos: int = 0
    y_pos: int = 0
    z_pos: int = 0
    width: int | None = None
    height: int | None = None
    max_columns: int | None = None
    max_rows: int | None = None
    cells_excluded: tuple[int, ...] = ()
    reuse: Reuse = Reuse.SHOW_OLDEST

    def rect(self, canvas: Resolution) -> Rect:
        """The region's rectangle on the canvas; an omitted size extends to the canvas edge."""
        width = self.width if self.width is not None else canvas.width - self.x_pos
        height = self.height if self.height is not None else canvas.height - self.y_pos
        return Rect(self.x_pos, self.y_pos, width, height)


@dataclass(frozen=True, slots=True)
class VideoLayout:
    """Regions in request order (the echo keeps it); `paint_order` gives the drawing order."""

    regions: tuple[Region, ...]

    @property
    def paint_order(self) -> tuple[int, ...]:
        """Region indices by increasing z_pos, request order among equals (stable)."""
        return tuple(sorted(range(len(self.regions)), key=lambda i: (self.regions[i].z_pos, i)))

    @property
    def is_empty(self) -> bool:
        return not self.regions


@dataclass(frozen=True, slots=True)
class Grid:
    rows: int
    cols: int
    cells: tuple[Rect, ...]  # every cell, index = row * cols + col
    usable: tuple[int, ...]  # cell indices not excluded, ascending


def parse_resolution(text: str, *, allow_hd: bool = False) -> Resolution:
    """Parse "WxH". Twilio's limits: 16..1280 per side and at most 921,600 pixels; with `allow_hd` up to
    1920x1080. Both sides must be even (4:2:0). Raises LayoutError(53641)."""
    parts = text.strip().lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise LayoutError(CODE_INVALID_RESOLUTION, "Resolution must look like 640x480")
    width, height = int(parts[0]), int(parts[1])
    if width < MIN_SIDE or height < MIN_SIDE:
        raise LayoutError(CODE_INVALID_RESOLUTION, "Resolution sides must be at least 16 pixels")
    if allow_hd:
        if width > HD_MAX_WIDTH or height > HD_MAX_HEIGHT or width * height > HD_MAX_WIDTH * HD_MAX_HEIGHT:
            raise LayoutError(CODE_INVALID_RESOLUTION, "Resolution must be at most 1920x1080")
    elif width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise LayoutError(
            CODE_INVALID_RESOLUTION, "Resolution must be at most 1280 pixels per side and 921600 pixels"
        )
    if width % 2 or height % 2:
        raise LayoutError(CODE_INVALID_RESOLUTION, "Resolution sides must be even")
    return Resolution(width, height)


def _int_field(name: str, key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayoutError(CODE_INVALID_LAYOUT, f"VideoLayout region '{name}': {key} must be an integer")
    if not low <= value <= high:
        raise LayoutError(CODE_INVALID_LAYOUT, f"VideoLayout region '{name}': {key} must be in {low}..{high}")
    return value


def _str_list(name: str, key: str, value: object, *, required: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LayoutError(
            CODE_INVALID_LAYOUT, f"VideoLayout region '{name}': {key} must be a list of non-empty strings"
        )
    if required and not value:
        raise LayoutError(CODE_INVALID_LAYOUT, f"VideoLayout region '{name}': {key} must not be empty")
    return tuple(value)


def _parse_region(name: str, spec: object, canvas: Resolution) -> Region:
    if not isinstance(spec, dict):
        raise LayoutError(CODE_INVALID_LAYOUT, f"VideoLayout region '{name}' must be a JSON object")
    unknown = sorted(set(spec) - _KNOWN_KEYS)
    if unknown:
        raise LayoutError(CODE_INVALID_LAYOUT, f"VideoLayout region '{name}': unknown property {unknown[0]}")
    if "video_sources" not in spec:
        raise LayoutError(CODE_INVALID_LAYOUT, f"VideoLayout region '{name}': video_sources is required")
    limits = {
        "x_pos": (0, canvas.width - MIN_SIDE),
        "y_pos": (0, canvas.height - MIN_SIDE),
        "z_pos": (Z_MIN, Z_MAX),
        "width": (MIN_SIDE, canvas.width),
        "height": (MIN_SIDE, canvas.height),
        "max_columns": (1, MAX_GRID),
        "max_rows": (1, MAX_GRID),
    }
    ints: dict[str, int | None] = {}
    for key in _INT_KEYS:
        raw = spec.get(key)
        ints[key] = None if raw is None else _int_field(name, key, raw, *limits[key])
    excluded_raw = spec.get("cells_excluded", [])
    if not isinstance(excluded_raw, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c < MAX_GRID * MAX_GRID for c in excluded_raw
    ):
        raise LayoutError(
            CODE_INVALID_LAYOUT, f"VideoLayout region '{name}': cells_excluded must be non-negative integers"
        )
    reuse_raw = spec.get("reuse", Reuse.SHOW_OLDEST.value)
    if reuse_raw not in {r.value for r in Reuse}:
        raise LayoutError(
            CODE_INVALID_LAYOUT,
            f"VideoLayout region '{name}': reuse must be none, show_oldest or show_newest",
        )
    region = Region(
        name=name,
        video_sources=_str_list(name, "video_sources", spec["video_sources"], required=True),
        video_sources_excluded=_str_list(
            name, "video_sources_excluded", spec.get("video_sources_excluded", []), required=False
        ),
        x_pos=ints["x_pos"] or 0,
        y_pos=ints["y_pos"] or 0,
        z_pos=ints["z_pos"] or 0,
        width=ints["width"],
        height=ints["height"],
        max_columns=ints["max_columns"],
        max_rows=ints["max_rows"],
        cells_excluded=tuple(sorted(set(excluded_raw))),
        reuse=Reuse(reuse_raw),
    )
    rect = region.rect(canvas)
    if (
        rect.width < MIN_SIDE
        or rect.height < MIN_SIDE
        or not Rect(0, 0, canvas.width, canvas.height).contains(rect)
    ):
        raise LayoutError(
            CODE_INVALID_LAYOUT, f"VideoLayout region '{name}' does not fit the {canvas} canvas"
        )
    return region


def parse_layout(raw: object, canvas: Resolution) -> VideoLayout:
    """Validate a VideoLayout (a dict, or its JSON text) against the canvas. `{}`/None means audio-only.

    Raises LayoutError(53640) naming the offending region and property."""
    if raw is None:
        return VideoLayout(())
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise LayoutError(CODE_INVALID_LAYOUT, "VideoLayout is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise LayoutError(CODE_INVALID_LAYOUT, "VideoLayout must be a JSON object of regions")
    regions = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not name:
            raise LayoutError(CODE_INVALID_LAYOUT, "VideoLayout region names must be non-empty strings")
        regions.append(_parse_region(name, spec, canvas))
    return VideoLayout(tuple(regions))


def normalized(layout: VideoLayout) -> dict[str, dict[str, object]]:
    """The echo form returned by the API: every region with every key; omitted sizes stay null."""
    return {
        r.name: {
            "x_pos": r.x_pos,
            "y_pos": r.y_pos,
            "z_pos": r.z_pos,
            "width": r.width,
            "height": r.height,
            "max_columns": r.max_columns,
            "max_rows": r.max_rows,
            "cells_excluded": list(r.cells_excluded),
            "reuse": r.reuse.value,
            "video_sources": list(r.video_sources),
            "video_sources_excluded": list(r.video_sources_excluded),
        }
        for r in layout.regions
    }


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
