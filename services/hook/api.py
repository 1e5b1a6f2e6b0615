"""``/v1/CompositionHooks``: Twilio's Composition Hooks resource (create, list, fetch, update, delete)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from libs.auth.basic import Principal, request_principal
from libs.composition.spec import RequestError
from libs.events.sids import HookSid
from libs.twilio.dates import iso8601, iso8601_or_none, utcnow
from libs.twilio.errors import TwilioError, not_found
from libs.twilio.forms import Form
from libs.twilio.paging import PageRequest, created_cursor, page_body, trim_page
from libs.twilio.urls import public_base_url
from services.hook.domain import Hook, HookRequest, define_hook, friendly_name_pattern
from services.hook.store import HookFilter, HookStore

if TYPE_CHECKING:
    from libs.observability.bootstrap import ServiceContext

MAX_PAGE_SIZE = 1000
Caller = Annotated[Principal, Depends(request_principal)]
PARAM_CODE = 20001


def hook_resource(hook: Hook, base_url: str) -> dict[str, Any]:
    """The Twilio JSON of a composition hook (no ``links``, as Twilio's)."""
    d = hook.definition
    return {
        "account_sid": hook.account_sid,
        "friendly_name": d.friendly_name,
        "enabled": d.enabled,
        "date_created": iso8601(hook.date_created),
        "date_updated": iso8601_or_none(hook.date_updated),
        "sid": hook.sid,
        "audio_sources": list(d.audio_sources),
        "audio_sources_excluded": list(d.audio_sources_excluded),
        "video_layout": d.video_layout,
        "resolution": d.resolution,
        "trim": d.trim,
        "format": d.format,
        "status_callback": d.status_callback,
        "status_callback_method": d.status_callback_method,
        "url": f"{base_url}/v1/CompositionHooks/{hook.sid}",
    }


def _optional_bool(form: Form, name: str) -> bool | None:
    return form.bool(name, PARAM_CODE, default=False) if form.raw(name) not in (None, "") else None


async def _read_request(request: Request) -> HookRequest:
    form = await Form.from_request(request)
    return HookRequest(
        friendly_name=form.raw("FriendlyName"),
        enabled=_optional_bool(form, "Enabled"),
        video_layout=form.raw("VideoLayout"),
        audio_sources=tuple(s for s in form.list("AudioSources") if s),
        audio_sources_excluded=tuple(s for s in form.list("AudioSourcesExcluded") if s),
        resolution=form.raw("Resolution"),
        format=form.raw("Format"),
        trim=_optional_bool(form, "Trim"),
        status_callback=form.uri("StatusCallback", PARAM_CODE) or None,
        status_callback_method=form.raw("StatusCallbackMethod"),
    )


def _twilio(exc: RequestError) -> TwilioError:
    return TwilioError(exc.status, exc.code, exc.message)


def _sid(value: str, request: Request) -> HookSid:
    try:
        return HookSid(value)
    except ValueError as exc:
        raise not_found(request.url.path) from exc


def create_router(ctx: ServiceContext) -> APIRouter:
    """The hook routes, bound to this process's pool and public URL."""
    store = HookStore(ctx.pool, ctx.settings.db_schema)
    default_base = ctx.settings.platform.public_url
    router = APIRouter()

    @router.post("/v1/CompositionHooks", status_code=201)
    async def create_hook(request: Request, principal: Caller) -> Response:
        try:
            definition = define_hook(await _read_request(request))
            hook = await store.create(principal.account_sid, definition, utcnow())
        except RequestError as exc:
            raise _twilio(exc) from exc
        body = hook_resource(hook, public_base_url(request, default_base))
        return JSONResponse(body, status_code=201)

    @router.get("/v1/CompositionHooks")
    async def list_hooks(request: Request, principal: Caller) -> Response:
        query = Form.from_query(request)
        page = PageRequest.from_request(request, max_page_size=MAX_PAGE_SIZE)
        name = query.raw("FriendlyName")
        filters = HookFilter(
            enabled=_optional_bool(query, "Enabled"),
            friendly_name_pattern=friendly_name_pattern(name) if name else None,
            created_after=query.date("DateCreatedAfter", PARAM_CODE),
            created_before=query.date("DateCreatedBefore", PARAM_CODE),
        )
        hooks = await store.find(
            principal.account_sid, filters, after=created_cursor(page), limit=page.page_size + 1
        )
        hooks, token = trim_page(hooks, page, lambda h: (h.date_created, h.sid))
        base = public_base_url(request, default_base)
        items = [hook_resource(h, base) for h in hooks]
        return JSONResponse(page_body("composition_hooks", items, request, page, token, base))

    @router.get("/v1/CompositionHooks/{sid}")
    async def fetch_hook(sid: str, request: Request, principal: Caller) -> Response:
        hook = await store.get(principal.account_sid, _sid(sid, request))
        if hook is None:
            raise not_found(request.url.path)
        return JSONResponse(hook_resource(hook, public_base_url(request, default_base)))

    @router.post("/v1/CompositionHooks/{sid}")
    async def update_hook(sid: str, request: Request, principal: Caller) -> Response:
        hook_sid = _sid(sid, request)
        try:
            definition = define_hook(await _read_request(request))
            hook = await store.replace(principal.account_sid, hook_sid, definition, utcnow())
        except RequestError as exc:
            raise _twilio(exc) from exc
        if hook is None:
            raise not_found(request.url.path)
        return JSONResponse(hook_resource(hook, public_base_url(request, default_base)))

    @router.delete("/v1/CompositionHooks/{sid}", status_code=204)
    async def delete_hook(sid: str, request: Request, principal: Caller) -> Response:
        if not await store.delete(principal.account_sid, _sid(sid, request)):
            raise not_found(request.url.path)
        return Response(status_code=204)

    return router
