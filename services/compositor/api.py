"""``/v1/Compositions``: Twilio's Compositions resource (create, list, fetch, delete, Media redirect)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from libs.auth.basic import Principal, request_principal
from libs.composition.spec import CODE_INVALID_PARAMETER, RequestError
from libs.events.models import CompositionEnqueued, CompositionRequested
from libs.events.sids import CompositionSid
from libs.storage.errors import StorageError
from libs.twilio.dates import iso8601, iso8601_or_none, utcnow
from libs.twilio.errors import TwilioError, not_found
from libs.twilio.forms import Form
from libs.twilio.paging import PageRequest, created_cursor, page_body, trim_page
from libs.twilio.urls import public_base_url
from services.compositor.domain import (
    CODE_NOT_FOUND,
    STATUSES,
    Composition,
    CompositionRequest,
    CompositionSpec,
    define_composition,
    media_ttl,
    refuse_for_recordings,
)
from services.compositor.store import CompositionFilter, CompositionStore

if TYPE_CHECKING:
    from libs.observability.bootstrap import ServiceContext

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
Caller = Annotated[Principal, Depends(request_principal)]
CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}


def composition_resource(comp: Composition, base_url: str) -> dict[str, Any]:
    """The Twilio JSON of a composition (video.v1.composition)."""
    spec = comp.spec
    url = f"{base_url}/v1/Compositions/{comp.sid}"
    return {
        "account_sid": comp.account_sid,
        "status": comp.status,
        "date_created": iso8601(comp.date_created),
        "date_completed": iso8601_or_none(comp.date_completed),
        "date_deleted": iso8601_or_none(comp.date_deleted),
        "sid": comp.sid,
        "room_sid": spec.room_sid,
        "audio_sources": list(spec.audio_sources),
        "audio_sources_excluded": list(spec.audio_sources_excluded),
        "video_layout": spec.video_layout,
        "resolution": spec.resolution,
        "trim": spec.trim,
        "format": spec.format,
        "bitrate": comp.bitrate,
        "size": comp.size,
        "duration": comp.duration,
        "media_external_location": None,
        "status_callback": spec.status_callback,
        "status_callback_method": spec.status_callback_method,
        "url": url,
        "links": {"media": f"{url}/Media"},
    }


async def _read_request(request: Request) -> CompositionRequest:
    form = await Form.from_request(request)
    trim = (
        form.bool("Trim", CODE_INVALID_PARAMETER, default=True)
        if form.raw("Trim") not in (None, "")
        else None
    )
    return CompositionRequest(
        room_sid=form.raw("RoomSid"),
        video_layout=form.raw("VideoLayout"),
        audio_sources=tuple(s for s in form.list("AudioSources") if s),
        audio_sources_excluded=tuple(s for s in form.list("AudioSourcesExcluded") if s),
        resolution=form.raw("Resolution"),
        format=form.raw("Format"),
        trim=trim,
        status_callback=form.uri("StatusCallback", CODE_INVALID_PARAMETER) or None,
        status_callback_method=form.raw("StatusCallbackMethod"),
        allow_hd=form.bool("MixdownAllowHd", CODE_INVALID_PARAMETER, default=False),
    )


def _sid(value: str, request: Request) -> CompositionSid:
    try:
        return CompositionSid(value)
    except ValueError as exc:
        raise not_found(request.url.path) from exc


def _events(sid: CompositionSid, principal: Principal, spec: CompositionSpec) -> list[Any]:
    now = utcnow()
    enqueued = CompositionEnqueued(
        occurred_at=now,
        account_sid=principal.account_sid,
        composition_sid=sid,
        room_sid=spec.room_sid,
        status_callback=spec.status_callback,
        status_callback_method=spec.status_callback_method,
    )
    requested = CompositionRequested(
        occurred_at=now,
        account_sid=principal.account_sid,
        composition_sid=sid,
        room_sid=spec.room_sid,
        video_layout=spec.video_layout,
        audio_sources=list(spec.audio_sources),
        audio_sources_excluded=list(spec.audio_sources_excluded),
        resolution=spec.resolution,
        format=spec.format,
        trim=spec.trim,
        status_callback=spec.status_callback,
        status_callback_method=spec.status_callback_method,
    )
    return [enqueued, requested]


def create_router(ctx: ServiceContext) -> APIRouter:
    """The composition routes, bound to this process's pool, object store and public URL."""
    store = CompositionStore(ctx.pool, ctx.settings.db_schema, ctx.settings.consumer_group)
    objects = ctx.object_store
    if objects is None:
        raise RuntimeError("the compositor needs an object store")
    default_base = ctx.settings.platform.public_url
    wait_limit_s = ctx.settings.jobs.recordings_wait_s
    router = APIRouter()

    @router.post("/v1/Compositions", status_code=201)
    async def create_composition(request: Request, principal: Caller) -> Response:
        try:
            spec = define_composition(await _read_request(request))
        except RequestError as exc:
            raise TwilioError(exc.status, exc.code, exc.message) from exc
        room = await store.room(spec.room_sid)
        if room is None or room.account_sid != principal.account_sid:
            raise TwilioError(
                404, CODE_NOT_FOUND, f"The requested resource /Rooms/{spec.room_sid} was not found"
            )
        refusal = refuse_for_recordings(
            await store.recording_counts(spec.room_sid),
            room.recordings_finalized,
            room.ended_for_s,
            wait_limit_s,
        )
        if refusal is not None:
            raise TwilioError(refusal.status, refusal.code, refusal.message)
        sid = CompositionSid.new()
        comp = await store.create(sid, principal.account_sid, spec, utcnow(), _events(sid, principal, spec))
        logger.info(
            "composition created", extra={"composition_sid": str(sid), "room_sid": str(spec.room_sid)}
        )
        return JSONResponse(
            composition_resource(comp, public_base_url(request, default_base)), status_code=201
        )

    @router.get("/v1/Compositions")
    async def list_compositions(request: Request, principal: Caller) -> Response:
        query = Form.from_query(request)
        page = PageRequest.from_request(request, max_page_size=MAX_PAGE_SIZE)
        status = query.enum("Status", STATUSES, CODE_INVALID_PARAMETER)
        filters = CompositionFilter(
            status=next((s for s in STATUSES if s == status), None),
            room_sid=query.raw("RoomSid") or None,
            created_after=query.date("DateCreatedAfter", CODE_INVALID_PARAMETER),
            created_before=query.date("DateCreatedBefore", CODE_INVALID_PARAMETER),
        )
        found = await store.find(
            principal.account_sid, filters, after=created_cursor(page), limit=page.page_size + 1
        )
        found, token = trim_page(found, page, lambda c: (c.date_created, c.sid))
        base = public_base_url(request, default_base)
        items = [composition_resource(c, base) for c in found]
        return JSONResponse(page_body("compositions", items, request, page, token, base))

    @router.get("/v1/Compositions/{sid}")
    async def fetch_composition(sid: str, request: Request, principal: Caller) -> Response:
        comp = await store.get(principal.account_sid, _sid(sid, request))
        if comp is None:
            raise not_found(request.url.path)
        return JSONResponse(composition_resource(comp, public_base_url(request, default_base)))

    @router.delete("/v1/Compositions/{sid}", status_code=204)
    async def delete_composition(sid: str, request: Request, principal: Caller) -> Response:
        before = await store.mark_deleted(principal.account_sid, _sid(sid, request), utcnow())
        if before is None:
            raise not_found(request.url.path)
        if before.object_key:
            try:
                await objects.delete(before.object_key)
            except StorageError as exc:  # the purge task removes it with the metadata later
                logger.warning("composition media delete failed", extra={"error": type(exc).__name__})
        return Response(status_code=204)

    @router.get("/v1/Compositions/{sid}/Media")
    async def composition_media(sid: str, request: Request, principal: Caller) -> Response:
        query = Form.from_query(request)
        try:
            ttl = media_ttl(query.int("Ttl", CODE_INVALID_PARAMETER))
        except RequestError as exc:
            raise TwilioError(exc.status, exc.code, exc.message) from exc
        comp = await store.get(principal.account_sid, _sid(sid, request))
        if comp is None or comp.status != "completed" or not comp.object_key:
            raise not_found(request.url.path)
        url = await objects.presigned_get(
            comp.object_key,
            timedelta(seconds=ttl),
            filename=f"{comp.sid}.{comp.spec.format}",
            content_type=CONTENT_TYPES[comp.spec.format],
        )
        return JSONResponse({"redirect_to": url}, status_code=302, headers={"Location": url})

    return router
