"""Layout parsing, validation, echo, grid sizing and geometry (reference §2.10, §11)."""

from __future__ import annotations

import pytest

from libs.composition.spec import CODE_INVALID_LAYOUT, CODE_INVALID_RESOLUTION, LayoutError
from services.compositor.layout import (
    Rect,
    Resolution,
    Reuse,
    fit_inside,
    grid_shape,
    normalized,
    parse_layout,
    parse_resolution,
    preset,
    region_grid,
)

VGA = Resolution(640, 480)
HD = Resolution(1280, 720)


@pytest.mark.parametrize(
    ("text", "allow_hd", "expected"),
    [
        ("640x480", False, Resolution(640, 480)),
        ("1280x720", False, Resolution(1280, 720)),
        ("16x16", False, Resolution(16, 16)),
        ("720x1280", False, Resolution(720, 1280)),
        ("1920x1080", True, Resolution(1920, 1080)),
        ("1280X720", False, Resolution(1280, 720)),
    ],
)
def test_resolution_accepts(text: str, allow_hd: bool, expected: Resolution) -> None:
    assert parse_resolution(text, allow_hd=allow_hd) == expected


@pytest.mark.parametrize(
    ("text", "allow_hd"),
    [
        ("1920x1080", False),  # over 1280 per side
        ("1280x1280", False),  # over 921,600 pixels
        ("14x480", False),
        ("640x", False),
        ("640x480x2", False),
        ("-640x480", False),
        ("641x480", False),  # odd
        ("2560x1440", True),
        ("1080x1920", True),
    ],
)
def test_resolution_rejects(text: str, allow_hd: bool) -> None:
    with pytest.raises(LayoutError) as info:
        parse_resolution(text, allow_hd=allow_hd)
    assert info.value.code == CODE_INVALID_RESOLUTION


def test_normalized_echo_fills_every_key() -> None:
    layout = parse_layout(
        '{"grid": {"video_sources": ["*"]}, "pip": {"z_pos": 2, "x_pos": 10, "y_pos": 20, '
        '"width": 160, "height": 120, "video_sources": ["cam"], "reuse": "none"}}',
        VGA,
    )
    echo = normalized(layout)
    assert echo["grid"] == {
        "x_pos": 0,
        "y_pos": 0,
        "z_pos": 0,
        "width": None,
        "height": None,
        "max_columns": None,
        "max_rows": None,
        "cells_excluded": [],
        "reuse": "show_oldest",
        "video_sources": ["*"],
        "video_sources_excluded": [],
    }
    assert echo["pip"]["width"] == 160 and echo["pip"]["reuse"] == "none"
    assert normalized(parse_layout("{}", VGA)) == {}


def test_regions_painted_by_z_then_request_order() -> None:
    layout = parse_layout(
        {
            "b": {"z_pos": 5, "video_sources": ["*"]},
            "a": {"z_pos": -3, "video_sources": ["*"]},
            "c": {"z_pos": 5, "video_sources": ["*"]},
        },
        VGA,
    )
    assert [r.name for r in layout.regions] == ["b", "a", "c"]  # the echo keeps request order
    assert [layout.regions[i].name for i in layout.paint_order] == ["a", "b", "c"]
    assert list(normalized(layout)) == ["b", "a", "c"]


@pytest.mark.parametrize(
    "raw",
    [
        "[1, 2]",
        "not json",
        {"r": []},
        {"r": {}},
        {"r": {"video_sources": []}},
        {"r": {"video_sources": "*"}},
        {"r": {"video_sources": ["*"], "x_pos": 1.5}},
        {"r": {"video_sources": ["*"], "x_pos": True}},
        {"r": {"video_sources": ["*"], "z_pos": 100}},
        {"r": {"video_sources": ["*"], "width": 8}},
        {"r": {"video_sources": ["*"], "max_rows": 0}},
        {"r": {"video_sources": ["*"], "reuse": "sometimes"}},
        {"r": {"video_sources": ["*"], "cells_excluded": [-1]}},
        {"r": {"video_sources": ["*"], "colour": "red"}},
        {"r": {"video_sources": ["*"], "x_pos": 600, "width": 100}},  # sticks out on the right
        {"r": {"video_sources": ["*"], "y_pos": 470}},  # leaves less than 16 px
        {"": {"video_sources": ["*"]}},
    ],
)
def test_layout_rejects(raw: object) -> None:
    with pytest.raises(LayoutError) as info:
        parse_layout(raw, VGA)
    assert info.value.code == CODE_INVALID_LAYOUT
    assert info.value.message


