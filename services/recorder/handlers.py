"""The recorder's room.events handlers: keep the room/track projection the supervisor plans from.

Each handler records the event as processed and applies it in one transaction, then wakes the supervisor
(``services.recorder.sessions``), which starts and stops captures. Recording facts are emitted there, not
here: a capture's outcome is only known once its media is finalized.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from libs.events.base import Event
from libs.events.models import (
    ParticipantDisconnected,
    RecordingRulesUpdated,
    RoomCreated,
    RoomEnded,
    TrackAdded,
    TrackRemoved,
)
from libs.rooms.rules import from_event_rules
from services.recorder.domain import RoomView, TrackView
from services.recorder.store import RecorderStore

logger = logging.getLogger(__name__)
CONSUMER = "recorder"


def room_view(event: RoomCreated) -> RoomView:
    return RoomView(
        room_sid=event.room_sid,
        account_sid=event.account_sid,
        room_name=event.room_name,
        room_type=event.room_type,
        status_callback=event.status_callback,
        status_callback_method=event.status_callback_method,
        rules=from_event_rules(event.recording_rules),
    )


def track_view(event: TrackAdded) -> TrackView:
    return TrackView(
        track_sid=event.track_sid,
        room_sid=event.room_sid,
        participant_sid=event.participant_sid,
        participant_identity=event.participant_identity,
        track_name=event.track_name,
        kind=event.track_kind,
        codec=event.codec.upper() if event.codec else None,
        janus_publisher_id=event.janus_publisher_id,
        stream_mid=event.stream_mid,
    )


async def handle(event: Event, *, store: RecorderStore, wake: Callable[[], None]) -> None:
    """Apply one room.events fact; events the recorder does not need are only marked processed."""
    async with store.event_transaction(CONSUMER, event) as conn:
        if conn is None:
            return  # redelivery: already applied
        if isinstance(event, RoomCreated):
            await store.upsert_room(conn, room_view(event), event.occurred_at)
        elif isinstance(event, RecordingRulesUpdated):
            if not await store.set_rules(conn, event.room_sid, from_event_rules(event.recording_rules)):
                logger.warning("rules for an unknown room", extra={"room_sid": event.room_sid})
        elif isinstance(event, TrackAdded):
            await store.upsert_track(conn, track_view(event))
        elif isinstance(event, TrackRemoved):
            await store.unpublish_track(conn, event.track_sid)
        elif isinstance(event, ParticipantDisconnected):
            await store.unpublish_participant(conn, event.participant_sid)
        elif isinstance(event, RoomEnded):
            await store.end_room(conn, event.room_sid, event.end_time)
        else:
            return
    wake()
