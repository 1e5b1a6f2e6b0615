"""One async function per consumed event: the room/recording projections and the job intake.

Each handler marks the event processed in the same transaction as its effects, so redeliveries are no-ops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from libs.events.base import Event
from libs.events.models import (
    CompositionEnqueued,
    CompositionRequested,
    RecordingCompleted,
    RecordingDeleted,
    RecordingEvent,
    RecordingFailed,
    RecordingStarted,
    RoomCreated,
    RoomEnded,
    RoomRecordingsFinalized,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class ProjectionStore(Protocol):
    """What the handlers need of the store (services.compositor.store.CompositionStore in production).
    ``conn`` is the transaction's connection, opaque to the handlers."""

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def mark_processed(self, conn: Any, event_id: UUID) -> bool: ...

    async def add_events(self, conn: Any, events: Sequence[Event]) -> None: ...

    async def upsert_room(
        self,
        conn: Any,
        room_sid: str,
        account_sid: str,
        room_name: str | None,
        status: str,
        end_time: datetime | None,
    ) -> None: ...

    async def upsert_recording(self, conn: Any, values: dict[str, object]) -> None: ...

    async def delete_recording(self, conn: Any, recording_sid: str) -> None: ...

    async def finalize_room(self, conn: Any, room_sid: str, account_sid: str, room_name: str) -> None: ...

    async def insert_requested(self, conn: Any, event: CompositionRequested, now: datetime) -> bool: ...


async def on_room_created(event: RoomCreated, store: ProjectionStore) -> None:
    async with store.transaction() as conn:
        if not await store.mark_processed(conn, event.event_id):
            return
        await store.upsert_room(conn, event.room_sid, event.account_sid, event.room_name, "in-progress", None)


async def on_room_ended(event: RoomEnded, store: ProjectionStore) -> None:
    async with store.transaction() as conn:
        if not await store.mark_processed(conn, event.event_id):
            return
        status = "failed" if event.room_status == "failed" else "completed"
        await store.upsert_room(
            conn, event.room_sid, event.account_sid, event.room_name, status, event.end_time
        )


def _recording_values(event: RecordingEvent, status: str) -> dict[str, object]:
    values: dict[str, object] = {
        "recording_sid": event.recording_sid,
        "room_sid": event.room_sid,
        "account_sid": event.account_sid,
        "participant_sid": event.participant_sid,
        "source_sid": event.source_sid,
        "track_name": event.track_name,
        "kind": event.kind,
        "codec": event.codec,
        "container": event.container,
        "status": status,
        "offset_ms": event.offset_ms,
    }
    if isinstance(event, RecordingCompleted):
        values.update(
            object_key=event.object_key,
            duration_s=event.duration_s,
            size_bytes=event.size_bytes,
            start_time=event.start_time,
            end_time=event.end_time,
        )
    return values


async def on_recording(event: RecordingEvent, store: ProjectionStore) -> None:
    """RecordingStarted/Completed/Failed → the recordings projection (room row created if unseen)."""
    status = {RecordingStarted: "started", RecordingCompleted: "completed", RecordingFailed: "failed"}.get(
        type(event)
    )
    if status is None:
        return
    async with store.transaction() as conn:
        if not await store.mark_processed(conn, event.event_id):
            return
        await store.upsert_room(conn, event.room_sid, event.account_sid, event.room_name, "in-progress", None)
        await store.upsert_recording(conn, _recording_values(event, status))


async def on_recording_deleted(event: RecordingDeleted, store: ProjectionStore) -> None:
    """A deleted recording's media is no longer composable (later compositions fail with 53628 when
    nothing else is left)."""
    async with store.transaction() as conn:
        if not await store.mark_processed(conn, event.event_id):
            return
        await store.delete_recording(conn, event.recording_sid)


async def on_recordings_finalized(event: RoomRecordingsFinalized, store: ProjectionStore) -> None:
    """The room's recording set is complete: its waiting jobs become claimable."""
    async with store.transaction() as conn:
        if not await store.mark_processed(conn, event.event_id):
            return
        await store.finalize_room(conn, event.room_sid, event.account_sid, event.room_name)


async def on_composition_requested(
    event: CompositionRequested, store: ProjectionStore, now: Clock, wake: Callable[[], None]
) -> None:
    """Durably queue the job. A request whose composition row does not exist yet came from a hook: the row
    is created from the event and composition-enqueued is sent to the hook's StatusCallback."""
    async with store.transaction() as conn:
        if not await store.mark_processed(conn, event.event_id):
            return
        created = await store.insert_requested(conn, event, now())
        if created:
            await store.add_events(
                conn,
                [
                    CompositionEnqueued(
                        occurred_at=now(),
                        account_sid=event.account_sid,
                        composition_sid=event.composition_sid,
                        room_sid=event.room_sid,
                        hook_sid=event.hook_sid,
                        hook_friendly_name=event.hook_friendly_name,
                        status_callback=event.status_callback,
                        status_callback_method=event.status_callback_method,
                    )
                ],
            )
    logger.info(
        "composition job queued",
        extra={"composition_sid": str(event.composition_sid), "from_hook": event.hook_sid is not None},
    )
    wake()


async def on_event(event: Event, store: ProjectionStore, now: Clock, wake: Callable[[], None]) -> None:
    """The consumer's handler: dispatch by type; other room events are not needed here."""
    if isinstance(event, RoomCreated):
        await on_room_created(event, store)
    elif isinstance(event, RoomEnded):
        await on_room_ended(event, store)
        wake()
    elif isinstance(event, RecordingEvent):
        await on_recording(event, store)
        wake()
    elif isinstance(event, RecordingDeleted):
        await on_recording_deleted(event, store)
    elif isinstance(event, RoomRecordingsFinalized):
        await on_recordings_finalized(event, store)
        wake()
    elif isinstance(event, CompositionRequested):
        await on_composition_requested(event, store, now, wake)
