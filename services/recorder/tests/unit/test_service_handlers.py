"""room.events → the recorder's projection: field mapping of RoomCreated and TrackAdded."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.events.models import RecordingRule, RoomCreated, TrackAdded
from libs.events.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from libs.rooms.rules import Rule
from services.recorder.domain import wants_recording
from services.recorder.handlers import room_view, track_view

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
COMMON = {
    "occurred_at": AT,
    "account_sid": AccountSid.new(),
    "room_sid": RoomSid.new(),
    "room_name": "daily",
    "room_status": "in-progress",
    "sequence_number": 0,
    "status_callback": "https://cb.example/x",
    "status_callback_method": "GET",
}


def test_room_view_keeps_callback_and_rules() -> None:
    event = RoomCreated.model_validate(
        {**COMMON, "recording_rules": [RecordingRule(type="include", kind="audio")]}
    )
    view = room_view(event)
    assert (view.status_callback, view.status_callback_method) == ("https://cb.example/x", "GET")
    assert view.rules == (Rule(type="include", kind="audio"),)
    assert not view.ended


def test_track_view_normalizes_codec_and_is_recordable() -> None:
    event = TrackAdded.model_validate(
        {
            **COMMON,
            "participant_sid": ParticipantSid.new(),
            "participant_identity": "alice",
            "track_sid": TrackSid.new(),
            "track_kind": "audio",
            "track_name": "mic",
            "janus_publisher_id": "PA1",
            "stream_mid": "0",
            "codec": "opus",
        }
    )
    track = track_view(event)
    assert track.codec == "OPUS" and track.published and track.stream_mid == "0"
    created = RoomCreated.model_validate(
        {**COMMON, "recording_rules": [RecordingRule(type="include", all=True)]}
    )
    assert wants_recording(room_view(created), track)
    no_rules = RoomCreated.model_validate(COMMON)
    assert not wants_recording(room_view(no_rules), track)
