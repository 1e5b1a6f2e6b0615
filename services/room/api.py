"""`/v1/Rooms…`: Twilio's Rooms, Participants, Published/Subscribed Tracks, Subscribe Rules and Recording
Rules resources. The WHIP/WHEP media endpoints, the Janus event sink and the demo page are mounted here
too (from `media_api.py`, `janus_ingest.py`, `web_page.py`), because the bootstrap picks up one router.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from libs.auth.basic import Principal, request_principal
from libs.events.sids import RoomSid
from libs.twilio.dates import iso8601, iso8601_or_none
from libs.twilio.errors import bad_request, not_found
from libs.twilio.forms import Form
from libs.twilio.paging import PageRequest, encode_token, page_body
from libs.twilio.urls import public_base_url
from services.room import domain
from services.room.records import ParticipantRecord, RoomRecord, TrackRecord
from services.room.rules import include_all, parse_recording_rules, parse_subscribe_rules, rules_to_json
from services.room.store import ParticipantFilter, RoomFilter
from services.room.wiring import build_room_side

if TYPE_CHECKING:
    from libs.observability.bootstrap import ServiceContext

MAX_PAGE_SIZE = 1000
PARAM_CODE = 20001
Caller = Annotated[Principal, Depends(request_principal)]
ROOM_STATUSES = ("in-progress", "completed", "failed")
PARTICIPANT_STATUSES = ("connected", "disconnected", "reconnecting")


# ---------------------------------------------------------------------- resource bodies


def room_resource(room: RoomRecord, base: str) -> dict[str, Any]:
    spec = room.spec
    url = f"{base}/v1/Rooms/{room.sid}"
    return {
        "sid": room.sid,
        "status": room.status,
        "date_created": iso8601(room.date_created),
        "date_updated": iso8601(room.date_updated),
        "account_sid": room.account_sid,
        "enable_turn": True,
        "unique_name": room.name,
        "status_callback": spec.status_callback,
        "status_callback_method": spec.status_callback_method,
        "end_time": iso8601_or_none(room.end_time),
        "duration": room.duration,
        "type": spec.type,
        "max_participants": spec.max_participants,
        "max_participant_duration": spec.max_participant_duration,
        "max_concurrent_published_tracks": spec.max_concurrent_published_tracks,
        "record_participants_on_connect": spec.record_participants_on_connect,
        "video_codecs": list(spec.video_codecs),
        "media_region": spec.media_region,
        "audio_only": spec.audio_only,
        "empty_room_timeout": spec.empty_room_timeout,
        "unused_room_timeout": spec.unused_room_timeout,
        "large_room": spec.large_room,
        "url": url,
        "links": {
            "participants": f"{url}/Participants",
            "recordings": f"{url}/Recordings",
            "recording_rules": f"{url}/RecordingRules",
            "transcriptions": f"{url}/Transcriptions",
        },
    }


def participant_resource(p: ParticipantRecord, base: str, *, links: bool = True) -> dict[str, Any]:
    url = f"{base}/v1/Rooms/{p.room_sid}/Participants/{p.sid}"
    body: dict[str, Any] = {
        "sid": p.sid,
        "room_sid": p.room_sid,
        "account_sid": p.account_sid,
        "status": p.status,
        "identity": p.identity,
        "date_created": iso8601(p.date_created),
        "date_updated": iso8601(p.date_updated),
        "start_time": iso8601(p.start_time),
        "end_time": iso8601_or_none(p.end_time),
        "duration": p.duration,
        "url": url,
    }
    if links:
        body["links"] = {
            "published_tracks": f"{url}/PublishedTracks",
            "subscribed_tracks": f"{url}/SubscribedTracks",
            "subscribe_rules": f"{url}/SubscribeRules",
            "anonymize": f"{url}/Anonymize",
        }
    return body


def published_track_resource(t: TrackRecord, base: str) -> dict[str, Any]:
    return {
        "sid": t.sid,
        "participant_sid": t.participant_sid,
        "room_sid": t.room_sid,
        "name": t.name,
        "date_created": iso8601(t.date_created),
        "date_updated": iso8601(t.date_updated),
        "enabled": t.enabled,
        "kind": t.kind,
        "url": f"{base}/v1/Rooms/{t.room_sid}/Participants/{t.participant_sid}/PublishedTracks/{t.sid}",
    }


def subscribed_track_resource(t: TrackRecord, subscriber: ParticipantRecord, base: str) -> dict[str, Any]:
    return {
        "sid": t.sid,
        "participant_sid": subscriber.sid,
        "publisher_sid": t.participant_sid,
        "room_sid": t.room_sid,
        "name": t.name,
        "date_created": iso8601(max(t.date_created, subscriber.start_time)),
        "date_updated": iso8601(t.date_updated),
        "enabled": t.enabled,
        "kind": t.kind,
        "url": f"{base}/v1/Rooms/{t.room_sid}/Participants/{subscriber.sid}/SubscribedTracks/{t.sid}",
    }


def subscribe_rules_resource(p: ParticipantRecord) -> dict[str, Any]:
    rules = p.subscribe_rules if p.subscribe_rules is not None else include_all()
    return {
        "participant_sid": p.sid,
        "room_sid": p.room_sid,
        "rules": rules_to_json(rules),
        "date_created": iso8601_or_none(p.subscribe_rules_updated),
        "date_updated": iso8601_or_none(p.subscribe_rules_updated),
    }


def recording_rules_resource(room: RoomRecord) -> dict[str, Any]:
    return {
        "room_sid": room.sid,
        "rules": rules_to_json(room.spec.recording_rules),
        "date_created": iso8601_or_none(room.recording_rules_updated),
        "date_updated": iso8601_or_none(room.recording_rules_updated),
    }


# ---------------------------------------------------------------------- request parsing


def room_request(form: Form) -> domain.RoomRequest:
    codecs = form.list("VideoCodecs")
    return domain.RoomRequest(
        type=form.raw("Type"),
        unique_name=form.raw("UniqueName"),
        status_callback=form.raw("StatusCallback"),
        status_callback_method=form.raw("StatusCallbackMethod"),
        max_participants=form.raw("MaxParticipants"),
        max_participant_duration=form.raw("MaxParticipantDuration"),
        empty_room_timeout=form.raw("EmptyRoomTimeout"),
        unused_room_timeout=form.raw("UnusedRoomTimeout"),
        record_participants_on_connect=form.raw("RecordParticipantsOnConnect"),
        recording_rules=form.raw("RecordingRules"),
        video_codecs=codecs or None,
        media_region=form.raw("MediaRegion"),
        audio_only=form.raw("AudioOnly"),
        large_room=form.raw("LargeRoom"),
        enable_turn=form.raw("EnableTurn"),
    )


def _enum(form: Form, name: str, allowed: tuple[str, ...]) -> str | None:
    value = form.raw(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise bad_request(PARAM_CODE, f"{name} must be one of {', '.join(allowed)}")
    return value


def _cursor(page: PageRequest) -> tuple[datetime, str] | None:
    if page.after is None:
        return None
    try:
        return datetime.fromisoformat(page.after[0]), str(page.after[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise bad_request(PARAM_CODE, "Invalid PageToken") from exc


def _rules_param(form: Form) -> Any:
    raw = form.raw("Rules")
    if raw is None:
        raise bad_request(PARAM_CODE, "Missing required parameter Rules in the post body")
    return raw


# ---------------------------------------------------------------------- routes


def create_router(ctx: ServiceContext) -> APIRouter:
    """The REST routes, plus (when the media side is wired) WHIP/WHEP, the event sink and the page."""
    service, extra_routers = build_room_side(ctx)
    default_base = ctx.settings.platform.public_url
    router = APIRouter()

    def base_of(request: Request) -> str:
        return public_base_url(request, default_base)

    async def participant_of(
        principal: Principal, room_ref: str, ref: str, request: Request
    ) -> tuple[RoomRecord, ParticipantRecord]:
        room = await service.resolve(principal.account_sid, room_ref)
        participant = await service.store.participant(room.sid, ref)
        if participant is None:
            raise not_found(request.url.path)
        return room, participant

    @router.post("/v1/Rooms", status_code=201)
    async def create_room(request: Request, principal: Caller) -> Response:
        form = await Form.from_request(request)
        spec = domain.build_room_spec(room_request(form))
        room = await service.create_room(principal.account_sid, spec)
        return JSONResponse(room_resource(room, base_of(request)), status_code=201)

    @router.get("/v1/Rooms")
    async def list_rooms(request: Request, principal: Caller) -> Response:
        query = Form.from_query(request)
        page = PageRequest.from_request(request, max_page_size=MAX_PAGE_SIZE)
        filters = RoomFilter(
            status=_enum(query, "Status", ROOM_STATUSES) or "in-progress",
            unique_name=query.raw("UniqueName") or None,
            created_after=query.date("DateCreatedAfter", PARAM_CODE),
            created_before=query.date("DateCreatedBefore", PARAM_CODE),
        )
        rooms = await service.store.find_rooms(
            principal.account_sid, filters, after=_cursor(page), limit=page.page_size + 1
        )
        more = len(rooms) > page.page_size
        rooms = rooms[: page.page_size]
        token = encode_token([rooms[-1].date_created.isoformat(), rooms[-1].sid]) if more else None
        base = base_of(request)
        return JSONResponse(
            page_body("rooms", [room_resource(r, base) for r in rooms], request, page, token, base)
        )

    @router.get("/v1/Rooms/{ref}")
    async def fetch_room(ref: str, request: Request, principal: Caller) -> Response:
        room = await service.resolve(principal.account_sid, ref)
        return JSONResponse(room_resource(room, base_of(request)))

    @router.post("/v1/Rooms/{ref}", status_code=202)
    async def update_room(ref: str, request: Request, principal: Caller) -> Response:
        form = await Form.from_request(request)
        status = form.raw("Status")
        if status is None or status == "":
            raise bad_request(PARAM_CODE, "Missing required parameter Status in the post body")
        if status != "completed":
            raise bad_request(53112, "Status must be completed")
        room = await service.resolve(principal.account_sid, ref)
        room = await service.complete_room(principal.account_sid, room.sid)
        return JSONResponse(room_resource(room, base_of(request)), status_code=202)

    @router.get("/v1/Rooms/{room_ref}/Participants")
    async def list_participants(room_ref: str, request: Request, principal: Caller) -> Response:
        room = await service.resolve(principal.account_sid, room_ref)
        query = Form.from_query(request)
        page = PageRequest.from_request(request, max_page_size=MAX_PAGE_SIZE)
        default_status = "connected" if room.status == "in-progress" else "disconnected"
        filters = ParticipantFilter(
            status=_enum(query, "Status", PARTICIPANT_STATUSES) or default_status,
            identity=query.raw("Identity") or None,
            created_after=query.date("DateCreatedAfter", PARAM_CODE),
            created_before=query.date("DateCreatedBefore", PARAM_CODE),
        )
        found = await service.store.find_participants(
            room.sid, filters, after=_cursor(page), limit=page.page_size + 1
        )
        more = len(found) > page.page_size
        found = found[: page.page_size]
        token = encode_token([found[-1].date_created.isoformat(), found[-1].sid]) if more else None
        base = base_of(request)
        items = [participant_resource(p, base) for p in found]
        return JSONResponse(page_body("participants", items, request, page, token, base))

    @router.get("/v1/Rooms/{room_ref}/Participants/{ref}")
    async def fetch_participant(room_ref: str, ref: str, request: Request, principal: Caller) -> Response:
        _, participant = await participant_of(principal, room_ref, ref, request)
        return JSONResponse(participant_resource(participant, base_of(request)))

    @router.post("/v1/Rooms/{room_ref}/Participants/{ref}", status_code=202)
    async def update_participant(room_ref: str, ref: str, request: Request, principal: Caller) -> Response:
        form = await Form.from_request(request)
        status = form.raw("Status")
        if status is None or status == "":
            raise bad_request(PARAM_CODE, "Missing required parameter Status in the post body")
        if status != "disconnected":
            raise bad_request(53209, "Status must be disconnected")
        room, participant = await participant_of(principal, room_ref, ref, request)
        if participant.status == "connected":
            await service.disconnect(room.sid, participant.sid, "kicked", kick=True)
            refreshed = await service.store.participant(room.sid, participant.sid)
            participant = refreshed or participant
        return JSONResponse(participant_resource(participant, base_of(request)), status_code=202)

    @router.post("/v1/Rooms/{room_ref}/Participants/{ref}/Anonymize")
    async def anonymize(room_ref: str, ref: str, request: Request, principal: Caller) -> Response:
        room, participant = await participant_of(principal, room_ref, ref, request)
        participant = await service.anonymize(room, participant)
        return JSONResponse(participant_resource(participant, base_of(request), links=False))

    @router.get("/v1/Rooms/{room_ref}/Participants/{ref}/PublishedTracks")
    async def list_published(room_ref: str, ref: str, request: Request, principal: Caller) -> Response:
        _, participant = await participant_of(principal, room_ref, ref, request)
        page = PageRequest.from_request(request, max_page_size=MAX_PAGE_SIZE)
        tracks = await service.store.tracks_of(participant.sid, published_only=True)
        items, token = _slice(tracks, page)
        base = base_of(request)
        body = page_body(
            "published_tracks", [published_track_resource(t, base) for t in items], request, page, token, base
        )
        return JSONResponse(body)

    @router.get("/v1/Rooms/{room_ref}/Participants/{ref}/PublishedTracks/{track_ref}")
    async def fetch_published(
        room_ref: str, ref: str, track_ref: str, request: Request, principal: Caller
    ) -> Response:
        _, participant = await participant_of(principal, room_ref, ref, request)
        tracks = await service.store.tracks_of(participant.sid, published_only=True)
        track = next((t for t in tracks if track_ref in (t.sid, t.name)), None)
        if track is None:
            raise not_found(request.url.path)
        return JSONResponse(published_track_resource(track, base_of(request)))

    @router.get("/v1/Rooms/{room_ref}/Participants/{ref}/SubscribedTracks")
    async def list_subscribed(room_ref: str, ref: str, request: Request, principal: Caller) -> Response:
        room, participant = await participant_of(principal, room_ref, ref, request)
        page = PageRequest.from_request(request, max_page_size=MAX_PAGE_SIZE)
        tracks = [t for t, _ in await service.subscribed_tracks(room, participant)]
        items, token = _slice(tracks, page)
        base = base_of(request)
        body = page_body(
            "subscribed_tracks",
            [subscribed_track_resource(t, participant, base) for t in items],
            request,
            page,
            token,
            base,
        )
        return JSONResponse(body)

    @router.get("/v1/Rooms/{room_ref}/Participants/{ref}/SubscribedTracks/{track_sid}")
    async def fetch_subscribed(
        room_ref: str, ref: str, track_sid: str, request: Request, principal: Caller
    ) -> Response:
        room, participant = await participant_of(principal, room_ref, ref, request)
        for track, _ in await service.subscribed_tracks(room, participant):
            if track.sid == track_sid:
                return JSONResponse(subscribed_track_resource(track, participant, base_of(request)))
        raise not_found(request.url.path)

    @router.get("/v1/Rooms/{room_ref}/Participants/{ref}/SubscribeRules")
    async def get_subscribe_rules(room_ref: str, ref: str, request: Request, principal: Caller) -> Response:
        _, participant = await participant_of(principal, room_ref, ref, request)
        return JSONResponse(subscribe_rules_resource(participant))

    @router.post("/v1/Rooms/{room_ref}/Participants/{ref}/SubscribeRules")
    async def set_subscribe_rules(room_ref: str, ref: str, request: Request, principal: Caller) -> Response:
        form = await Form.from_request(request)
        room, participant = await participant_of(principal, room_ref, ref, request)
        rules = parse_subscribe_rules(_rules_param(form))
        participant = await service.set_subscribe_rules(room, participant, rules)
        return JSONResponse(subscribe_rules_resource(participant))

    @router.get("/v1/Rooms/{room_ref}/RecordingRules")
    async def get_recording_rules(room_ref: str, principal: Caller) -> Response:
        room = await service.resolve(principal.account_sid, room_ref)
        return JSONResponse(recording_rules_resource(room))

    @router.post("/v1/Rooms/{room_ref}/RecordingRules")
    async def set_recording_rules(room_ref: str, request: Request, principal: Caller) -> Response:
        form = await Form.from_request(request)
        room = await service.resolve(principal.account_sid, room_ref)
        if room.spec.type == "peer-to-peer":
            raise bad_request(53122, "Recording rules are not supported for peer-to-peer rooms")
        rules = parse_recording_rules(_rules_param(form))
        room = await service.set_recording_rules(principal.account_sid, RoomSid(room.sid), rules)
        return JSONResponse(recording_rules_resource(room))

    for extra in extra_routers:
        router.include_router(extra)
    return router


def _slice(tracks: list[TrackRecord], page: PageRequest) -> tuple[list[TrackRecord], str | None]:
    """Keyset paging over an in-memory, (date_created, sid)-ordered list (a participant has few tracks)."""
    start = 0
    cursor = _cursor(page)
    if cursor is not None:
        start = next((i for i, t in enumerate(tracks) if (t.date_created, t.sid) > cursor), len(tracks))
    items = tracks[start : start + page.page_size]
    more = start + page.page_size < len(tracks)
    token = encode_token([items[-1].date_created.isoformat(), items[-1].sid]) if more and items else None
    return items, token
