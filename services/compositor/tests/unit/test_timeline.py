"""Source matching, reuse semantics, trim and segments (reference §11.2, §11.5, §11.6, §12)."""

from __future__ import annotations

import pytest

from services.compositor.layout import Resolution, Reuse, parse_layout
from services.compositor.timeline import (
    TICKS_PER_SECOND,
    Placement,
    SourceSpan,
    assign_cells,
    kept_intervals,
    pattern_matches,
    plan,
    room_to_output,
    select,
)

S = TICKS_PER_SECOND
HD = Resolution(1280, 720)
VGA = Resolution(640, 480)
MT = "MT" + "a" * 32
RT = "RT" + "b" * 32
PA = "PA" + "c" * 32


def span(
    key: int, start_s: float, end_s: float, name: str = "", kind: str = "video", sids: tuple[str, ...] = ()
) -> SourceSpan:
    return SourceSpan(key, kind, name or f"t{key}", sids, int(start_s * S), int(end_s * S))


@pytest.mark.parametrize(
    ("pattern", "name", "sids", "expected"),
    [
        ("*", "anything", (), True),
        ("student*", "student", (), True),
        ("student*", "studentTeam", (), True),
        ("student*", "teacher", (), False),
        ("*-cam", "alice-cam", (), True),
        ("a*c*e", "abcde", (), True),
        ("a.c", "abc", (), False),  # only * is special
        ("cam", "cam2", (), False),
        (MT, "x", (MT, RT, PA), True),
        (RT, "x", (MT, RT, PA), True),
        (PA, "x", (MT, RT, PA), True),
        (PA, PA, (), False),  # a SID matches SIDs, never the name
        ("MT" + "0" * 32, "x", (MT,), False),
    ],
)
def test_pattern_matching(pattern: str, name: str, sids: tuple[str, ...], expected: bool) -> None:
    assert pattern_matches(pattern, span(0, 0, 1, name, sids=sids)) is expected


def test_select_applies_exclusions_and_kind() -> None:
    spans = [span(0, 1, 2, "teacher-screen"), span(1, 0, 2, "alice"), span(2, 0, 2, "alice", kind="audio")]
    chosen = select(spans, "video", ("*",), ("teacher-*",))
    assert [s.key for s in chosen] == [1]
    assert [s.key for s in select(spans, "audio", ("*",), ())] == [2]


EXAMPLE_G = [span(0, 0, 20, "C"), span(1, 2, 12, "A"), span(2, 5, 15, "B")]


