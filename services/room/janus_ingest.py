"""`POST /internal/janus/events`: Janus's event handler feeds room state (reached via 10.77.0.254:8099 only).

Decisions (docs/rooms.md): `leaving`/`kicked` → participant disconnected; `unpublished` → track-removed;
`hangup` of a WHIP/WHEP handle and a session timeout → that participant disconnected (Janus hangs up a
client that vanished once ICE consent checks fail, `ice_keepalive_conncheck`); `published` only adds
tracks Janus reports for a publisher this process did not set up (WHIP already recorded its tracks with
their names). Media `receiving` on/off is not turned into track-enabled/-disabled: Janus flags a short
network stall the same way as a mute, so those callbacks would lie. Every step is idempotent, as Janus may
repeat events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from fastapi import APIRouter, Request, Response

from libs.events.sids import ParticipantSid, RoomSid
from libs.janus.events import (
    HungUp,
    JanusEvent,
    JanusEventFormatError,
    MediaReceiving,
    ParticipantLeft,
    SessionEnded,
    StreamsPublished,
    StreamsUnpublished,
    parse_events,
)
from services.room.media_sessions import JanusMedia, WhepSession, WhipSession
from services.room.metrics import RoomMetrics
from services.room.service import NewTrack, RoomService

logger = logging.getLogger(__name__)


def _ids(room: str, participant: str) -> tuple[RoomSid, ParticipantSid] | None:
    if RoomSid.is_valid(room) and ParticipantSid.is_valid(participant):
        return RoomSid(room), ParticipantSid(participant)
    return None


class JanusIngest:
    def __init__(
        self,
        service: RoomService,
        media: JanusMedia,
        metrics: RoomMetrics | None = None,
        *,
        media_timeout: float = 20.0,
    ) -> None:
        self.service = service
        self.media = media
        self.metrics = metrics
        self.media_timeout = media_timeout

    async def handle(self, event: JanusEvent) -> None:
        """Apply one Janus event to the room state (see module docstring)."""
        if isinstance(event, ParticipantLeft):
            if (ids := _ids(event.room, event.participant_id)) is not None:
                await self.service.disconnect(*ids, "kicked" if event.kicked else "left")
        elif isinstance(event, StreamsUnpublished):
            if (ids := _ids(event.room, event.participant_id)) is not None:
                await self.service.remove_tracks(*ids)
        elif isinstance(event, StreamsPublished):
            ids = _ids(event.room, event.participant_id)
            if ids is None or any(s.participant_sid == ids[1] for s in self.media.whip.values()):
                return
            tracks = [
                NewTrack(str(uuid.uuid4()), "audio" if s.type == "audio" else "video", s.mid, s.codec)
                for s in event.streams
                if s.type in ("audio", "video")
            ]
            await self.service.add_tracks(*ids, tracks)
        elif isinstance(event, HungUp):
            session = self.media.by_handle(event.meta.session_id, event.meta.handle_id)
            if session is not None:
                await self.handle_gone(session)
        elif isinstance(event, MediaReceiving):
            session = self.media.by_handle(event.meta.session_id, event.meta.handle_id)
            if isinstance(session, WhipSession):
                self._media_state(session, event)
        elif isinstance(event, SessionEnded):
            for session in self.media.on_session(event.meta.session_id):
                await self.handle_gone(session)

    def _media_state(self, session: WhipSession, event: MediaReceiving) -> None:
        """Track which of a publisher's mids Janus receives; all silent for `media_timeout` s = vanished
        (sooner than Janus's own hangup, which waits for ICE consent to fail: about a minute)."""
        mid = event.mid or event.media
        if event.receiving:
            session.silent.discard(mid)
            if not session.media_seen:
                session.media_seen = True
                if self.metrics is not None:
                    self.metrics.join_to_media_seconds.observe(time.monotonic() - session.started)
            if session.silence_check is not None:
                session.silence_check.cancel()
                session.silence_check = None
            return
        session.silent.add(mid)
        if session.silence_check is None and session.mids and session.mids <= session.silent:
            session.silence_check = asyncio.create_task(
                self._expire_silent(session), name="room-media-timeout"
            )

    async def _expire_silent(self, session: WhipSession) -> None:
        await asyncio.sleep(self.media_timeout)
        if self.media.whip.get(session.id) is session and session.mids <= session.silent:
            logger.info(
                "publisher media stopped, disconnecting", extra={"participant_sid": session.participant_sid}
            )
            await self.handle_gone(session)

    async def handle_gone(self, session: WhipSession | WhepSession) -> None:
        """A WHIP/WHEP PeerConnection ended without a DELETE (hangup, session timeout or loss)."""
        if isinstance(session, WhepSession) and not session.owns_participant:
            await self.media.drop_viewer(session)
            return
        await self.service.disconnect(session.room_sid, session.participant_sid, "left")


def ingest_router(ingest: JanusIngest) -> APIRouter:
    router = APIRouter()

    @router.post("/internal/janus/events")
    async def janus_events(request: Request) -> Response:
        try:
            events = parse_events(json.loads(await request.body()))
        except (ValueError, JanusEventFormatError):
            logger.warning("undecodable janus event body")
            return Response(status_code=400)
        for event in events:
            try:
                await ingest.handle(event)
            except Exception:  # one bad event must not stop the batch; Janus does not retry usefully
                logger.exception("janus event not applied", extra={"event": type(event).__name__})
        return Response(status_code=200)

    return router
