"""Hook definitions: Twilio's defaults, the normalized layout echo, and each validation error's code."""

from __future__ import annotations

import dataclasses

import pytest

from libs.composition.spec import RequestError
from services.hook.domain import HookRequest, define_hook, friendly_name_pattern

BASE = HookRequest(
    friendly_name="Standup",
    enabled=None,
    video_layout='{"grid": {"video_sources": ["*"]}}',
    audio_sources=(),
    audio_sources_excluded=(),
    resolution=None,
    format=None,
    trim=None,
    status_callback=None,
    status_callback_method=None,
)


def test_defaults_follow_twilio() -> None:
    hook = define_hook(BASE)
    assert hook.enabled is True
    assert hook.resolution == "640x480"
    assert hook.format == "webm"
    assert hook.trim is True
    assert hook.status_callback_method == "POST"
    assert hook.video_layout == {
        "grid": {
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
    }


def test_audio_only_hook_has_empty_layout() -> None:
    hook = define_hook(dataclasses.replace(BASE, video_layout=None, audio_sources=("*",), format="MP4"))
    assert hook.video_layout == {}
    assert hook.audio_sources == ("*",)
    assert hook.format == "mp4"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"friendly_name": None}, 20001),
        ({"friendly_name": "  "}, 20001),
        ({"friendly_name": "x" * 101}, 20001),
        ({"video_layout": "{not json"}, 53640),
        ({"video_layout": '{"grid": {"video_sources": []}}'}, 53640),
        ({"video_layout": '{"grid": {"video_sources": ["*"], "x_pos": 700}}'}, 53640),
        ({"video_layout": '{"grid": {"video_sources": ["*"], "reuse": "sometimes"}}'}, 53640),
        ({"video_layout": None}, 20001),
        ({"resolution": "1920x1080"}, 53641),
        ({"resolution": "8x8"}, 53641),
        ({"resolution": "wide"}, 53641),
        ({"format": "avi"}, 20001),
        ({"status_callback_method": "PUT"}, 20001),
    ],
)
def test_invalid_requests_carry_their_code(change: dict[str, object], code: int) -> None:
    with pytest.raises(RequestError) as info:
        define_hook(dataclasses.replace(BASE, **change))  # type: ignore[arg-type]  # table of field overrides
    assert info.value.code == code
    assert info.value.status == 400


def test_a_friendly_name_of_100_characters_is_accepted() -> None:
    assert define_hook(dataclasses.replace(BASE, friendly_name="x" * 100)).friendly_name == "x" * 100


@pytest.mark.parametrize(
    ("value", "pattern"),
    [("*Hook*", "%Hook%"), ("my_hook", "my\\_hook"), ("100%", "100\\%"), ("a\\b", "a\\\\b")],
)
def test_friendly_name_filter_escapes_sql_wildcards(value: str, pattern: str) -> None:
    assert friendly_name_pattern(value) == pattern