@pytest.mark.parametrize(
    ("reuse", "expected"),
    [
        # (cell, key, from_s, to_s) visible stretches
        (Reuse.SHOW_OLDEST, [(0, 0, 0, 20), (1, 1, 2, 12), (1, 2, 12, 15)]),
        (Reuse.SHOW_NEWEST, [(0, 0, 0, 20), (1, 1, 2, 5), (1, 2, 5, 15)]),
        (Reuse.NONE, [(0, 0, 0, 20), (1, 1, 2, 12)]),
    ],
)
def test_example_g_reuse_timeline(reuse: Reuse, expected: list[tuple[int, int, int, int]]) -> None:
    layout = parse_layout(
        {"r": {"max_rows": 1, "max_columns": 2, "reuse": reuse.value, "video_sources": ["*"]}}, VGA
    )
    result = plan(EXAMPLE_G, layout, VGA, (), (), trim=True)
    assert (result.grids[0].rows, result.grids[0].cols) == (1, 2)
    stretches: dict[tuple[int, int], list[int]] = {}
    for seg in result.segments:
        for p in seg.placements:
            lo_hi = stretches.setdefault((p.cell, p.key), [seg.start, seg.end])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], seg.start), max(lo_hi[1], seg.end)
    assert sorted((c, k, lo // S, hi // S) for (c, k), (lo, hi) in stretches.items()) == sorted(expected)


def test_example_f_single_cell_sessions() -> None:
    sessions = [span(0, 0, 10, "teacher-video-sess-1"), span(1, 6, 20, "teacher-video-sess-2")]
    for reuse, shown_at_8 in ((Reuse.SHOW_NEWEST, 1), (Reuse.SHOW_OLDEST, 0), (Reuse.NONE, 0)):
        layout = parse_layout(
            {
                "seq": {
                    "max_rows": 1,
                    "max_columns": 1,
                    "reuse": reuse.value,
                    "video_sources": ["teacher-video-sess-*"],
                }
            },
            VGA,
        )
        result = plan(sessions, layout, VGA, (), (), trim=True)
        at_8 = next(s for s in result.segments if s.start <= 8 * S < s.end)
        assert at_8.placements == (Placement(0, 0, shown_at_8),)
        at_15 = next(s for s in result.segments if s.start <= 15 * S < s.end)
        assert at_15.placements == (() if reuse is Reuse.NONE else (Placement(0, 0, 1),))


def test_example_a_cells_by_start_time() -> None:
    cams = [span(0, 3, 30), span(1, 1, 30), span(2, 2, 30)]
    layout = parse_layout({"grid": {"video_sources": ["*"]}}, VGA)
    result = plan(cams, layout, VGA, (), (), trim=True)
    last = result.segments[-1]
    assert {p.key: p.cell for p in last.placements} == {1: 0, 2: 1, 0: 2}


def test_example_d_show_newest_displaces_the_oldest_visible() -> None:
    spans = [span(i, i, 100) for i in range(6)]
    layout = parse_layout(
        {
            "chess": {
                "x_pos": 10,
                "width": 1260,
                "height": 720,
                "max_rows": 3,
                "max_columns": 3,
                "cells_excluded": [1, 3, 5, 7],
                "reuse": "show_newest",
                "video_sources": ["*"],
            }
        },
        HD,
    )
    result = plan(spans, layout, HD, (), (), trim=True)
    final = {p.cell: p.key for p in result.segments[-1].placements}
    assert final == {0: 5, 2: 1, 4: 2, 6: 3, 8: 4}


def test_example_h_transcode_and_audio_only() -> None:
    spans = [span(0, 1, 9, sids=(RT,)), span(1, 0, 10, kind="audio", sids=("RT" + "d" * 32,))]
    video_only = plan(
        spans, parse_layout({"transcode": {"video_sources": [RT]}}, VGA), VGA, (), (), trim=True
    )
    assert video_only.video_keys == (0,) and video_only.audio_keys == ()
    assert video_only.duration == 8 * S
    audio_only = plan(spans, parse_layout({}, VGA), VGA, ("RT" + "d" * 32,), (), trim=True)
    assert audio_only.video_keys == () and audio_only.audio_keys == (1,)
    assert audio_only.duration == 10 * S and all(not s.placements for s in audio_only.segments)


def test_trim_worked_example_780s() -> None:
    spans = [
        span(0, 120, 600, "p1"),
        span(1, 120, 600, "p1", kind="audio"),
        span(2, 900, 1200, "p2"),
        span(3, 900, 1200, "p2", kind="audio"),
    ]
    layout = parse_layout({"grid": {"video_sources": ["*"]}}, VGA)
    trimmed = plan(spans, layout, VGA, ("*",), (), trim=True)
    assert trimmed.duration == 780 * S
    assert trimmed.kept == ((120 * S, 600 * S), (900 * S, 1200 * S))
    assert trimmed.shift[2] == (900 - 480) * S and trimmed.shift[0] == 120 * S
    assert sum(s.duration for s in trimmed.segments) == trimmed.duration
    untrimmed = plan(spans, layout, VGA, ("*",), (), trim=False)
    assert untrimmed.duration == 1200 * S
    gap = next(s for s in untrimmed.segments if s.start <= 700 * S < s.end)
    assert gap.placements == ()


def test_room_to_output_mapping() -> None:
    kept = ((10, 20), (30, 45))
    assert [room_to_output(kept, t) for t in (10, 15, 20, 30, 45)] == [0, 5, 10, 10, 25]
    with pytest.raises(ValueError):
        room_to_output(kept, 25)


def test_kept_intervals_merge_touching_and_overlapping() -> None:
    spans = [span(0, 0, 5), span(1, 5, 8), span(2, 7, 9), span(3, 12, 13)]
    assert kept_intervals(spans, trim=True) == ((0, 9 * S), (12 * S, 13 * S))
    assert kept_intervals(spans, trim=False) == ((0, 13 * S),)
    assert kept_intervals([], trim=True) == ()


@pytest.mark.parametrize("trim", [True, False])
@pytest.mark.parametrize("reuse", list(Reuse))
@pytest.mark.parametrize("seed", range(6))
def test_segment_invariants(trim: bool, reuse: Reuse, seed: int) -> None:
    import random

    rng = random.Random(seed)
    spans = []
    for key in range(rng.randint(1, 12)):
        start = rng.randint(0, 300)
        spans.append(
            span(key, start, start + rng.randint(1, 200), kind=rng.choice(["audio", "video", "video"]))
        )
    layout = parse_layout(
        {
            "g": {"max_columns": 2, "max_rows": 2, "reuse": reuse.value, "video_sources": ["*"]},
            "p": {"z_pos": 1, "x_pos": 320, "width": 320, "height": 240, "video_sources": ["t1", "t3"]},
        },
        VGA,
    )
    result = plan(spans, layout, VGA, ("*",), (), trim=trim)
    assert sum(s.duration for s in result.segments) == result.duration
    assert result.duration == sum(b - a for a, b in result.kept)
    position = 0
    for seg in result.segments:
        assert seg.start == position and seg.end > seg.start
        position = seg.end
        cells = [(p.region, p.cell) for p in seg.placements]
        assert len(cells) == len(set(cells))  # one source per cell
        for p in seg.placements:
            src = spans[p.key]
            room = seg.room_start
            assert src.start <= room and room + seg.duration <= src.end  # only active sources are shown
            assert p.cell in result.grids[p.region].usable


def test_assign_cells_none_reuses_cells_freed_earlier() -> None:
    spans = [span(0, 0, 5), span(1, 1, 3), span(2, 2, 6), span(3, 4, 9)]
    cells = assign_cells(spans, (0, 1), Reuse.NONE)
    assert [s.key for s in cells[0]] == [0]
    assert [s.key for s in cells[1]] == [1, 3]  # 2 started while both were busy: never shown
