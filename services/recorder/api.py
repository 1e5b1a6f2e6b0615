"""``/v1/Recordings`` and ``/v1/Rooms/{RoomSid}/Recordings``: Twilio's Recording resources (list, fetch,
delete, Media redirect)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from libs.auth.basic import Principal, request_principal
from libs.events.models import RecordingDeleted
from libs.events.sids import RecordingSid, RoomSid
from libs.storage.errors import StorageError
from libs.twilio.dates import iso8601, utcnow
from libs.twilio.errors import TwilioError, not_found
from libs.twilio.forms import Form
from libs.twilio.paging import PageRequest, encode_token, page_body
from libs.twilio.urls import public_base_url
from services.recorder.domain import RECORDING_STATUSES, Recording, RecordingSettings, RecordingStatus
from services.recorder.store import RecorderStore, RecordingFilter

if TYPE_CHECKING:
    from libs.observability.bootstrap import ServiceContext

logger = logging.getLogger(__name__)

Caller = Annotated[Principal, Depends(request_principal)]
PARAM_CODE = 20001
MAX_PAGE_SIZE_GLOBAL = 100
MAX_PAGE_SIZE_ROOM = 1000
CONTENT_TYPES = {"mkv": "video/x-matroska", "mka": "audio/x-matroska"}


def recording_resource(rec: Recording, base_url: str, *, room_scoped: bool = False) -> dict[str, Any]:
    """The Twilio JSON of a Recording (global) or a room recording (``room_scoped``)."""
    path = f"/v1/Rooms/{rec.room_sid}/Recordings/{rec.sid}" if room_scoped else f"/v1/Recordings/{rec.sid}"
    body: dict[str, Any] = {
        "account_sid": rec.account_sid,
        "status": rec.status,
        "date_created": iso8601(rec.date_created),
        "sid": rec.sid,
        "source_sid": rec.source_sid,
        "size": rec.size_bytes,
        "url": f"{base_url}{path}",
        "type": rec.kind,
        "duration": rec.duration_s,
        "container_format": rec.container,
        "codec": rec.codec,
        "grouping_sids": rec.grouping_sids,
        "track_name": rec.track_name,
        "offset": rec.offset_ms,
        "media_external_location": None,
        "links": {"media": f"{base_url}{path}/Media"},
    }
    if room_scoped:
        body["room_sid"] = rec.room_sid
    else:
        body["status_callback"] = rec.status_callback
        body["status_callback_method"] = rec.status_callback_method
    return body


def settings_resource(account_sid: str, s: RecordingSettings, base_url: str) -> dict[str, Any]:
    """The Twilio JSON of ``/v1/RecordingSettings/Default``."""
    return {
        "account_sid": account_sid,
        "friendly_name": s.friendly_name,
        "aws_credentials_sid": s.aws_credentials_sid,
        "aws_s3_url": s.aws_s3_url,
        "aws_storage_enabled": s.aws_storage_enabled,
        "encryption_key_sid": s.encryption_key_sid,
        "encryption_enabled": s.encryption_enabled,
        "url": f"{base_url}/v1/RecordingSettings/Default",
    }


def _credential_sid(form: Form, name: str) -> str | None:
    value = form.raw(name) or None
    if value is not None and not (len(value) == 34 and value.startswith("CR")):
        raise TwilioError(400, PARAM_CODE, f"{name} must be a Credential SID (CR...)")
    return value


async def _read_settings(request: Request) -> RecordingSettings:
    """Validate a POST; external storage and encryption are refused (not implemented here)."""
    form = await Form.from_request(request)
    name = form.str("FriendlyName", PARAM_CODE, required=True)
    settings = RecordingSettings(
        friendly_name=name,
        aws_credentials_sid=_credential_sid(form, "AwsCredentialsSid"),
        aws_s3_url=form.uri("AwsS3Url", PARAM_CODE) or None,
        aws_storage_enabled=form.bool("AwsStorageEnabled", PARAM_CODE, default=False),
        encryption_key_sid=_credential_sid(form, "EncryptionKeySid"),
        encryption_enabled=form.bool("EncryptionEnabled", PARAM_CODE, default=False),
    )
    if settings.aws_storage_enabled:
        raise TwilioError(
            400, PARAM_CODE, "External S3 storage of recordings is not supported by this server"
        )
    if settings.encryption_enabled:
        raise TwilioError(400, PARAM_CODE, "Encrypted recordings are not supported by this server")
    return settings


def _status(query: Form) -> RecordingStatus | None:
    value = query.enum("Status", RECORDING_STATUSES, PARAM_CODE)
    for status in RECORDING_STATUSES:
        if value == status:
            return status
    return None


def _recording_sid(value: str, request: Request) -> RecordingSid:
    try:
        return RecordingSid(value)
    except ValueError as exc:
        raise not_found(request.url.path) from exc


def create_router(ctx: ServiceContext) -> APIRouter:
    """The recording routes, bound to this process's pool, object store and public URL."""
    settings = ctx.settings
    store = RecorderStore(ctx.pool, settings.db_schema)
    objects = ctx.object_store
    default_base = settings.platform.public_url
    ttl_default: int = settings.media_ttl_default
    ttl_max: int = settings.media_ttl_max
    router = APIRouter()

    async def list_page(
        request: Request, principal: Principal, room_sid: RoomSid | None, max_size: int
    ) -> Response:
        query = Form.from_query(request)
        page = PageRequest.from_request(request, max_page_size=max_size)
        filters = RecordingFilter(
            room_sid=room_sid,
            status=_status(query),
            source_sid=query.raw("SourceSid") or None,
            grouping_sids=() if room_sid else tuple(g for g in query.list("GroupingSid") if g),
            created_after=query.date("DateCreatedAfter", PARAM_CODE),
            created_before=query.date("DateCreatedBefore", PARAM_CODE),
            media_type=None if room_sid else query.enum("MediaType", ("audio", "video", "data"), PARAM_CODE),
        )
        after = None
        if page.after is not None:
            try:
                after = (datetime.fromisoformat(page.after[0]), str(page.after[1]))
            except (TypeError, ValueError, IndexError) as exc:
                raise TwilioError(400, PARAM_CODE, "Invalid PageToken") from exc
        found = await store.find(principal.account_sid, filters, after=after, limit=page.page_size + 1)
        more = len(found) > page.page_size
        found = found[: page.page_size]
        token = encode_token([found[-1].date_created.isoformat(), found[-1].sid]) if more else None
        base = public_base_url(request, default_base)
        items = [recording_resource(r, base, room_scoped=room_sid is not None) for r in found]
        return JSONResponse(page_body("recordings", items, request, page, token, base))

    async def fetch(request: Request, principal: Principal, sid: str, room: str | None) -> Recording:
        rec = await store.get(principal.account_sid, _recording_sid(sid, request))
        if rec is None or (room is not None and rec.room_sid != room):
            raise not_found(request.url.path)
        return rec

    async def delete(request: Request, principal: Principal, sid: str, room: str | None) -> Response:
        rec = await fetch(request, principal, sid, room)
        if rec.status == "deleted":
            return Response(status_code=204)
        if rec.status == "processing":
            raise TwilioError(400, 53105, "Recording is still being processed and cannot be deleted yet")
        now = utcnow()
        fact = RecordingDeleted(
            occurred_at=now, account_sid=rec.account_sid, recording_sid=rec.sid, room_sid=rec.room_sid
        )
        if objects is not None:
            try:
                await objects.delete_prefix(rec.prefix + "/")
            except StorageError as exc:
                logger.warning("recording media delete failed", extra={"error": type(exc).__name__})
                raise TwilioError(503, 20500, "Storage unavailable, try again") from exc
        await store.mark_deleted(principal.account_sid, rec.sid, now, fact)
        return Response(status_code=204)

    async def media(request: Request, principal: Principal, sid: str, room: str | None) -> Response:
        ttl = Form.from_query(request).int("Ttl", PARAM_CODE, 1, ttl_max, default=ttl_default) or ttl_default
        rec = await fetch(request, principal, sid, room)
        if rec.status != "completed" or not rec.object_key or objects is None:
            raise not_found(request.url.path)
        url = await objects.presigned_get(
            rec.object_key,
            timedelta(seconds=ttl),
            filename=f"{rec.sid}.{rec.container}",
            content_type=CONTENT_TYPES[rec.container],
        )
        return JSONResponse({"redirect_to": url}, status_code=302, headers={"Location": url})

    @router.get("/v1/Recordings")
    async def list_recordings(request: Request, principal: Caller) -> Response:
        return await list_page(request, principal, None, MAX_PAGE_SIZE_GLOBAL)

    @router.get("/v1/Recordings/{sid}")
    async def fetch_recording(sid: str, request: Request, principal: Caller) -> Response:
        rec = await fetch(request, principal, sid, None)
        return JSONResponse(recording_resource(rec, public_base_url(request, default_base)))

    @router.delete("/v1/Recordings/{sid}", status_code=204)
    async def delete_recording(sid: str, request: Request, principal: Caller) -> Response:
        return await delete(request, principal, sid, None)

    @router.get("/v1/Recordings/{sid}/Media")
    async def recording_media(sid: str, request: Request, principal: Caller) -> Response:
        return await media(request, principal, sid, None)

    @router.get("/v1/Rooms/{room_sid}/Recordings")
    async def list_room_recordings(room_sid: str, request: Request, principal: Caller) -> Response:
        try:
            room = RoomSid(room_sid)
        except ValueError as exc:
            raise not_found(request.url.path) from exc
        return await list_page(request, principal, room, MAX_PAGE_SIZE_ROOM)

    @router.get("/v1/Rooms/{room_sid}/Recordings/{sid}")
    async def fetch_room_recording(room_sid: str, sid: str, request: Request, principal: Caller) -> Response:
        rec = await fetch(request, principal, sid, room_sid)
        return JSONResponse(recording_resource(rec, public_base_url(request, default_base), room_scoped=True))

    @router.delete("/v1/Rooms/{room_sid}/Recordings/{sid}", status_code=204)
    async def delete_room_recording(room_sid: str, sid: str, request: Request, principal: Caller) -> Response:
        return await delete(request, principal, sid, room_sid)

    @router.get("/v1/Rooms/{room_sid}/Recordings/{sid}/Media")
    async def room_recording_media(room_sid: str, sid: str, request: Request, principal: Caller) -> Response:
        return await media(request, principal, sid, room_sid)

    @router.get("/v1/RecordingSettings/Default")
    async def fetch_settings(request: Request, principal: Caller) -> Response:
        current = await store.settings(principal.account_sid)
        base = public_base_url(request, default_base)
        return JSONResponse(settings_resource(principal.account_sid, current, base))

    @router.post("/v1/RecordingSettings/Default")
    async def save_settings(request: Request, principal: Caller) -> Response:
        wanted = await _read_settings(request)
        await store.save_settings(principal.account_sid, wanted, utcnow())
        base = public_base_url(request, default_base)
        return JSONResponse(settings_resource(principal.account_sid, wanted, base))

    return router