GRID_TABLE = [
    # n, max_columns, max_rows, (rows, cols)
    (1, None, None, (1, 1)),
    (2, None, None, (1, 2)),
    (3, None, None, (2, 2)),
    (4, None, None, (2, 2)),
    (5, None, None, (2, 3)),
    (6, None, None, (2, 3)),
    (7, None, None, (3, 3)),
    (8, None, None, (3, 3)),
    (9, None, None, (3, 3)),
    (10, None, None, (3, 4)),
    (11, None, None, (3, 4)),
    (12, None, None, (3, 4)),
    (13, None, None, (4, 4)),
    (14, None, None, (4, 4)),
    (15, None, None, (4, 4)),
    (16, None, None, (4, 4)),
    (5, None, 1, (1, 5)),  # example C
    (9, 3, 3, (3, 3)),  # example D, busy
    (6, 3, 3, (2, 3)),  # example D, 2 concurrent
    (3, 2, 1, (1, 2)),  # example G
    (2, 1, 1, (1, 1)),  # example F
    (7, 2, None, (4, 2)),
    (16, 3, None, (6, 3)),
    (10, None, 2, (2, 5)),
    (16, 2, 2, (2, 2)),
]


@pytest.mark.parametrize(("n", "max_columns", "max_rows", "expected"), GRID_TABLE)
def test_grid_shape(n: int, max_columns: int | None, max_rows: int | None, expected: tuple[int, int]) -> None:
    assert grid_shape(n, max_columns, max_rows) == expected


@pytest.mark.parametrize("n", range(1, 17))
@pytest.mark.parametrize("canvas", [VGA, HD, Resolution(320, 240), Resolution(1024, 576)])
@pytest.mark.parametrize(
    ("max_columns", "max_rows", "excluded"), [(None, None, ()), (3, None, (1,)), (None, 2, (0, 4))]
)
def test_grid_invariants(
    n: int, canvas: Resolution, max_columns: int | None, max_rows: int | None, excluded: tuple[int, ...]
) -> None:
    region = parse_layout(
        {
            "r": {
                "video_sources": ["*"],
                "x_pos": 10,
                "y_pos": 6,
                "max_columns": max_columns,
                "max_rows": max_rows,
                "cells_excluded": list(excluded),
            }
        },
        canvas,
    ).regions[0]
    grid = region_grid(region, canvas, n)
    whole = Rect(0, 0, canvas.width, canvas.height)
    assert len(grid.cells) == grid.rows * grid.cols
    if max_columns is not None:
        assert grid.cols <= max_columns
    if max_rows is not None:
        assert grid.rows <= max_rows
    for i, cell in enumerate(grid.cells):
        assert whole.contains(cell)
        assert cell.x % 2 == cell.y % 2 == cell.width % 2 == cell.height % 2 == 0
        for other in grid.cells[i + 1 :]:
            assert not cell.overlaps(other)
    assert set(grid.usable) == set(range(len(grid.cells))) - set(excluded)


@pytest.mark.parametrize(
    ("src_w", "src_h"),
    [(640, 480), (1280, 720), (480, 640), (320, 240), (1920, 1080), (176, 144), (100, 1000), (1000, 100)],
)
@pytest.mark.parametrize("cell", [Rect(0, 0, 320, 240), Rect(10, 0, 252, 160), Rect(430, 240, 420, 240)])
def test_fit_inside_invariants(src_w: int, src_h: int, cell: Rect) -> None:
    content = fit_inside(cell, src_w, src_h)
    assert cell.contains(content)
    assert content.width == cell.width or content.height == cell.height
    assert content.width % 2 == content.height % 2 == content.x % 2 == content.y % 2 == 0
    # aspect kept within one pixel on the scaled side
    if content.height == cell.height:
        assert abs(content.width - src_w * content.height / src_h) <= 1 or content.width == cell.width
    else:
        assert abs(content.height - src_h * content.width / src_w) <= 1
    # centred to the even pixel
    assert abs((content.x - cell.x) - (cell.right - content.right)) <= 2
    assert abs((content.y - cell.y) - (cell.bottom - content.bottom)) <= 2


def test_example_a_grid_and_letterbox() -> None:
    layout = parse_layout({"grid": {"video_sources": ["*"]}}, VGA)
    grid = region_grid(layout.regions[0], VGA, 3)
    assert (grid.rows, grid.cols) == (2, 2)
    assert grid.cells[:3] == (Rect(0, 0, 320, 240), Rect(320, 0, 320, 240), Rect(0, 240, 320, 240))
    assert fit_inside(grid.cells[0], 640, 480) == grid.cells[0]
    assert fit_inside(grid.cells[1], 1280, 720) == Rect(320, 30, 320, 180)


