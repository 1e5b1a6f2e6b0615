"""WHIP (`/whip/{room}`) and WHEP (`/whep/{room}`) with Twilio Access Tokens, through Janus.

`{room}` is the room's UniqueName or RM SID. Every request carries `Authorization: Bearer <Access Token>`;
the token's identity becomes the participant and its room grant (when present) must name this room (by
name or SID). Errors are Twilio JSON bodies: 401 for a bad token (201xx codes), 403 for a wrong room.
The exact flows are in docs/rooms.md ("WHIP/WHEP for client authors").
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from libs.auth.access_token import VideoGrant, verify_access_token
from libs.auth.errors import AccessTokenError
from libs.auth.store import IdentityStore
from libs.events.sids import RoomSid
from libs.janus.errors import JanusError
from libs.janus.handles import PublisherHandle, SubscriberHandle, SubscribeStream
from libs.twilio.dates import utcnow
from libs.twilio.errors import TwilioError
from services.room import domain
from services.room.lifecycle import validate_identity
from services.room.media_sessions import JanusMedia, WhepSession, WhipSession
from services.room.metrics import RoomMetrics
from services.room.records import RoomRecord
from services.room.sdp import SdpError, parse_sdp
from services.room.service import NewTrack, RoomService
from services.room.tracks import check_publishable, name_tracks, offered_tracks

logger = logging.getLogger(__name__)
_Session = TypeVar("_Session", WhipSession, WhepSession)

SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"


def _error(status: int, code: int, message: str) -> TwilioError:
    return TwilioError(status, code, message)


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _error(401, 20101, "An Access Token is required: Authorization: Bearer <token>")
    return token.strip()


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _candidates(fragment: str) -> list[dict[str, object]]:
    """ICE candidates of a trickle-ice-sdpfrag body (RFC 8840), with the mid they belong to."""
    found: list[dict[str, object]] = []
    mid: str | None = None
    index = -1
    for line in fragment.splitlines():
        line = line.strip()
        if line.startswith("m="):
            index += 1
        elif line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            found.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": max(index, 0)})
    return found


class MediaApi:
    """The WHIP/WHEP handlers, bound to the service, the Janus media side and the identity store."""

    def __init__(
        self,
        service: RoomService,
        media: JanusMedia,
        identity: IdentityStore,
        metrics: RoomMetrics,
        *,
        ad_hoc_rooms: bool,
    ) -> None:
        self.service = service
        self.media = media
        self.identity = identity
        self.ad_hoc_rooms = ad_hoc_rooms
        self.metrics = metrics

    async def grant(self, request: Request, room_ref: str) -> VideoGrant:
        try:
            grant = await verify_access_token(_bearer(request), self.identity.api_key, utcnow())
        except AccessTokenError as exc:
            raise _error(401, exc.code, exc.message) from exc
        if grant.room is not None and grant.room != room_ref:
            raise _error(403, 20403, "The Access Token does not grant access to this room")
        validate_identity(grant.identity)
        return grant

    async def room_for(self, grant: VideoGrant, room_ref: str, now: datetime) -> RoomRecord:
        """The in-progress room named by `room_ref`, created ad hoc when allowed and unknown."""
        try:
            room = await self.service.resolve(grant.account_sid, room_ref)
        except TwilioError:
            if RoomSid.is_valid(room_ref) or not await self._ad_hoc_allowed(grant):
                raise
            spec = domain.build_room_spec(domain.RoomRequest(unique_name=room_ref))
            try:
                room = await self.service.create_room(grant.account_sid, spec, ad_hoc=True)
            except TwilioError:  # created concurrently by another join
                room = await self.service.resolve(grant.account_sid, room_ref)
        if grant.room is not None and grant.room not in (room.sid, room.name):
            raise _error(403, 20403, "The Access Token does not grant access to this room")
        if room.status != "in-progress":
            raise _error(400, 53118, "Room is no longer in progress")
        return room

    async def _ad_hoc_allowed(self, grant: VideoGrant) -> bool:
        account = await self.identity.get_account(grant.account_sid)
        if account is None:
            return False
        return bool(account.settings.get("ad_hoc_rooms", self.ad_hoc_rooms))

    async def whip_session(self, request: Request, room_ref: str, session_id: str) -> WhipSession:
        """The WHIP session a request names, its Access Token checked (404 unknown, 403 not its own)."""
        grant = await self.grant(request, room_ref)
        return _owned(grant, self.media.whip.get(session_id), "WHIP")

    async def whep_session(self, request: Request, room_ref: str, session_id: str) -> WhepSession:
        """The WHEP session a request names, its Access Token checked (404 unknown, 403 not its own)."""
        grant = await self.grant(request, room_ref)
        return _owned(grant, self.media.whep.get(session_id), "WHEP")

    # ------------------------------------------------------------------ WHIP

    async def whip_post(self, room_ref: str, request: Request) -> Response:
        started = time.monotonic()
        grant = await self.grant(request, room_ref)
        if _content_type(request) != SDP:
            raise _error(415, 20415, "WHIP needs Content-Type: application/sdp with the SDP offer")
        try:
            offer_text = (await request.body()).decode("utf-8")
            offer = parse_sdp(offer_text)
        except (SdpError, UnicodeDecodeError) as exc:
            raise _error(400, 53402, "The SDP offer is invalid") from exc
        room = await self.room_for(grant, room_ref, utcnow())
        offered = offered_tracks(offer)
        published = await self.service.store.room_tracks(room.sid)
        check_publishable(
            offered,
            audio_only=room.spec.audio_only,
            room_published=len(published),
            max_concurrent_published_tracks=room.spec.max_concurrent_published_tracks,
        )
        query = dict(request.query_params)
        named = name_tracks(offered, query, (), _new_name)
        room, participant = await self.service.connect(room.sid, grant.identity)
        try:
            await self.media.ensure_room(room)
            handle = await (await self.media.ready()).publisher()
        except JanusError as exc:
            await self.service.disconnect(room.sid, participant.sid, "left")
            raise _error(502, 53000, "The media server is unavailable") from exc
        session = WhipSession(participant.sid, room.sid, participant.sid, grant.identity, handle, started)
        session.mids = frozenset(track.mid for track, _ in named)
        self.media.whip[session.id] = session
        try:
            await handle.join(room.sid, participant_id=participant.sid, display=grant.identity)
            answer = await handle.publish(
                offer_text,
                display=grant.identity,
                descriptions=[(track.mid, name) for track, name in named],
            )
        except JanusError as exc:
            self.media.whip.pop(session.id, None)
            await self.service.disconnect(room.sid, participant.sid, "left")
            await _detach_quietly(handle)
            raise _error(400, 53402, "The media server refused the offer") from exc
        await _no_more_candidates(handle, offer_text)
        codecs = {s.mid: s.codec for s in answer.streams}
        await self.service.add_tracks(
            room.sid,
            participant.sid,
            [NewTrack(name, track.kind, track.mid, codecs.get(track.mid)) for track, name in named],
        )
        self.metrics.whip_post_seconds.observe(time.monotonic() - started)
        self.metrics.media_sessions.labels("whip").inc()
        location = f"/whip/{quote(room_ref, safe='')}/sessions/{session.id}"
        return Response(
            answer.answer_sdp,
            status_code=201,
            media_type=SDP,
            headers={"Location": location, "ETag": f'"{session.id}"', "X-Participant-Sid": participant.sid},
        )

    async def whip_patch(self, room_ref: str, session_id: str, request: Request) -> Response:
        session = await self.whip_session(request, room_ref, session_id)
        if _content_type(request) != TRICKLE:
            raise _error(415, 20415, "PATCH needs Content-Type: application/trickle-ice-sdpfrag")
        text = (await request.body()).decode("utf-8", errors="replace")
        await session.handle.trickle(_candidates(text), completed="a=end-of-candidates" in text)
        return Response(status_code=204)

    async def whip_delete(self, room_ref: str, session_id: str, request: Request) -> Response:
        session = await self.whip_session(request, room_ref, session_id)
        await self.service.disconnect(session.room_sid, session.participant_sid, "left")
        return Response(status_code=200)

    # ------------------------------------------------------------------ WHEP

    async def whep_post(self, room_ref: str, request: Request) -> Response:
        grant = await self.grant(request, room_ref)
        if (await request.body()).strip():
            raise _error(
                415,
                20415,
                "This WHEP endpoint makes the offer: POST an empty body, then PATCH the Location with your "
                "SDP answer (Content-Type: application/sdp)",
            )
        room = await self.room_for(grant, room_ref, utcnow())
        existing = await self.service.store.participant(room.sid, grant.identity)
        owns = existing is None or existing.status != "connected"
        own_sid = None if owns or existing is None else existing.sid
        tracks = [t for t in await self.service.store.room_tracks(room.sid) if t.participant_sid != own_sid]
        if not tracks:
            raise _error(409, 20409, "No track is published in this room yet; retry later")
        # Janus subscribes before a viewer-only participant connects, so a refused attempt (409, retried by
        # the client) emits no participant-connected/-disconnected callbacks.
        try:
            await self.media.ensure_room(room)
        except JanusError as exc:
            raise _error(502, 53000, "The media server is unavailable") from exc
        # Feeds whose PeerConnection is not up yet are left out: the session is then stale and picks
        # them up with a renegotiation, instead of the whole POST being refused.
        ready = await self.media.ready_feeds(room.sid)
        tracks = [t for t in tracks if ready is None or t.participant_sid in ready]
        if not tracks:
            raise _error(409, 20409, "The room's tracks are not available yet; retry later")
        try:
            handle = await (await self.media.ready()).subscriber()
        except JanusError as exc:
            raise _error(502, 53000, "The media server is unavailable") from exc
        try:
            sub = await handle.join(
                room.sid, [SubscribeStream(feed=t.participant_sid, mid=t.mid) for t in tracks]
            )
        except JanusError as exc:
            logger.info(
                "whep subscribe refused by janus",
                extra={"room_sid": room.sid, "janus_code": exc.code, "reason": exc.reason},
            )
            await _detach_quietly(handle)
            raise _error(409, 20409, "The room's tracks are not available yet; retry later") from exc
        if owns:
            try:
                room, participant = await self.service.connect(room.sid, grant.identity)
            except BaseException:
                await _detach_quietly(handle)
                raise
        else:
            assert existing is not None  # noqa: S101  # owns is False only when it exists
            participant = existing
        viewer = WhepSession(self.media.new_id(), room.sid, participant.sid, grant.identity, handle, owns)
        viewer.streams = sub.streams
        viewer.track_sids = frozenset(t.sid for t in tracks)
        self.media.whep[viewer.id] = viewer
        self.metrics.media_sessions.labels("whep").inc()
        await self.media.apply_rules(viewer, participant)
        return Response(
            sub.offer_sdp,
            status_code=201,
            media_type=SDP,
            headers={
                "Location": f"/whep/{quote(room_ref, safe='')}/sessions/{viewer.id}",
                "ETag": viewer.etag,
                "X-Participant-Sid": participant.sid,
            },
        )

    async def whep_renegotiate(self, room_ref: str, session_id: str, request: Request) -> Response:
        """`POST {session}` with an empty body: a new offer on the same PeerConnection that carries the
        room's current tracks (200 application/sdp, new ETag), or 204 when the session is up to date.
        The client PATCHes its answer as after the first offer."""
        viewer = await self.whep_session(request, room_ref, session_id)
        if (await request.body()).strip():
            raise _error(
                415,
                20415,
                "Renegotiation is server-offer too: POST an empty body to the session, then PATCH your "
                "SDP answer (Content-Type: application/sdp)",
            )
        async with viewer.negotiating:
            participant = await self.service.store.participant(viewer.room_sid, viewer.participant_sid)
            if participant is None or participant.status != "connected":
                raise _error(404, 20404, "No such WHEP session")
            tracks = await self.service.store.room_tracks(viewer.room_sid)
            ready = await self.media.ready_feeds(viewer.room_sid)
            try:
                offer = await self.media.renegotiate(viewer, participant, tracks, ready)
            except JanusError as exc:
                logger.info(
                    "whep renegotiation refused by janus",
                    extra={
                        "participant_sid": viewer.participant_sid,
                        "janus_code": exc.code,
                        "reason": exc.reason,
                    },
                )
                raise _error(409, 20409, "The room's tracks are not available yet; retry later") from exc
            if offer is None and self.media.viewer_is_stale(viewer, tracks):
                # A new publisher's media is not set up in Janus yet: nothing to offer now.
                raise _error(409, 20409, "The room's new tracks are not available yet; retry later")
        if offer is None:
            return Response(status_code=204, headers={"ETag": viewer.etag})
        return Response(offer, status_code=200, media_type=SDP, headers={"ETag": viewer.etag})

    async def whep_patch(self, room_ref: str, session_id: str, request: Request) -> Response:
        viewer = await self.whep_session(request, room_ref, session_id)
        content_type = _content_type(request)
        text = (await request.body()).decode("utf-8", errors="replace")
        if content_type == TRICKLE:
            await viewer.handle.trickle(_candidates(text), completed="a=end-of-candidates" in text)
            return Response(status_code=204)
        if content_type != SDP:
            raise _error(415, 20415, "PATCH needs Content-Type: application/sdp with the SDP answer")
        if_match = request.headers.get("if-match")
        if if_match is not None and if_match.strip() not in ("*", viewer.etag):
            raise _error(
                412, 20412, "The answer is for an older offer of this session; answer the latest one"
            )
        try:
            await viewer.handle.start(text)
        except JanusError as exc:
            raise _error(400, 53402, "The media server refused the answer") from exc
        viewer.started = True
        await _no_more_candidates(viewer.handle, text)
        return Response(status_code=204, headers={"ETag": viewer.etag})

    async def whep_get(self, room_ref: str, session_id: str, request: Request) -> Response:
        viewer = await self.whep_session(request, room_ref, session_id)
        tracks = await self.service.store.room_tracks(viewer.room_sid)
        return JSONResponse(
            {
                "participant_sid": viewer.participant_sid,
                "tracks": sorted(viewer.track_sids),
                "stale": self.media.viewer_is_stale(viewer, tracks),
            }
        )

    async def whep_delete(self, room_ref: str, session_id: str, request: Request) -> Response:
        viewer = await self.whep_session(request, room_ref, session_id)
        await self.media.drop_viewer(viewer)
        if viewer.owns_participant:
            await self.service.disconnect(viewer.room_sid, viewer.participant_sid, "left")
        return Response(status_code=200)


def _owned(grant: VideoGrant, session: _Session | None, kind: str) -> _Session:
    if session is None:
        raise _error(404, 20404, f"No such {kind} session")
    if grant.identity != session.identity:
        raise _error(403, 20403, "The Access Token's identity does not own this session")
    return session


async def _no_more_candidates(handle: PublisherHandle | SubscriberHandle, sdp: str) -> None:
    """Tell Janus that a client whose SDP carries `a=end-of-candidates` will trickle nothing more. Janus
    then hangs up 5 s after ICE consent fails (a vanished peer) instead of 15 s: it no longer waits for
    candidates that never come."""
    if "a=end-of-candidates" not in sdp:
        return
    try:
        await handle.trickle([], completed=True)
    except JanusError as exc:
        logger.info("janus refused end-of-candidates", extra={"janus_code": exc.code})


def _new_name() -> str:
    return str(uuid.uuid4())


async def _detach_quietly(handle: object) -> None:
    detach = getattr(handle, "detach", None)
    if detach is None:
        return
    try:
        await detach()
    except JanusError:
        logger.info("janus handle already gone")


def media_router(api: MediaApi) -> APIRouter:
    """The WHIP/WHEP routes (public, reached through the edge)."""
    router = APIRouter()

    @router.post("/whip/{room}")
    async def whip_post(room: str, request: Request) -> Response:
        return await api.whip_post(room, request)

    @router.patch("/whip/{room}/sessions/{session_id}")
    async def whip_patch(room: str, session_id: str, request: Request) -> Response:
        return await api.whip_patch(room, session_id, request)

    @router.delete("/whip/{room}/sessions/{session_id}")
    async def whip_delete(room: str, session_id: str, request: Request) -> Response:
        return await api.whip_delete(room, session_id, request)

    @router.post("/whep/{room}")
    async def whep_post(room: str, request: Request) -> Response:
        return await api.whep_post(room, request)

    @router.post("/whep/{room}/sessions/{session_id}")
    async def whep_renegotiate(room: str, session_id: str, request: Request) -> Response:
        return await api.whep_renegotiate(room, session_id, request)

    @router.patch("/whep/{room}/sessions/{session_id}")
    async def whep_patch(room: str, session_id: str, request: Request) -> Response:
        return await api.whep_patch(room, session_id, request)

    @router.get("/whep/{room}/sessions/{session_id}")
    async def whep_get(room: str, session_id: str, request: Request) -> Response:
        return await api.whep_get(room, session_id, request)

    @router.delete("/whep/{room}/sessions/{session_id}")
    async def whep_delete(room: str, session_id: str, request: Request) -> Response:
        return await api.whep_delete(room, session_id, request)

    return router
