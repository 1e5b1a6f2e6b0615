"""The media side of rooms: one Janus VideoRoom per room, and this process's WHIP/WHEP sessions.

`JanusMedia` implements `service.MediaEffects` (create/destroy the Janus room, kick and hang up departed
participants, apply subscribe rules as stream toggles), renegotiates WHEP sessions as the room's tracks
change (Janus subscriber `update`), and keeps the registry of live sessions: Janus handles are objects of
this process, so a session lives where its WHIP/WHEP POST was served.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from libs.events.sids import ParticipantSid, RoomSid
from libs.janus.client import JanusClient
from libs.janus.errors import JanusError
from libs.janus.handles import (
    PublisherHandle,
    StreamInfo,
    StreamToggle,
    SubscriberHandle,
    SubscribeStream,
    SubscriptionUpdate,
)
from services.room.domain import janus_codecs
from services.room.records import ParticipantRecord, RoomRecord, TrackRecord
from services.room.rules import include_all, is_subscribed
from services.room.store import RoomStore

logger = logging.getLogger(__name__)

# Janus VideoRoom error codes we tolerate during cleanup.
NO_SUCH_ROOM = 426
ROOM_EXISTS = 427
NO_SUCH_FEED = 428


@dataclass
class WhipSession:
    id: str
    room_sid: RoomSid
    participant_sid: ParticipantSid
    identity: str
    handle: PublisherHandle
    started: float = 0.0  # time.monotonic() when the WHIP POST arrived
    mids: frozenset[str] = frozenset()  # the published m-lines
    media_seen: bool = False
    silent: set[str] = field(default_factory=set)  # mids Janus reports as not receiving
    silence_check: asyncio.Task[None] | None = None


@dataclass
class WhepSession:
    id: str
    room_sid: RoomSid
    participant_sid: ParticipantSid
    identity: str
    handle: SubscriberHandle
    owns_participant: bool  # a viewer-only participant this session created
    streams: tuple[StreamInfo, ...] = ()
    track_sids: frozenset[str] = field(default_factory=frozenset)
    started: bool = False
    generation: int = 0  # how many offers this session has made (the first is 0); the ETag's suffix
    negotiating: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def etag(self) -> str:
        return f'"{self.id}.{self.generation}"'


class JanusMedia:
    """Janus rooms and WHIP/WHEP sessions of this process (see module docstring)."""

    def __init__(self, janus: JanusClient, store: RoomStore, *, publisher_bitrate: int = 1_000_000) -> None:
        self.janus = janus
        self.store = store
        self.publisher_bitrate = publisher_bitrate
        self.whip: dict[str, WhipSession] = {}
        self.whep: dict[str, WhepSession] = {}
        self._started = False
        self._start_lock = asyncio.Lock()
        self._rooms: set[str] = set()  # Janus rooms known to exist (created or seen by this process)

    async def ready(self) -> JanusClient:
        """The Janus client, started on first use (Janus may come up after us)."""
        if not self._started:
            async with self._start_lock:
                if not self._started:
                    await self.janus.start()
                    self._started = True
        return self.janus

    async def close(self) -> None:
        if self._started:
            await self.janus.close()

    # ------------------------------------------------------------------ MediaEffects

    async def room_opened(self, room: RoomRecord) -> None:
        try:
            await self.ensure_room(room)
        except JanusError:
            # Created lazily at the first join instead; the REST state is already true.
            logger.warning("janus room not created at room creation", extra={"room_sid": room.sid})

    async def ensure_room(self, room: RoomRecord) -> None:
        """Create the room's Janus VideoRoom unless this process already did (427 means it exists)."""
        if room.sid in self._rooms:
            return
        janus = await self.ready()
        video, audio = janus_codecs(room.spec)
        try:
            await janus.create_room(
                room.sid,
                publishers=room.spec.max_participants,
                videocodec=video,
                audiocodec=audio,
                bitrate=self.publisher_bitrate,
                secret=room.janus_secret,
            )
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                raise
        self._rooms.add(room.sid)

    def forget_rooms(self) -> None:
        """Janus lost our session (e.g. it restarted): its rooms may be gone, create them again on use."""
        self._rooms.clear()

    async def room_ended(self, room: RoomRecord) -> None:
        self._rooms.discard(room.sid)
        for session in [s for s in self.whip.values() if s.room_sid == room.sid]:
            await self._drop_whip(session, leave=False)
        for viewer in [s for s in self.whep.values() if s.room_sid == room.sid]:
            await self._drop_whep(viewer, leave=False)
        try:
            await (await self.ready()).destroy_room(room.sid, secret=room.janus_secret)
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM:
                raise
        logger.info("janus room destroyed", extra={"room_sid": room.sid})

    async def participants_left(
        self, room: RoomRecord, sids: Sequence[ParticipantSid], *, kick: bool
    ) -> None:
        for sid in sids:
            if kick:
                try:
                    await (await self.ready()).kick(room.sid, sid, secret=room.janus_secret)
                except JanusError as exc:
                    if exc.code not in (NO_SUCH_ROOM, NO_SUCH_FEED):
                        logger.warning("janus kick failed", extra={"participant_sid": sid, "code": exc.code})
            for session in [s for s in self.whip.values() if s.participant_sid == sid]:
                await self._drop_whip(session, leave=not kick)
            for viewer in [s for s in self.whep.values() if s.participant_sid == sid]:
                await self._drop_whep(viewer, leave=True)

    async def subscribe_rules_changed(self, room: RoomRecord, participant: ParticipantRecord) -> None:
        for viewer in [s for s in self.whep.values() if s.participant_sid == participant.sid]:
            await self.apply_rules(viewer, participant)

    async def orphans(self, before: datetime) -> list[tuple[RoomSid, ParticipantSid]]:
        """Participants the database calls connected but that have no session in this process and are not
        publishing in Janus: their WHIP/WHEP sessions belonged to an earlier process of this service.
        Only participants that joined before `before` (this process's start) are considered.
        (Media sessions live in one room-service process; see docs/rooms.md.)"""
        janus = await self.ready()
        found: list[tuple[RoomSid, ParticipantSid]] = []
        local = {s.participant_sid for s in self.sessions()}
        for room_sid, participants in (await self.store.connected_by_room(before)).items():
            try:
                in_janus = {p.id for p in await janus.list_participants(room_sid)}
            except JanusError as exc:
                if exc.code != NO_SUCH_ROOM:
                    raise
                in_janus = set()
            found.extend((room_sid, p) for p in participants if p not in local and p not in in_janus)
        return found

    # ------------------------------------------------------------------ WHEP helpers

    async def apply_rules(self, viewer: WhepSession, participant: ParticipantRecord) -> None:
        """Pause the subscription's streams the subscribe rules exclude, resume the others."""
        rules = participant.subscribe_rules or include_all()
        tracks = {(t.participant_sid, t.mid): t for t in await self.store.room_tracks(viewer.room_sid)}
        publishers = await self.store.participants_by_sid(sorted({str(p) for p, _ in tracks}))
        toggles: list[StreamToggle] = []
        for stream in viewer.streams:
            if stream.feed_id is None or stream.feed_mid is None:
                continue
            track = tracks.get((ParticipantSid(stream.feed_id), stream.feed_mid))
            publisher = publishers.get(stream.feed_id)
            if track is None or publisher is None:
                continue
            toggles.append(StreamToggle(stream.mid, is_subscribed(track.ref(publisher.identity), rules)))
        if toggles:
            await viewer.handle.configure(toggles)

    async def ready_feeds(self, room_sid: RoomSid) -> frozenset[str] | None:
        """Participants whose feed Janus can serve now (publishing with media set up), or None when Janus
        cannot tell (then nothing is filtered). A WHIP publisher's tracks are in the database before its
        PeerConnection is up, and Janus refuses a subscription that names a feed which is not (428)."""
        try:
            found = await (await self.ready()).list_participants(room_sid)
        except JanusError:
            return None
        return frozenset(p.id for p in found if p.publisher)

    async def renegotiate(
        self,
        viewer: WhepSession,
        participant: ParticipantRecord,
        tracks: Sequence[TrackRecord],
        ready: frozenset[str] | None = None,
    ) -> str | None:
        """Bring the subscription in line with the room's published `tracks` (of others) on the same
        PeerConnection: subscribe to the new ones whose feed is `ready` (all when None), unsubscribe the
        streams whose track is gone, then pause what the subscribe rules exclude. Returns Janus's new
        offer, or None when nothing can change now (the session stays stale while a feed is not ready).
        Raises JanusError (e.g. 428 when a feed went away meanwhile)."""
        others = [t for t in tracks if t.participant_sid != viewer.participant_sid]
        carried = {(s.feed_id, s.feed_mid): s for s in viewer.streams if s.feed_id is not None}
        wanted = {(str(t.participant_sid), t.mid): t for t in others}
        addable = [
            t
            for key, t in wanted.items()
            if key not in carried and (ready is None or str(t.participant_sid) in ready)
        ]
        new = [SubscribeStream(feed=t.participant_sid, mid=t.mid) for t in addable]
        gone = [s.mid for key, s in carried.items() if key not in wanted]
        current = frozenset(t.sid for key, t in wanted.items() if key in carried) | {t.sid for t in addable}
        if not new and not gone:
            viewer.track_sids = current
            return None
        update: SubscriptionUpdate = await viewer.handle.update(new, gone)
        viewer.streams = update.streams
        viewer.track_sids = current
        await self.apply_rules(viewer, participant)
        if update.offer_sdp is None:
            return None
        viewer.generation += 1
        viewer.started = False
        logger.info(
            "whep session renegotiated",
            extra={
                "participant_sid": viewer.participant_sid,
                "added": len(new),
                "removed": len(gone),
                "generation": viewer.generation,
            },
        )
        return update.offer_sdp

    def viewer_is_stale(self, viewer: WhepSession, tracks: Sequence[TrackRecord]) -> bool:
        """True when the room's published tracks (of others) differ from what the subscription carries."""
        others = frozenset(t.sid for t in tracks if t.participant_sid != viewer.participant_sid)
        return others != viewer.track_sids

    # ------------------------------------------------------------------ registry

    def new_id(self) -> str:
        return secrets.token_urlsafe(16)

    def sessions(self) -> list[WhipSession | WhepSession]:
        return [*self.whip.values(), *self.whep.values()]

    def by_handle(self, session_id: int | None, handle_id: int | None) -> WhipSession | WhepSession | None:
        for s in self.sessions():
            if s.handle.handle_id == handle_id and s.handle.session_id == session_id:
                return s
        return None

    def on_session(self, session_id: int | None) -> list[WhipSession | WhepSession]:
        return [s for s in self.sessions() if s.handle.session_id == session_id]

    async def _drop_whip(self, session: WhipSession, *, leave: bool) -> None:
        self.whip.pop(session.id, None)
        if session.silence_check is not None and session.silence_check is not asyncio.current_task():
            session.silence_check.cancel()
        await _close(session.handle, leave=leave)

    async def drop_viewer(self, viewer: WhepSession) -> None:
        """End a WHEP session (leave + detach)."""
        await self._drop_whep(viewer, leave=True)

    async def _drop_whep(self, viewer: WhepSession, *, leave: bool) -> None:
        self.whep.pop(viewer.id, None)
        await _close(viewer.handle, leave=leave)


async def _close(handle: PublisherHandle | SubscriberHandle, *, leave: bool) -> None:
    """Leave (optional) and detach a handle; Janus may already have dropped it."""
    try:
        if leave:
            await handle.leave()
        await handle.detach()
    except JanusError as exc:
        logger.info("janus handle already gone", extra={"code": exc.code})
