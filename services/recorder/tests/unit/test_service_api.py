"""The Recording JSON matches Twilio's OpenAPI schemas exactly (global and room-scoped)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.events.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid
from libs.rooms.rules import Rule
from libs.twilio.openapi import validate_resource
from services.recorder.api import recording_resource, settings_resource
from services.recorder.domain import (
    MediaOutcome,
    RecordingSettings,
    RoomView,
    TrackView,
    complete,
    new_recording,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOM = RoomView(
    RoomSid.new(), AccountSid.new(), "r", "group", None, "POST", (Rule(type="include", all=True),)
)
TRACK = TrackView(
    TrackSid.new(), ROOM.room_sid, ParticipantSid.new(), "alice", "cam", "video", "VP8", "1", "1"
)


@pytest.mark.parametrize("completed", [False, True])
def test_global_resource_matches_spec(completed: bool) -> None:
    rec = new_recording(ROOM, TRACK, RecordingSid.new(), T0)
    if completed:
        rec = complete(rec, MediaOutcome("k", 2500, 1234, int(T0.timestamp() * 1e6)), T0)
    body = recording_resource(rec, "https://api.example")
    validate_resource("video.v1.recording", body, require_all=True, forbid_extra=True)
    assert body["url"] == f"https://api.example/v1/Recordings/{rec.sid}"
    assert body["links"] == {"media": f"https://api.example/v1/Recordings/{rec.sid}/Media"}
    assert body["duration"] == (3 if completed else 0) and body["type"] == "video"


def test_room_resource_matches_spec() -> None:
    rec = new_recording(ROOM, TRACK, RecordingSid.new(), T0)
    body = recording_resource(rec, "https://api.example", room_scoped=True)
    validate_resource("video.v1.room.room_recording", body, require_all=True, forbid_extra=True)
    assert body["room_sid"] == ROOM.room_sid
    assert body["links"]["media"].endswith(f"/v1/Rooms/{ROOM.room_sid}/Recordings/{rec.sid}/Media")
    assert body["date_created"] == "2026-11-21T12:00:00Z"


def test_settings_resource_matches_spec() -> None:
    account = AccountSid.new()
    for s in (RecordingSettings(), RecordingSettings(friendly_name="mine")):
        body = settings_resource(account, s, "https://api.example")
        validate_resource("video.v1.recording_settings", body, require_all=True, forbid_extra=True)
        assert body["url"] == "https://api.example/v1/RecordingSettings/Default"
        assert body["encryption_enabled"] is False
