"""No-network checks of the room service's edges: Twilio resource bodies against the OpenAPI spec, event
building from lifecycle facts, trickle fragments, dev tokens accepted by the real token verifier, and the
Janus event ingest driven by a fake service."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from libs.auth.access_token import verify_access_token
from libs.events import models as ev
from libs.events.sids import AccountSid, ApiKeySid, ParticipantSid, RoomSid, TrackSid
from libs.janus.events import parse_events
from libs.twilio.openapi import validate_resource
from services.room import lifecycle, room_events
from services.room.api import (
    participant_resource,
    published_track_resource,
    recording_rules_resource,
    room_resource,
    subscribe_rules_resource,
    subscribed_track_resource,
)
from services.room.domain import RoomRequest, build_room_spec
from services.room.janus_ingest import JanusIngest
from services.room.media_api import _candidates
from services.room.media_sessions import WhipSession
from services.room.records import ParticipantRecord, RoomRecord, TrackRecord, room_state
from services.room.rules import include_all
from services.room.web_page import mint_token

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ACCOUNT = AccountSid("AC" + "a" * 32)
BASE = "https://mixdown.example"


def make_room(**raw: str) -> RoomRecord:
    spec = build_room_spec(RoomRequest(record_participants_on_connect="true", **raw))
    return RoomRecord(
        sid=RoomSid.new(),
        account_sid=ACCOUNT,
        spec=spec,
        status="in-progress",
        janus_secret="s",
        ad_hoc=False,
        date_created=T0,
        date_updated=T0,
        recording_rules_updated=T0,
    )


def make_participant(room: RoomRecord, identity: str = "alice") -> ParticipantRecord:
    return ParticipantRecord(
        sid=ParticipantSid.new(),
        room_sid=room.sid,
        account_sid=ACCOUNT,
        identity=identity,
        status="connected",
        date_created=T0,
        date_updated=T0,
        start_time=T0,
    )


def make_track(p: ParticipantRecord) -> TrackRecord:
    return TrackRecord(
        sid=TrackSid.new(),
        room_sid=p.room_sid,
        participant_sid=p.sid,
        name="cam",
        kind="video",
        mid="1",
        codec="vp8",
        enabled=True,
        published=True,
        date_created=T0,
        date_updated=T0,
    )


def test_every_resource_matches_the_openapi_schema() -> None:
    room = make_room(unique_name="standup")
    p = make_participant(room)
    viewer = make_participant(room, "bob")
    track = make_track(p)
    anonymized = replace(p, identity=p.sid, status="disconnected", end_time=T0, duration=0)
    cases = [
        ("video.v1.room", room_resource(room, BASE)),
        ("video.v1.room.room_participant", participant_resource(p, BASE)),
        (
            "video.v1.room.room_participant.room_participant_anonymize",
            participant_resource(anonymized, BASE, links=False),
        ),
        (
            "video.v1.room.room_participant.room_participant_published_track",
            published_track_resource(track, BASE),
        ),
        (
            "video.v1.room.room_participant.room_participant_subscribed_track",
            subscribed_track_resource(track, viewer, BASE),
        ),
        ("video.v1.room.room_participant.room_participant_subscribe_rule", subscribe_rules_resource(p)),
        ("video.v1.room.room_recording_rule", recording_rules_resource(room)),
    ]
    for schema, body in cases:
        validate_resource(schema, body, require_all=True, forbid_extra=True)
    body = room_resource(room, BASE)
    assert body["unique_name"] == "standup" and body["url"] == f"{BASE}/v1/Rooms/{room.sid}"
    assert body["links"]["recording_rules"] == f"{BASE}/v1/Rooms/{room.sid}/RecordingRules"
    assert subscribe_rules_resource(p)["rules"] == [{"type": "include", "all": True}]
    assert subscribe_rules_resource(p)["date_created"] is None


def test_a_room_without_name_reports_its_sid() -> None:
    room = make_room()
    assert room_resource(room, BASE)["unique_name"] == room.sid


def test_events_from_lifecycle_facts_carry_callback_fields() -> None:
    room = make_room(
        unique_name="standup", status_callback="https://cb.example/x", status_callback_method="GET"
    )
    state = room_state(room, [])
    pa = ParticipantSid.new()
    step = lifecycle.connect(state, pa, "alice", T0 + timedelta(seconds=5))
    end = lifecycle.complete(step.state, T0 + timedelta(seconds=65))
    events = room_events.from_facts(room, [*step.facts, *end.facts])
    assert [e.type for e in events] == ["participant-connected", "participant-disconnected", "room-ended"]
    connected, left, ended = events
    assert isinstance(connected, ev.ParticipantConnected) and connected.participant_sid == pa
    assert isinstance(left, ev.ParticipantDisconnected) and left.participant_duration == 60
    assert isinstance(ended, ev.RoomEnded) and ended.room_status == "completed" and ended.room_duration == 65
    for event in events:
        assert isinstance(event, ev.RoomEvent)
        assert event.status_callback == "https://cb.example/x" and event.status_callback_method == "GET"
        assert event.room_name == "standup"
    assert [e.sequence_number for e in events if isinstance(e, ev.RoomEvent)] == [0, 1, 2]


def test_track_events() -> None:
    room = make_room()
    p = make_participant(room)
    track = make_track(p)
    added = room_events.track_event(ev.TrackAdded, room, track, "alice", 4, T0)
    assert isinstance(added, ev.TrackAdded)
    assert added.codec == "vp8" and added.stream_mid == "1" and added.janus_publisher_id == p.sid
    disabled = room_events.track_event(ev.TrackDisabled, room, track, "alice", 5, T0)
    assert isinstance(disabled, ev.TrackDisabled) and disabled.track_enabled is False


def test_trickle_fragment_candidates() -> None:
    fragment = (
        "a=ice-ufrag:abc\r\na=ice-pwd:def\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2130706431 10.77.0.5 5000 typ host\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:1\r\n"
        "a=candidate:2 1 udp 2130706431 10.77.0.5 5002 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    assert _candidates(fragment) == [
        {
            "candidate": "candidate:1 1 udp 2130706431 10.77.0.5 5000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        },
        {
            "candidate": "candidate:2 1 udp 2130706431 10.77.0.5 5002 typ host",
            "sdpMid": "1",
            "sdpMLineIndex": 1,
        },
    ]


async def test_dev_tokens_verify_like_twilio_tokens() -> None:
    key = ApiKeySid("SK" + "b" * 32)
    secret = "s" * 40
    now = int(T0.timestamp())
    token = mint_token(key, ACCOUNT, secret, "alice", "standup", now)

    async def lookup(sid: ApiKeySid) -> tuple[AccountSid, str] | None:
        return (ACCOUNT, secret) if sid == key else None

    grant = await verify_access_token(token, lookup, T0 + timedelta(minutes=1))
    assert grant.identity == "alice" and grant.room == "standup" and grant.account_sid == ACCOUNT
    anywhere = await verify_access_token(mint_token(key, ACCOUNT, secret, "bob", None, now), lookup, T0)
    assert anywhere.room is None


@dataclass
class FakeService:
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    async def disconnect(self, room: RoomSid, pa: ParticipantSid, reason: str = "left", **_: object) -> bool:
        self.calls.append(("disconnect", pa, reason))
        return True

    async def remove_tracks(self, room: RoomSid, pa: ParticipantSid) -> int:
        self.calls.append(("remove", pa, ""))
        return 0

    async def add_tracks(self, room: RoomSid, pa: ParticipantSid, tracks: list[object]) -> list[object]:
        self.calls.append(("add", pa, str(len(tracks))))
        return []


@dataclass
class FakeMediaRegistry:
    whip: dict[str, object] = field(default_factory=dict)

    def by_handle(self, session: int | None, handle: int | None) -> None:
        return None

    def on_session(self, session: int | None) -> list[object]:
        return []


@pytest.mark.parametrize("kicked", [False, True])
async def test_janus_leaving_and_unpublished_events_reach_the_service(kicked: bool) -> None:
    room, pa = RoomSid.new(), ParticipantSid.new()
    service = FakeService()
    ingest = JanusIngest(service, FakeMediaRegistry())  # type: ignore[arg-type]  # structural fakes
    event = "kicked" if kicked else "leaving"
    body = [
        {"type": 64, "timestamp": 1, "event": {"plugin": "janus.plugin.videoroom",
         "data": {"event": "unpublished", "room": room, "id": pa}}},
        {"type": 64, "timestamp": 2, "event": {"plugin": "janus.plugin.videoroom",
         "data": {"event": event, "room": room, "id": pa}}},
        {"type": 64, "timestamp": 3, "event": {"plugin": "janus.plugin.videoroom",
         "data": {"event": "published", "room": room, "id": pa,
                  "streams": [{"type": "audio", "mid": "0", "mindex": 0, "codec": "opus"}]}}},
    ]  # fmt: skip
    for parsed in parse_events(body):
        await ingest.handle(parsed)
    assert service.calls == [
        ("remove", pa, ""),
        ("disconnect", pa, "kicked" if kicked else "left"),
        ("add", pa, "1"),
    ]
    assert include_all()  # default subscribe rules exist for viewers created by WHEP


@dataclass
class OneSession:
    session: WhipSession
    whip: dict[str, WhipSession] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.whip[self.session.id] = self.session

    def by_handle(self, session: int | None, handle: int | None) -> WhipSession | None:
        return self.session if (session, handle) == (7, 9) else None


class StubHandle:
    session_id, handle_id = 7, 9


def media_event(mid: str, receiving: bool) -> dict[str, object]:
    return {
        "type": 32,
        "timestamp": 1,
        "session_id": 7,
        "handle_id": 9,
        "event": {"media": "audio" if mid == "0" else "video", "mid": mid, "receiving": receiving},
    }


async def test_a_publisher_silent_on_every_track_is_disconnected_after_the_media_timeout() -> None:
    room, pa = RoomSid.new(), ParticipantSid.new()
    session = WhipSession(pa, room, pa, "zoe", StubHandle(), 0.0, frozenset({"0", "1"}))  # type: ignore[arg-type]  # stub handle
    service = FakeService()
    ingest = JanusIngest(service, OneSession(session), media_timeout=0.05)  # type: ignore[arg-type]  # structural fake
    for parsed in parse_events([media_event("0", True), media_event("1", True), media_event("0", False)]):
        await ingest.handle(parsed)
    assert session.media_seen and session.silence_check is None  # one silent track is a mute, not a vanish
    for parsed in parse_events([media_event("1", False), media_event("1", True)]):
        await ingest.handle(parsed)
    assert session.silence_check is None  # media came back before the timeout
    for parsed in parse_events([media_event("1", False)]):
        await ingest.handle(parsed)
    assert session.silence_check is not None
    await session.silence_check
    assert service.calls == [("disconnect", pa, "left")]
