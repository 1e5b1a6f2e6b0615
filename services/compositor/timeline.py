"""The composition timeline: source intervals, source selection, cell assignment over time, trim, segments.

Pure. All times are integer ticks of TIME_BASE (1/48000 s): a millisecond is 48 ticks, an audio sample one
tick and a 30 fps (or 25, 24, 60 fps) frame a whole number of ticks, so nothing is rounded through floats.
Room time 0 is the start of the earliest recording (offset - min(offset)).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from services.compositor.layout import Grid, Resolution, Reuse, VideoLayout, region_grid

TIME_BASE = Fraction(1, 48000)
TICKS_PER_SECOND = 48000
TICKS_PER_MS = 48

_SID = re.compile(r"^(MT|RT|PA)[0-9a-fA-F]{32}$")


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """One recording on the room timeline: [start, end) in ticks."""

    key: int  # index into the composition's source list
    kind: str  # "audio" | "video"
    track_name: str
    sids: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Placement:
    """Source `key` is visible in cell `cell` of region `region` (index into VideoLayout.regions)."""

    region: int
    cell: int
    key: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A span of OUTPUT time [start, end) in which the visible placements are constant.

    `room_start` is the room time shown at `start`: room time = t - start + room_start."""

    start: int
    end: int
    room_start: int
    placements: tuple[Placement, ...]

    @property
    def duration(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the renderer needs, in output time."""

    duration: int
    kept: tuple[tuple[int, int], ...]  # kept room intervals, in order
    grids: tuple[Grid, ...]  # one per layout region
    segments: tuple[Segment, ...]  # cover [0, duration) exactly, in order
    video_keys: tuple[int, ...]  # every selected video source
    audio_keys: tuple[int, ...]  # every selected audio source
    shift: dict[int, int]  # per selected source: output time = room time - shift[key]


def pattern_matches(pattern: str, span: SourceSpan) -> bool:
    """True when `pattern` is one of the span's MT/RT/PA SIDs or a `*` glob matching its track name."""
    if _SID.match(pattern):
        return pattern in span.sids
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, span.track_name, flags=re.DOTALL) is not None


def select(
    spans: list[SourceSpan], kind: str, include: tuple[str, ...], exclude: tuple[str, ...]
) -> list[SourceSpan]:
    """Spans of `kind` matching any include pattern and no exclude pattern, ordered by (start, key)."""
    chosen = [
        s
        for s in spans
        if s.kind == kind
        and any(pattern_matches(p, s) for p in include)
        and not any(pattern_matches(p, s) for p in exclude)
    ]
    return sorted(chosen, key=lambda s: (s.start, s.key))


def peak_concurrency(spans: list[SourceSpan]) -> int:
    """The largest number of spans active at one instant (ends are exclusive)."""
    events = sorted([(s.start, 1) for s in spans] + [(s.end, -1) for s in spans])
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


@dataclass(slots=True)
class _Cell:
    members: list[SourceSpan]
    busy_until: int


def assign_cells(
    spans: list[SourceSpan], usable: tuple[int, ...], reuse: Reuse
) -> dict[int, list[SourceSpan]]:
    """Map each usable cell index to the spans assigned to it (reference §11.5).

    Sources are taken by start time; a source gets the lowest free cell (a cell is free when everything
    assigned to it has ended). When no cell is free: `none` hides the source for good, the sharing modes queue
    it on the cell whose current sources end soonest (lowest index on ties)."""
    cells = {index: _Cell([], 0) for index in usable}
    for span in sorted(spans, key=lambda s: (s.start, s.key)):
        if span.end <= span.start or not cells:
            continue
        free = [i for i in usable if cells[i].busy_until <= span.start]
        if free:
            target = free[0]
        elif reuse is Reuse.NONE:
            continue
        else:
            target = min(usable, key=lambda i: (cells[i].busy_until, i))
        cell = cells[target]
        cell.members.append(span)
        cell.busy_until = max(cell.busy_until, span.end)
    return {index: cell.members for index, cell in cells.items()}


