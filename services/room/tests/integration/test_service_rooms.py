"""RoomService against real Postgres (a throwaway schema) with a fake media side and an injected clock:
state and outbox events in one transaction, gap-free sequence numbers, idempotent signals, timers that
catch up after a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from libs.db.migrate import migrate
from libs.db.testing import integration_env, temp_schema
from libs.events import models as ev
from libs.events.base import Event
from libs.events.codec import decode
from libs.events.sids import AccountSid, ParticipantSid, RoomSid
from libs.events.topics import ROOM_EVENTS
from libs.rooms.janus_secret import janus_room_secret
from services.room.domain import RoomRequest, build_room_spec
from services.room.errors import RoomRuleError
from services.room.records import ParticipantRecord, RoomRecord
from services.room.rules import include_all, parse_subscribe_rules
from services.room.service import NewTrack, RoomService
from services.room.store import RoomStore

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
ACCOUNT = AccountSid("AC" + "1" * 32)
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _secret(room: RoomSid) -> str:
    return janus_room_secret("test-admin-key", room)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeMedia:
    opened: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    left: list[tuple[str, bool]] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    async def room_opened(self, room: RoomRecord) -> None:
        self.opened.append(room.sid)

    async def room_ended(self, room: RoomRecord) -> None:
        self.ended.append(room.sid)

    async def participants_left(
        self, room: RoomRecord, sids: Sequence[ParticipantSid], *, kick: bool
    ) -> None:
        self.left.extend((sid, kick) for sid in sids)

    async def subscribe_rules_changed(self, room: RoomRecord, participant: ParticipantRecord) -> None:
        self.rules.append(participant.sid)


@dataclass
class Env:
    pool: asyncpg.Pool
    schema: str
    clock: Clock
    media: FakeMedia
    service: RoomService

    async def events(self) -> list[Event]:
        rows = await self.pool.fetch(f"SELECT payload FROM {self.schema}.outbox ORDER BY id")  # noqa: S608
        return [decode(ROOM_EVENTS, bytes(r["payload"])) for r in rows]

    def restarted(self) -> RoomService:
        """A fresh service over the same tables, as after a process restart."""
        return RoomService(RoomStore(self.pool, self.schema), self.media, self.clock, _secret)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with temp_schema(integration_env()["POSTGRES_DSN"], prefix="room_it_") as (pool, schema):
        await migrate(pool, schema, MIGRATIONS)
        clock, media = Clock(), FakeMedia()
        yield Env(pool, schema, clock, media, RoomService(RoomStore(pool, schema), media, clock, _secret))


def seqs(events: list[Event]) -> list[int]:
    return [e.sequence_number for e in events if isinstance(e, ev.RoomEvent)]


async def test_create_is_one_transaction_with_room_created(env: Env) -> None:
    room = await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest(unique_name="daily")))
    events = await env.events()
    assert [type(e) for e in events] == [ev.RoomCreated]
    created = events[0]
    assert isinstance(created, ev.RoomCreated)
    assert created.room_sid == room.sid and created.room_name == "daily" and created.sequence_number == 0
    assert env.media.opened == [room.sid]
    with pytest.raises(RoomRuleError) as taken:
        await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest(unique_name="daily")))
    assert taken.value.code == 53113
    assert len(await env.events()) == 1  # the refused room left nothing behind
    assert (await env.service.resolve(ACCOUNT, "daily")).sid == room.sid


async def test_join_publish_rejoin_and_leave_keep_sequence_numbers_gap_free(env: Env) -> None:
    room = await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest(unique_name="r")))
    env.clock.now = T0 + timedelta(seconds=10)
    _, alice = await env.service.connect(room.sid, "alice")
    added = await env.service.add_tracks(
        room.sid, alice.sid, [NewTrack("mic", "audio", "0", "opus"), NewTrack("cam", "video", "1", "vp8")]
    )
    assert [t.name for t in added] == ["mic", "cam"]
    # Janus may repeat "published": the same mids add nothing.
    assert await env.service.add_tracks(room.sid, alice.sid, [NewTrack("x", "audio", "0", "opus")]) == []

    env.clock.now = T0 + timedelta(seconds=70)
    _, again = await env.service.connect(room.sid, "alice")  # same identity: the first one is dropped
    assert again.sid != alice.sid
    assert env.media.left == [(alice.sid, True)]
    first = await env.service.store.participant(room.sid, alice.sid)
    assert first is not None and first.status == "disconnected" and first.duration == 60
    assert (await env.service.store.participant(room.sid, "alice")) == (
        await env.service.store.participant(room.sid, again.sid)
    )

    assert await env.service.disconnect(room.sid, again.sid, "left") is True
    assert await env.service.disconnect(room.sid, again.sid, "left") is False  # duplicate signal

    events = await env.events()
    kinds = [e.type for e in events]
    assert kinds == [
        "room-created",
        "participant-connected",
        "track-added",
        "track-added",
        "track-removed",
        "track-removed",
        "participant-disconnected",
        "participant-connected",
        "participant-disconnected",
    ]
    assert seqs(events) == list(range(len(events)))
    track_added = events[2]
    assert isinstance(track_added, ev.TrackAdded)
    assert track_added.codec == "opus" and track_added.stream_mid == "0"
    assert track_added.janus_publisher_id == alice.sid and track_added.track_name == "mic"


async def test_complete_unpublishes_disconnects_and_ends(env: Env) -> None:
    room = await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest()))
    _, bob = await env.service.connect(room.sid, "bob")
    await env.service.add_tracks(room.sid, bob.sid, [NewTrack("cam", "video", "1", "vp8")])
    env.clock.now = T0 + timedelta(minutes=3)
    done = await env.service.complete_room(ACCOUNT, room.sid)
    assert done.status == "completed" and done.duration == 180
    assert env.media.ended == [room.sid]
    kinds = [e.type for e in await env.events()]
    assert kinds[-3:] == ["track-removed", "participant-disconnected", "room-ended"]
    with pytest.raises(RoomRuleError) as again:
        await env.service.complete_room(ACCOUNT, room.sid)
    assert again.value.code == 53112
    with pytest.raises(RoomRuleError) as late:
        await env.service.connect(room.sid, "carol")
    assert late.value.code == 53118


async def test_full_room_is_53105(env: Env) -> None:
    room = await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest(max_participants="1")))
    await env.service.connect(room.sid, "a")
    with pytest.raises(RoomRuleError) as full:
        await env.service.connect(room.sid, "b")
    assert full.value.code == 53105


async def test_timers_fire_and_catch_up_after_a_restart(env: Env) -> None:
    unused = await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest(unused_room_timeout="2")))
    empty = await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest(empty_room_timeout="1")))
    _, p = await env.service.connect(empty.sid, "p")
    env.clock.now = T0 + timedelta(seconds=30)
    await env.service.disconnect(empty.sid, p.sid)
    env.clock.now = T0 + timedelta(seconds=60)
    assert await env.service.run_due() == 0  # nothing due yet

    # The process was down for an hour; a new one applies both deadlines at their own times.
    env.clock.now = T0 + timedelta(hours=1)
    service = env.restarted()
    assert await service.run_due() == 2
    assert await service.run_due() == 0
    ended = {e.room_sid: e for e in await env.events() if isinstance(e, ev.RoomEnded)}
    assert ended[unused.sid].end_time == T0 + timedelta(minutes=2)
    assert ended[empty.sid].end_time == T0 + timedelta(seconds=90)
    assert ended[empty.sid].room_duration == 90
    assert set(env.media.ended) == {unused.sid, empty.sid}


async def test_max_participant_duration_disconnects_with_kick(env: Env) -> None:
    room = await env.service.create_room(
        ACCOUNT, build_room_spec(RoomRequest(max_participant_duration="600"))
    )
    _, p = await env.service.connect(room.sid, "p")
    await env.service.add_tracks(room.sid, p.sid, [NewTrack("mic", "audio", "0", "opus")])
    env.clock.now = T0 + timedelta(seconds=601)
    assert await env.service.run_due() == 1
    stored = await env.service.store.participant(room.sid, p.sid)
    assert stored is not None and stored.status == "disconnected" and stored.duration == 600
    assert (p.sid, True) in env.media.left
    assert [e.type for e in await env.events()][-2:] == ["track-removed", "participant-disconnected"]


async def test_rules(env: Env) -> None:
    room = await env.service.create_room(ACCOUNT, build_room_spec(RoomRequest()))
    updated = await env.service.set_recording_rules(ACCOUNT, room.sid, include_all())
    assert updated.spec.recording_rules == include_all() and updated.recording_rules_updated == T0
    last = (await env.events())[-1]
    assert isinstance(last, ev.RecordingRulesUpdated) and last.sequence_number == 1
    assert [r.model_dump(exclude_none=True) for r in last.recording_rules] == [
        {"type": "include", "all": True}
    ]

    _, viewer = await env.service.connect(room.sid, "viewer")
    _, pub = await env.service.connect(room.sid, "pub")
    await env.service.add_tracks(
        room.sid, pub.sid, [NewTrack("mic", "audio", "0", "opus"), NewTrack("cam", "video", "1", "vp8")]
    )
    assert len(await env.service.subscribed_tracks(room, viewer)) == 2
    rules = parse_subscribe_rules(
        '[{"type":"include","all":true},{"type":"exclude","publisher":"pub","kind":"video"}]'
    )
    viewer = await env.service.set_subscribe_rules(room, viewer, rules)
    assert env.media.rules == [viewer.sid]
    assert [t.name for t, _ in await env.service.subscribed_tracks(room, viewer)] == ["mic"]
