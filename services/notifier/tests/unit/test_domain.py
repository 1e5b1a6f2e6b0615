"""Callback parameter mapping per event type (the table in docs/callbacks.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from libs.events.base import Event
from libs.events.models import (
    CompositionAvailable,
    CompositionEnqueued,
    CompositionFailed,
    CompositionHookFailed,
    CompositionProgressed,
    CompositionStarted,
    ParticipantConnected,
    ParticipantDisconnected,
    RecordingCompleted,
    RecordingFailed,
    RecordingRulesUpdated,
    RecordingStarted,
    RoomCreated,
    RoomEnded,
    TrackAdded,
    TrackDisabled,
    TrackEnabled,
    TrackRemoved,
)
from libs.events.sids import (
    AccountSid,
    CompositionSid,
    HookSid,
    ParticipantSid,
    RecordingSid,
    RoomSid,
    TrackSid,
)
from services.notifier import domain

AC = AccountSid("AC" + "a" * 32)
RM = RoomSid("RM" + "b" * 32)
PA = ParticipantSid("PA" + "c" * 32)
MT = TrackSid("MT" + "d" * 32)
RT = RecordingSid("RT" + "e" * 32)
CJ = CompositionSid("CJ" + "f" * 32)
HK = HookSid("HK" + "1" * 32)
WHEN = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC)
URL = "https://example.com/cb?x=1"

ROOM = {
    "account_sid": AC,
    "occurred_at": WHEN,
    "room_sid": RM,
    "room_name": "standup",
    "room_status": "in-progress",
    "sequence_number": 3,
    "status_callback": URL,
}
PART = {**ROOM, "participant_sid": PA, "participant_identity": "alice"}
TRACK = {**PART, "track_sid": MT, "track_kind": "video", "track_name": "cam"}
REC = {
    "account_sid": AC,
    "occurred_at": WHEN,
    "recording_sid": RT,
    "room_sid": RM,
    "room_name": "standup",
    "participant_sid": PA,
    "participant_identity": "alice",
    "source_sid": MT,
    "track_name": "cam",
    "kind": "video",
    "codec": "vp8",
    "container": "mkv",
    "offset_ms": 1234,
    "status_callback": URL,
    "status_callback_method": "GET",
}
COMP = {"account_sid": AC, "occurred_at": WHEN, "composition_sid": CJ, "room_sid": RM, "status_callback": URL}

ROOM_BASE = {
    "AccountSid",
    "RoomName",
    "RoomSid",
    "RoomStatus",
    "RoomType",
    "StatusCallbackEvent",
    "Timestamp",
    "SequenceNumber",
}
REC_BASE = {
    "AccountSid",
    "RoomName",
    "RoomSid",
    "RoomType",
    "StatusCallbackEvent",
    "Timestamp",
    "ParticipantSid",
    "ParticipantIdentity",
    "RecordingSid",
    "RecordingUri",
    "SourceSid",
    "TrackName",
    "Container",
    "Codec",
    "GroupingSids",
    "OffsetFromTwilioVideoEpoch",
}
COMP_BASE = {"AccountSid", "RoomSid", "CompositionSid", "CompositionUri", "StatusCallbackEvent", "Timestamp"}
PART_EXTRA = {"ParticipantSid", "ParticipantIdentity", "ParticipantStatus"}
TRACK_EXTRA = {"ParticipantSid", "ParticipantIdentity", "TrackSid", "TrackKind", "TrackName"}

CASES: list[tuple[Event, set[str]]] = [
    (RoomCreated(**ROOM), ROOM_BASE),
    (
        RoomEnded(**{**ROOM, "room_status": "completed"}, end_time=WHEN, room_duration=61),
        ROOM_BASE | {"RoomDuration"},
    ),
    (ParticipantConnected(**PART), ROOM_BASE | PART_EXTRA),
    (
        ParticipantDisconnected(**PART, participant_duration=42),
        ROOM_BASE | PART_EXTRA | {"ParticipantDuration"},
    ),
    (TrackAdded(**TRACK, codec="VP8"), ROOM_BASE | TRACK_EXTRA),
    (TrackRemoved(**TRACK), ROOM_BASE | TRACK_EXTRA),
    (TrackEnabled(**TRACK), ROOM_BASE | TRACK_EXTRA),
    (TrackDisabled(**TRACK), ROOM_BASE | TRACK_EXTRA),
    (RecordingStarted(**REC), REC_BASE),
    (
        RecordingCompleted(**REC, duration_s=30, size_bytes=4096, media_uri=f"/v1/Recordings/{RT}/Media"),
        REC_BASE | {"Duration", "Size", "MediaUri"},
    ),
    (
        RecordingFailed(**REC, error_code=53100, error_message="boom"),
        REC_BASE | {"ErrorCode", "ErrorMessage"},
    ),
    (CompositionEnqueued(**COMP), COMP_BASE),
    (CompositionStarted(**COMP), COMP_BASE),
    (
        CompositionProgressed(**COMP, percentage_done=40, seconds_remaining=12),
        COMP_BASE | {"PercentageDone", "SecondsRemaining"},
    ),
    (
        CompositionAvailable(**COMP, duration_s=60, size_bytes=99, media_uri=f"/v1/Compositions/{CJ}/Media"),
        COMP_BASE | {"Duration", "Size", "MediaUri"},
    ),
    (
        CompositionFailed(**COMP, error_code=53600, error_message="bad"),
        COMP_BASE | {"ErrorCode", "ErrorMessage"},
    ),
    (
        CompositionHookFailed(
            account_sid=AC,
            occurred_at=WHEN,
            hook_sid=HK,
            hook_friendly_name="my hook",
            room_sid=RM,
            error_code=53631,
            error_message="could not enqueue",
            status_callback=URL,
        ),
        {
            "AccountSid",
            "RoomSid",
            "CompositionHookSid",
            "CompositionHookFriendlyName",
            "StatusCallbackEvent",
            "Timestamp",
            "ErrorCode",
            "ErrorMessage",
        },
    ),
]


@pytest.mark.parametrize(("event", "names"), CASES, ids=[c[0].type for c in CASES])
def test_each_event_type_carries_exactly_its_parameters(event: Event, names: set[str]) -> None:
    callback = domain.plan_callback(event)
    assert callback is not None
    assert set(callback.params) == names
    assert callback.params["StatusCallbackEvent"] == event.type
    assert callback.params["AccountSid"] == str(AC)
    assert callback.params["Timestamp"] == "2026-03-04T05:06:07.891Z"
    assert all(isinstance(v, str) for v in callback.params.values())
    assert callback.event_id == event.event_id
    assert callback.url == URL


def test_values_of_room_participant_and_track_events() -> None:
    ended = domain.plan_callback(
        RoomEnded(**{**ROOM, "room_status": "completed"}, end_time=WHEN, room_duration=61)
    )
    assert ended is not None
    assert ended.params["RoomDuration"] == "61"
    assert ended.params["RoomStatus"] == "completed"
    assert ended.params["RoomType"] == "group"
    assert ended.params["SequenceNumber"] == "3"
    assert ended.params["RoomName"] == "standup"
    left = domain.plan_callback(ParticipantDisconnected(**PART, participant_duration=42))
    assert left is not None
    assert left.params["ParticipantStatus"] == "disconnected"
    assert left.params["ParticipantDuration"] == "42"
    assert left.params["ParticipantIdentity"] == "alice"
    track = domain.plan_callback(TrackDisabled(**TRACK))
    assert track is not None
    assert (track.params["TrackSid"], track.params["TrackKind"], track.params["TrackName"]) == (
        str(MT),
        "video",
        "cam",
    )


def test_recording_values_and_get_method() -> None:
    cb = domain.plan_callback(
        RecordingCompleted(**REC, duration_s=30, size_bytes=4096, media_uri=f"/v1/Recordings/{RT}/Media")
    )
    assert cb is not None
    assert cb.method == "GET"
    assert cb.params["RecordingUri"] == f"/v1/Recordings/{RT}"
    assert cb.params["MediaUri"] == f"/v1/Recordings/{RT}/Media"
    assert cb.params["Codec"] == "VP8"
    assert cb.params["Container"] == "mkv"
    assert cb.params["OffsetFromTwilioVideoEpoch"] == "1234"
    assert (cb.params["Duration"], cb.params["Size"]) == ("30", "4096")
    assert json.loads(cb.params["GroupingSids"]) == {"room_sid": str(RM), "participant_sid": str(PA)}
    assert cb.ordering_key == domain.ordering_key(RM, URL)


def test_recording_sequence_number_sent_when_known() -> None:
    cb = domain.plan_callback(RecordingStarted(**{**REC, "sequence_number": 9}))
    assert cb is not None
    assert cb.params["SequenceNumber"] == "9"


def test_composition_values_and_hook_fields() -> None:
    cb = domain.plan_callback(
        CompositionProgressed(**COMP, hook_sid=HK, hook_friendly_name="nightly", percentage_done=40)
    )
    assert cb is not None
    assert cb.params["PercentageDone"] == "40"
    assert "SecondsRemaining" not in cb.params
    assert cb.params["CompositionUri"] == f"/v1/Compositions/{CJ}"
    assert cb.params["CompositionHookSid"] == str(HK)
    assert cb.params["CompositionHookFriendlyName"] == "nightly"
    assert cb.ordering_key == domain.ordering_key(CJ, URL)
    failed = domain.plan_callback(CompositionFailed(**COMP, error_code=53600, error_message="bad"))
    assert failed is not None
    assert (failed.params["ErrorCode"], failed.params["ErrorMessage"]) == ("53600", "bad")


def test_hook_failed_with_composition_orders_by_composition() -> None:
    event = CompositionHookFailed(
        account_sid=AC,
        occurred_at=WHEN,
        hook_sid=HK,
        room_sid=RM,
        composition_sid=CJ,
        error_code=53631,
        error_message="x",
        status_callback=URL,
    )
    cb = domain.plan_callback(event)
    assert cb is not None
    assert cb.params["CompositionSid"] == str(CJ)
    assert cb.ordering_key == domain.ordering_key(CJ, URL)


@pytest.mark.parametrize("url", [None, "", "   "])
def test_no_callback_url_means_no_callback(url: str | None) -> None:
    assert domain.plan_callback(RoomCreated(**{**ROOM, "status_callback": url})) is None
    assert domain.plan_callback(CompositionStarted(**{**COMP, "status_callback": url})) is None


def test_recording_rules_updated_is_not_a_twilio_callback() -> None:
    assert domain.plan_callback(RecordingRulesUpdated(**ROOM, recording_rules=[])) is None


def test_timestamp_is_utc_with_milliseconds() -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 1, 1, 1, 0, 0, 5_000, tzinfo=timezone(timedelta(hours=2)))
    assert domain.callback_timestamp(local) == "2025-12-31T23:00:00.005Z"


def test_event_ids_are_carried() -> None:
    event_id = uuid4()
    cb = domain.plan_callback(RoomCreated(**ROOM, event_id=event_id))
    assert cb is not None
    assert cb.event_id == event_id
