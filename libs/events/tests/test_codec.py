"""Event models and the codec: round trips, discrimination by topic and type, rejection."""

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from pydantic import ValidationError

from libs.events.codec import decode, encode
from libs.events.errors import UndecodableEvent
from libs.events.models import (
    ALL_EVENT_TYPES,
    CompositionHookFailed,
    CompositionProgressed,
    CompositionRequested,
    ParticipantDisconnected,
    RecordingCompleted,
    RecordingRule,
    RoomCreated,
    RoomEnded,
    TrackAdded,
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
from libs.events.topics import ALL_TOPICS, COMPOSITION_EVENTS, COMPOSITION_JOBS, ROOM_EVENTS, dlq

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ACCOUNT = AccountSid.new()
ROOM = RoomSid.new()


def _room(**extra: object) -> dict[str, object]:
    return {
        "occurred_at": NOW,
        "account_sid": ACCOUNT,
        "room_sid": ROOM,
        "room_name": "standup",
        "room_status": "in-progress",
        "sequence_number": 3,
        **extra,
    }


def test_room_created_round_trip_and_key() -> None:
    event = RoomCreated(**_room(recording_rules=[RecordingRule(type="include", all=True)]))
    data = encode(event)
    back = decode(ROOM_EVENTS, data)
    assert back == event
    assert isinstance(back, RoomCreated)
    assert back.key() == ROOM
    assert back.recording_rules[0].all is True
    assert isinstance(back.event_id, UUID)


def test_every_event_type_round_trips() -> None:
    samples = [
        RoomEnded(**_room(room_status="completed", end_time=NOW, room_duration=61)),
        ParticipantDisconnected(
            **_room(
                participant_sid=ParticipantSid.new(), participant_identity="alice", participant_duration=5
            )
        ),
        TrackAdded(
            **_room(
                participant_sid=ParticipantSid.new(),
                participant_identity="alice",
                track_sid=TrackSid.new(),
                track_kind="video",
                track_name="cam",
                codec="VP8",
                janus_publisher_id="123",
                stream_mid="1",
            )
        ),
        RecordingCompleted(
            occurred_at=NOW,
            account_sid=ACCOUNT,
            recording_sid=RecordingSid.new(),
            room_sid=ROOM,
            room_name="standup",
            participant_sid=ParticipantSid.new(),
            participant_identity="alice",
            source_sid=TrackSid.new(),
            track_name="mic",
            kind="audio",
            codec="OPUS",
            container="mka",
            offset_ms=1200,
            duration_s=4,
            size_bytes=1000,
            media_uri="/v1/Recordings/RT/Media",
        ),
        CompositionProgressed(
            occurred_at=NOW,
            account_sid=ACCOUNT,
            composition_sid=CompositionSid.new(),
            room_sid=ROOM,
            percentage_done=40,
            seconds_remaining=3,
        ),
        CompositionHookFailed(
            occurred_at=NOW,
            account_sid=ACCOUNT,
            hook_sid=HookSid.new(),
            room_sid=ROOM,
            error_code=53631,
            error_message="x",
        ),
        CompositionRequested(
            occurred_at=NOW,
            account_sid=ACCOUNT,
            composition_sid=CompositionSid.new(),
            room_sid=ROOM,
            video_layout={"grid": {"video_sources": ["*"]}},
            audio_sources=["*"],
            resolution="1280x720",
            format="mp4",
        ),
    ]
    for event in samples:
        back = decode(event.topic, encode(event))
        assert back == event, event.type
        assert type(back) is type(event)
    assert samples[0].key() == ROOM
    assert isinstance(samples[0], RoomEnded) and samples[0].duration == 61
    assert samples[4].key() == samples[4].composition_sid  # type: ignore[attr-defined]
    assert samples[5].key() == samples[5].hook_sid  # type: ignore[attr-defined]
    assert samples[6].key() == ACCOUNT and samples[6].topic == COMPOSITION_JOBS
    assert isinstance(samples[6], CompositionRequested) and (samples[6].width, samples[6].height) == (
        1280,
        720,
    )


def test_room_ended_accepts_duration_alias() -> None:
    a = RoomEnded(**_room(room_status="completed", end_time=NOW, duration=7))
    assert a.room_duration == 7 == a.duration
    assert decode(ROOM_EVENTS, encode(a)) == a
    assert '"room_duration":7' in a.model_dump_json()


def test_decode_ignores_fields_added_by_newer_producers() -> None:
    event = RoomCreated(**_room())
    raw = json.loads(encode(event))
    raw["field_from_the_future"] = {"x": 1}
    assert decode(ROOM_EVENTS, json.dumps(raw).encode()) == event


def test_type_names_are_unique_per_topic_and_topics_exist() -> None:
    names = {t.name for t in ALL_TOPICS}
    seen: set[tuple[str, str]] = set()
    for cls in ALL_EVENT_TYPES:
        pair = (cls.topic, cls.model_fields["type"].default)
        assert pair not in seen
        seen.add(pair)
        assert cls.topic in names and dlq(cls.topic) in names


def test_events_are_frozen_and_strict() -> None:
    event = RoomCreated(**_room())
    with pytest.raises(ValidationError):
        event.room_name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        RoomCreated(**_room(unknown_field=1))


def test_occurred_at_must_be_aware_and_becomes_utc() -> None:
    with pytest.raises(ValidationError):
        RoomCreated(**_room(occurred_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    plus_two = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    event = RoomCreated(**_room(occurred_at=plus_two))
    assert event.occurred_at.tzinfo == UTC and event.occurred_at.hour == 10


@pytest.mark.parametrize(
    ("topic", "data"),
    [
        (ROOM_EVENTS, b"not json"),
        (ROOM_EVENTS, b"[1,2]"),
        (ROOM_EVENTS, b'{"type": "room-exploded"}'),
        (ROOM_EVENTS, b'{"type": "room-created", "account_sid": "nope"}'),
        (COMPOSITION_EVENTS, encode(RoomCreated(**_room()))),
        (ROOM_EVENTS, b"\xff\xfe"),
    ],
)
def test_undecodable(topic: str, data: bytes) -> None:
    with pytest.raises(UndecodableEvent):
        decode(topic, data)


def test_consumers_share_metrics_per_registry() -> None:
    from prometheus_client import CollectorRegistry

    from libs.events.consumer import EventConsumer

    registry = CollectorRegistry()
    EventConsumer("x:1", ["a"], "g1", registry=registry)
    EventConsumer("x:1", ["b"], "g2", registry=registry)  # no duplicate-timeseries error
