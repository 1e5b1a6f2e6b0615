"""Handlers against an in-memory store: redeliveries are no-ops, hook requests announce themselves once,
and the job runner is woken when work may have become claimable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from libs.events.base import Event
from libs.events.models import (
    CompositionEnqueued,
    CompositionRequested,
    RecordingCompleted,
    RecordingDeleted,
    RoomCreated,
    RoomEnded,
    RoomRecordingsFinalized,
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
from services.compositor import handlers

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNT = AccountSid.new()
ROOM = RoomSid.new()


class FakeStore:
    """Applies effects to dicts; a transaction's effects are kept only when it commits."""

    def __init__(self) -> None:
        self.processed: set[UUID] = set()
        self.rooms: dict[str, dict[str, Any]] = {}
        self.recordings: dict[str, dict[str, object]] = {}
        self.compositions: set[str] = set()
        self.jobs: list[str] = []
        self.outbox: list[Event] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        yield self

    async def mark_processed(self, conn: Any, event_id: UUID) -> bool:
        if event_id in self.processed:
            return False
        self.processed.add(event_id)
        return True

    async def add_events(self, conn: Any, events: Sequence[Event]) -> None:
        self.outbox.extend(events)

    async def upsert_room(
        self,
        conn: Any,
        room_sid: str,
        account_sid: str,
        room_name: str | None,
        status: str,
        end_time: datetime | None,
    ) -> None:
        room = self.rooms.setdefault(room_sid, {"status": status, "finalized": False})
        if status != "in-progress":
            room["status"] = status

    async def upsert_recording(self, conn: Any, values: dict[str, object]) -> None:
        self.recordings[str(values["recording_sid"])] = values

    async def delete_recording(self, conn: Any, recording_sid: str) -> None:
        self.recordings[recording_sid]["status"] = "deleted"

    async def finalize_room(self, conn: Any, room_sid: str, account_sid: str, room_name: str) -> None:
        self.rooms.setdefault(room_sid, {"status": "completed"})["finalized"] = True

    async def insert_requested(self, conn: Any, event: CompositionRequested, now: datetime) -> bool:
        created = event.composition_sid not in self.compositions
        self.compositions.add(event.composition_sid)
        if event.composition_sid not in self.jobs:
            self.jobs.append(event.composition_sid)
        return created


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def clock() -> datetime:
    return T0


def room_base() -> dict[str, Any]:
    return {"occurred_at": T0, "account_sid": ACCOUNT, "room_sid": ROOM, "room_name": "r"}


async def test_room_and_recording_facts_build_the_projection_once() -> None:
    store, wake = FakeStore(), Wakes()
    created = RoomCreated(**room_base(), room_status="in-progress", sequence_number=0)
    completed = RecordingCompleted(
        **room_base(),
        recording_sid=RecordingSid.new(),
        participant_sid=ParticipantSid.new(),
        participant_identity="alice",
        source_sid=TrackSid.new(),
        track_name="mic",
        kind="audio",
        codec="OPUS",
        container="mka",
        offset_ms=5,
        duration_s=3,
        size_bytes=10,
        media_uri="/m",
        object_key="recordings/x.mka",
    )
    ended = RoomEnded(**room_base(), room_status="completed", sequence_number=1, end_time=T0, room_duration=3)
    for event in (created, completed, completed, ended, ended):
        await handlers.on_event(event, store, clock, wake)
    assert store.rooms[ROOM]["status"] == "completed"
    values = store.recordings[completed.recording_sid]
    assert values["status"] == "completed"
    assert values["object_key"] == "recordings/x.mka"
    assert values["offset_ms"] == 5
    assert wake.count == 4  # recording and room-end facts may make waiting jobs claimable

    deleted = RecordingDeleted(
        occurred_at=T0, account_sid=ACCOUNT, recording_sid=completed.recording_sid, room_sid=ROOM
    )
    await handlers.on_event(deleted, store, clock, wake)
    assert store.recordings[completed.recording_sid]["status"] == "deleted"
    finalized = RoomRecordingsFinalized(occurred_at=T0, account_sid=ACCOUNT, room_sid=ROOM, room_name="r")
    await handlers.on_event(finalized, store, clock, wake)
    assert store.rooms[ROOM]["finalized"] is True


async def test_hook_requests_create_the_composition_and_announce_it_once() -> None:
    store, wake = FakeStore(), Wakes()
    request = CompositionRequested(
        occurred_at=T0,
        account_sid=ACCOUNT,
        composition_sid=CompositionSid.new(),
        room_sid=ROOM,
        hook_sid=HookSid.new(),
        hook_friendly_name="nightly",
        audio_sources=["*"],
        status_callback="https://example.com/hook",
        status_callback_method="GET",
    )
    republished = request.model_copy(update={"event_id": UUID(int=7)})  # the producer published it again
    for event in (request, request, republished):
        await handlers.on_event(event, store, clock, wake)
    assert store.jobs == [request.composition_sid]
    assert len(store.outbox) == 1
    enqueued = store.outbox[0]
    assert isinstance(enqueued, CompositionEnqueued)
    assert enqueued.hook_sid == request.hook_sid
    assert enqueued.hook_friendly_name == "nightly"
    assert enqueued.status_callback == "https://example.com/hook"
    assert enqueued.status_callback_method == "GET"
    assert wake.count == 2  # one per applied request (the redelivery is skipped)


async def test_api_requests_do_not_announce_twice() -> None:
    store, wake = FakeStore(), Wakes()
    request = CompositionRequested(
        occurred_at=T0,
        account_sid=ACCOUNT,
        composition_sid=CompositionSid.new(),
        room_sid=ROOM,
        audio_sources=["*"],
    )
    store.compositions.add(request.composition_sid)  # the API wrote the row (and its enqueued event)
    await handlers.on_event(request, store, clock, wake)
    assert store.jobs == [request.composition_sid]
    assert store.outbox == []


async def test_other_room_events_are_ignored() -> None:
    store, wake = FakeStore(), Wakes()
    track = TrackAdded(
        **room_base(),
        room_status="in-progress",
        sequence_number=2,
        participant_sid=ParticipantSid.new(),
        participant_identity="alice",
        track_sid=TrackSid.new(),
        track_kind="audio",
        track_name="mic",
    )
    await handlers.on_event(track, store, clock, wake)
    assert store.processed == set()
    assert wake.count == 0