def test_example_b_picture_in_picture() -> None:
    layout = parse_layout(
        {
            "main": {"z_pos": 1, "video_sources": ["screen"]},
            "pip": {
                "z_pos": 2,
                "x_pos": 1000,
                "y_pos": 30,
                "width": 240,
                "height": 180,
                "video_sources": ["presenter-cam"],
            },
        },
        HD,
    )
    main, pip = (layout.regions[i] for i in layout.paint_order)
    assert region_grid(main, HD, 1).cells == (Rect(0, 0, 1280, 720),)
    pip_cell = region_grid(pip, HD, 1).cells[0]
    assert pip_cell == Rect(1000, 30, 240, 180)
    assert fit_inside(pip_cell, 640, 480) == pip_cell
    assert fit_inside(Rect(0, 0, 1280, 720), 1280, 720) == Rect(0, 0, 1280, 720)


def test_example_c_row_strip() -> None:
    layout = parse_layout(
        {
            "main": {"z_pos": 1, "video_sources": ["teacher-screen"]},
            "row": {
                "z_pos": 2,
                "x_pos": 10,
                "y_pos": 530,
                "width": 1260,
                "height": 160,
                "max_rows": 1,
                "video_sources": ["*"],
                "video_sources_excluded": ["teacher-screen"],
            },
        },
        HD,
    )
    grid = region_grid(layout.regions[1], HD, 5)
    assert (grid.rows, grid.cols) == (1, 5)
    assert grid.cells[0] == Rect(10, 530, 252, 160)
    content = fit_inside(grid.cells[0], 640, 480)
    assert (content.width, content.height) == (214, 160)  # 213.3 rounded to even
    assert content.x - 10 == 18 and grid.cells[0].right - content.right == 20


def test_example_d_chess_board() -> None:
    spec = {
        "chess": {
            "x_pos": 10,
            "y_pos": 0,
            "width": 1260,
            "height": 720,
            "max_rows": 3,
            "max_columns": 3,
            "cells_excluded": [1, 3, 5, 7],
            "reuse": "show_newest",
            "video_sources": ["*"],
        }
    }
    region = parse_layout(spec, HD).regions[0]
    assert region.reuse is Reuse.SHOW_NEWEST
    busy = region_grid(region, HD, 5)
    assert (busy.rows, busy.cols) == (3, 3)
    assert busy.usable == (0, 2, 4, 6, 8)
    assert [(busy.cells[i].x, busy.cells[i].y) for i in busy.usable] == [
        (10, 0),
        (850, 0),
        (430, 240),
        (10, 480),
        (850, 480),
    ]
    assert busy.cells[0].width == 420 and busy.cells[0].height == 240
    quiet = region_grid(region, HD, 2)
    assert (quiet.rows, quiet.cols) == (2, 3)
    assert quiet.usable == (0, 2, 4)
    assert quiet.cells[0] == Rect(10, 0, 420, 360)


def test_example_e_hero_over_centre_cell() -> None:
    layout = parse_layout(
        {
            "interviewers": {
                "z_pos": 1,
                "x_pos": 10,
                "y_pos": 0,
                "width": 1260,
                "height": 720,
                "max_rows": 3,
                "max_columns": 3,
                "cells_excluded": [4],
                "video_sources": ["interviewer-*"],
            },
            "interviewed": {
                "z_pos": 2,
                "x_pos": 400,
                "y_pos": 180,
                "width": 480,
                "height": 360,
                "video_sources": ["interviewed-video"],
            },
        },
        HD,
    )
    ring = region_grid(layout.regions[0], HD, 8)
    assert 4 not in ring.usable and len(ring.usable) == 8
    assert ring.cells[4] == Rect(430, 240, 420, 240)
    hero = region_grid(layout.regions[1], HD, 1).cells[0]
    assert hero == Rect(400, 180, 480, 360)
    assert hero.contains(ring.cells[4])
    assert hero.x == ring.cells[4].x - 30 and hero.bottom == ring.cells[4].bottom + 60


def test_presets_are_valid_layouts() -> None:
    for name in ("grid", "speaker"):
        for canvas in (VGA, HD):
            assert parse_layout(preset(name, canvas), canvas).regions
    with pytest.raises(LayoutError):
        preset("mosaic-of-doom", VGA)
