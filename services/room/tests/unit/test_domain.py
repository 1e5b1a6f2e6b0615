"""Room creation parameters: defaults, limits and Twilio error codes."""

from __future__ import annotations

import pytest

from services.room.domain import AccountPolicy, RoomRequest, build_room_spec, janus_codecs, unique_name_taken
from services.room.errors import RoomRuleError
from services.room.rules import Rule


def test_defaults_match_twilio() -> None:
    spec = build_room_spec(RoomRequest())
    assert spec.type == "group"
    assert spec.unique_name is None
    assert spec.status_callback is None
    assert spec.status_callback_method == "POST"
    assert spec.max_participants == 50
    assert spec.max_participant_duration == 14_400
    assert spec.empty_room_timeout == 5
    assert spec.unused_room_timeout == 5
    assert spec.record_participants_on_connect is False
    assert spec.recording_rules == ()
    assert spec.video_codecs == ("VP8",)
    assert spec.media_region == "us1"
    assert spec.audio_only is False
    assert spec.large_room is False
    assert spec.enable_turn is True
    assert spec.max_concurrent_published_tracks == 170


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (RoomRequest(type="peer-to-peer"), 53126),
        (RoomRequest(type="go"), 53126),
        (RoomRequest(type="group-small"), 53126),
        (RoomRequest(type="conference"), 53108),
        (RoomRequest(unique_name=""), 53100),
        (RoomRequest(unique_name="   "), 53100),
        (RoomRequest(unique_name="RM" + "a" * 32), 53100),
        (RoomRequest(unique_name="x" * 129), 53101),
        (RoomRequest(unique_name="bad\x00name"), 53102),
        (RoomRequest(unique_name="bad\udc80name"), 53102),
        (RoomRequest(status_callback="ftp://example.com/cb"), 53111),
        (RoomRequest(status_callback="not a url"), 53111),
        (RoomRequest(status_callback="https://example.com/" + "a" * 1004), 53111),
        (RoomRequest(status_callback_method="PUT"), 53110),
        (RoomRequest(max_participants="0"), 53107),
        (RoomRequest(max_participants="51"), 53107),
        (RoomRequest(max_participants="many"), 53107),
        (RoomRequest(max_participant_duration="599"), 53123),
        (RoomRequest(max_participant_duration="86401"), 53123),
        (RoomRequest(empty_room_timeout="0"), 53109),
        (RoomRequest(unused_room_timeout="61"), 53109),
        (RoomRequest(recording_rules="[]"), 53120),
        (RoomRequest(recording_rules='[{"type":"include","kind":"data"}]'), 53120),
        (RoomRequest(media_region="mars1"), 53115),
        (RoomRequest(audio_only="true"), 53127),
        (RoomRequest(record_participants_on_connect="yes"), 20001),
        (RoomRequest(video_codecs=["VP9"]), 20001),
    ],
)
def test_invalid_parameters_raise_twilio_codes(request_: RoomRequest, code: int) -> None:
    with pytest.raises(RoomRuleError) as caught:
        build_room_spec(request_)
    assert caught.value.code == code
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("request_", "field", "value"),
    [
        (RoomRequest(unique_name="x" * 128), "unique_name", "x" * 128),
        (RoomRequest(unique_name="Daily Standup ☕"), "unique_name", "Daily Standup ☕"),
        (
            RoomRequest(status_callback="https://example.com/cb?a=1"),
            "status_callback",
            "https://example.com/cb?a=1",
        ),
        (RoomRequest(status_callback=""), "status_callback", None),
        (RoomRequest(status_callback_method="get"), "status_callback_method", "GET"),
        (RoomRequest(max_participants="1"), "max_participants", 1),
        (RoomRequest(max_participants="50"), "max_participants", 50),
        (RoomRequest(max_participant_duration="600"), "max_participant_duration", 600),
        (RoomRequest(max_participant_duration="86400"), "max_participant_duration", 86_400),
        (RoomRequest(empty_room_timeout="1"), "empty_room_timeout", 1),
        (RoomRequest(unused_room_timeout="60"), "unused_room_timeout", 60),
        (RoomRequest(video_codecs=["H264", "VP8"]), "video_codecs", ("H264", "VP8")),
        (RoomRequest(video_codecs=["vp8,h264"]), "video_codecs", ("VP8", "H264")),
        (RoomRequest(media_region="IE1"), "media_region", "ie1"),
        (RoomRequest(large_room="true"), "max_concurrent_published_tracks", 16),
        (RoomRequest(enable_turn="false"), "enable_turn", True),
        (
            RoomRequest(record_participants_on_connect="True"),
            "recording_rules",
            (Rule(type="include", all=True),),
        ),
        (
            RoomRequest(
                record_participants_on_connect="true", recording_rules='[{"type":"include","kind":"audio"}]'
            ),
            "recording_rules",
            (Rule(type="include", kind="audio"),),
        ),
    ],
)
def test_valid_parameters_normalize(request_: RoomRequest, field: str, value: object) -> None:
    assert getattr(build_room_spec(request_), field) == value


def test_legacy_policy_allows_old_types_with_their_caps() -> None:
    policy = AccountPolicy(allow_legacy_room_types=True, allow_audio_only=True)
    small = build_room_spec(RoomRequest(type="group-small"), policy)
    assert (small.type, small.max_participants, small.max_concurrent_published_tracks) == (
        "group-small",
        4,
        0,
    )
    with pytest.raises(RoomRuleError) as caught:
        build_room_spec(RoomRequest(type="group-small", max_participants="5"), policy)
    assert caught.value.code == 53107
    with pytest.raises(RoomRuleError) as caught:
        build_room_spec(RoomRequest(type="peer-to-peer", audio_only="true"), policy)
    assert caught.value.code == 53124
    audio = build_room_spec(RoomRequest(audio_only="true", video_codecs=["H264"]), policy)
    assert audio.audio_only is True
    assert audio.video_codecs == ()


def test_unique_name_taken_is_53113() -> None:
    error = unique_name_taken("standup")
    assert (error.status, error.code) == (400, 53113)


def test_janus_codecs_follow_preference() -> None:
    spec = build_room_spec(RoomRequest(video_codecs=["H264", "VP8"]))
    assert janus_codecs(spec) == ("h264,vp8", "opus")
