"""The composition request's wire-level spec, shared by the Compositions and Composition Hooks APIs.

VideoLayout and Resolution parsing, validation and the normalized echo; Format; the "a layout or audio
sources" rule. Pure (no av, no numpy, no I/O). Error codes: 53640 (invalid VideoLayout) and 53641 (invalid
Resolution) are ours, because Twilio documents no create-time code for them (docs/compositions.md); 20001 for
the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Literal

CODE_INVALID_PARAMETER = 20001
CODE_INVALID_LAYOUT = 53640
CODE_INVALID_RESOLUTION = 53641


class RequestError(ValueError):
    """An invalid Compositions or Composition Hooks request: Twilio-style ``code``, HTTP ``status``."""

    status: int = 400

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class LayoutError(RequestError):
    """An invalid VideoLayout, Resolution or source selection, with its Twilio-style error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)


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


Format = Literal["mp4", "webm"]
FORMATS: tuple[Format, ...] = ("mp4", "webm")
DEFAULT_RESOLUTION = "640x480"
DEFAULT_FORMAT: Format = "webm"


def parse_format(text: str | None) -> Format:
    """``mp4`` or ``webm`` (default ``webm``, as Twilio's spec says). Raises LayoutError(20001)."""
    if text is None or text == "":
        return DEFAULT_FORMAT
    lowered = text.strip().lower()
    for candidate in FORMATS:
        if lowered == candidate:
            return candidate
    raise LayoutError(CODE_INVALID_PARAMETER, "Format must be mp4 or webm")


def require_sources(layout: VideoLayout, audio_sources: tuple[str, ...]) -> None:
    """Twilio's rule: a composition needs a VideoLayout with video_sources or some AudioSources."""
    if layout.is_empty and not audio_sources:
        raise LayoutError(
            CODE_INVALID_PARAMETER, "A VideoLayout with video_sources or AudioSources must be specified"
        )


CallbackMethod = Literal["GET", "POST"]


def parse_callback_method(value: str | None) -> CallbackMethod:
    """``GET`` or ``POST`` (default ``POST``, any case). Raises LayoutError(20001)."""
    if value is None or value == "":
        return "POST"
    upper = value.strip().upper()
    if upper == "GET":
        return "GET"
    if upper == "POST":
        return "POST"
    raise LayoutError(CODE_INVALID_PARAMETER, "StatusCallbackMethod must be GET or POST")


@dataclass(frozen=True)
class CompositionParams:
    """What to compose and where its callbacks go: the part Compositions and Composition Hooks share.

    ``video_layout`` is the normalized echo form (``{}`` for audio-only); ``resolution`` is ``"WxH"``.
    """

    video_layout: dict[str, dict[str, object]]
    audio_sources: tuple[str, ...]
    audio_sources_excluded: tuple[str, ...]
    resolution: str
    format: Format
    trim: bool
    status_callback: str | None
    status_callback_method: CallbackMethod

    def params(self) -> dict[str, Any]:
        """The shared fields by name, to build a subclass (``HookDefinition(**p.params(), …)``)."""
        return {f.name: getattr(self, f.name) for f in fields(CompositionParams)}


@dataclass(frozen=True)
class RawParams:
    """A request's composition parameters as sent (None: the parameter is absent)."""

    video_layout: object
    audio_sources: tuple[str, ...]
    audio_sources_excluded: tuple[str, ...]
    resolution: str | None
    format: str | None
    trim: bool | None
    status_callback: str | None
    status_callback_method: str | None


def define_params(raw: RawParams, *, allow_hd: bool = False) -> CompositionParams:
    """Validate a request's composition parameters with Twilio's defaults (640x480, webm, trim true, POST).

    ``allow_hd`` (Mixdown-only) raises the resolution cap to 1920x1080. Raises LayoutError with 20001,
    53640 (VideoLayout) or 53641 (Resolution).
    """
    method = parse_callback_method(raw.status_callback_method)
    canvas = parse_resolution(raw.resolution or DEFAULT_RESOLUTION, allow_hd=allow_hd)
    layout = parse_layout(raw.video_layout, canvas)
    fmt = parse_format(raw.format)
    require_sources(layout, raw.audio_sources)
    return CompositionParams(
        video_layout=normalized(layout),
        audio_sources=raw.audio_sources,
        audio_sources_excluded=raw.audio_sources_excluded,
        resolution=str(canvas),
        format=fmt,
        trim=True if raw.trim is None else raw.trim,
        status_callback=raw.status_callback,
        status_callback_method=method,
    )