def visible_at(members: list[SourceSpan], t: int, reuse: Reuse) -> SourceSpan | None:
    """Which of a cell's spans shows at room time t: the earliest-started (show_oldest/none) or the
    latest-started (show_newest) among those active."""
    active = [s for s in members if s.start <= t < s.end]
    if not active:
        return None
    if reuse is Reuse.SHOW_NEWEST:
        return max(active, key=lambda s: (s.start, s.key))
    return min(active, key=lambda s: (s.start, s.key))


def kept_intervals(spans: list[SourceSpan], *, trim: bool) -> tuple[tuple[int, int], ...]:
    """Room intervals that make the output. trim=True: the union of the selected spans (lead-in and gaps
    when nothing selected is active are cut). trim=False: [0, end of the last selected span)."""
    live = sorted((s.start, s.end) for s in spans if s.end > s.start)
    if not live:
        return ()
    if not trim:
        return ((0, max(end for _, end in live)),)
    merged: list[tuple[int, int]] = []
    for start, end in live:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def room_to_output(kept: tuple[tuple[int, int], ...], t: int) -> int:
    """Map a room time inside a kept interval (or at its end) to output time."""
    elapsed = 0
    for start, end in kept:
        if start <= t <= end:
            return elapsed + t - start
        elapsed += end - start
    raise ValueError("room time outside the kept intervals")


def plan(
    spans: list[SourceSpan],
    layout: VideoLayout,
    canvas: Resolution,
    audio_sources: tuple[str, ...],
    audio_excluded: tuple[str, ...],
    *,
    trim: bool,
) -> Plan:
    """Resolve sources, grids, cell assignments and trim into output-time segments.

    Invariant: segments are contiguous, start at 0 and their durations sum to `duration` (the total length
    of the kept intervals). The result has no sources at all when nothing matched (caller raises 53630)."""
    region_spans: list[list[SourceSpan]] = [
        select(spans, "video", r.video_sources, r.video_sources_excluded) for r in layout.regions
    ]
    audio = select(spans, "audio", audio_sources, audio_excluded) if audio_sources else []
    video_by_key = {s.key: s for group in region_spans for s in group}
    selected = list(video_by_key.values()) + audio
    kept = kept_intervals(selected, trim=trim)
    grids = tuple(
        region_grid(region, canvas, peak_concurrency(group))
        for region, group in zip(layout.regions, region_spans, strict=True)
    )
    assignments = [
        assign_cells(group, grid.usable, region.reuse)
        for region, group, grid in zip(layout.regions, region_spans, grids, strict=True)
    ]
    segments: list[Segment] = []
    out = 0
    for k_start, k_end in kept:
        cuts = {k_start, k_end}
        for s in video_by_key.values():
            cuts.update(t for t in (s.start, s.end) if k_start < t < k_end)
        bounds = sorted(cuts)
        for a, b in zip(bounds, bounds[1:], strict=False):
            placements = tuple(  # in paint order: regions by z, cells by index
                Placement(r_index, cell, shown.key)
                for r_index in layout.paint_order
                for cell, members in sorted(assignments[r_index].items())
                if (shown := visible_at(members, a, layout.regions[r_index].reuse)) is not None
            )
            start = out + a - k_start
            previous = segments[-1] if segments else None
            if (
                previous is not None
                and previous.placements == placements
                and previous.end == start
                and previous.room_start + previous.duration == a
            ):
                segments[-1] = Segment(previous.start, start + b - a, previous.room_start, placements)
            else:
                segments.append(Segment(start, start + b - a, a, placements))
        out += k_end - k_start
    shift = {s.key: s.start - room_to_output(kept, s.start) for s in selected}
    return Plan(
        duration=out,
        kept=kept,
        grids=grids,
        segments=tuple(segments),
        video_keys=tuple(sorted(video_by_key)),
        audio_keys=tuple(s.key for s in audio),
        shift=shift,
    )


def ms_to_ticks(ms: int) -> int:
    return ms * TICKS_PER_MS
