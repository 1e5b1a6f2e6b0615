"""Assembly of the room service's own parts on top of the standard bootstrap.

`build_room_side(ctx)` (called by `api.create_router`, before serving) creates the store, the Janus client
and media registry, the `RoomService`, and the routers of WHIP/WHEP, the Janus event sink and the demo
page. `setup(ctx)` (called by the bootstrap after the routers) adds the timer loop and the Janus closer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter

from libs.janus.client import JanusClient
from libs.rooms.janus_secret import janus_room_secret
from libs.twilio.dates import utcnow
from services.room.janus_ingest import JanusIngest, ingest_router
from services.room.media_api import MediaApi, media_router
from services.room.media_sessions import JanusMedia
from services.room.metrics import RoomMetrics
from services.room.service import RoomService
from services.room.settings import Settings
from services.room.store import RoomStore
from services.room.timers import run_timers
from services.room.web_page import page_router

if TYPE_CHECKING:
    from libs.observability.bootstrap import ServiceContext

logger = logging.getLogger(__name__)


def build_room_side(ctx: ServiceContext) -> tuple[RoomService, list[APIRouter]]:
    """The service and the non-REST routers, built once per process and kept on `app.state`."""
    state = ctx.app.state
    if getattr(state, "room_service", None) is not None:
        return state.room_service, state.room_routers
    settings: Settings = ctx.settings
    store = RoomStore(ctx.pool, settings.db_schema)
    media_holder: list[JanusMedia] = []

    async def on_session_lost(session_id: int) -> None:
        # Janus dropped every PeerConnection of that session: their participants are gone.
        media = media_holder[0]
        media.forget_rooms()
        for session in media.on_session(session_id):
            await ingest.handle_gone(session)

    janus = JanusClient.from_settings(settings.janus, on_session_lost=on_session_lost)
    media = JanusMedia(janus, store, publisher_bitrate=settings.publisher_bitrate)
    media_holder.append(media)
    admin_key = settings.janus.admin_key.get_secret_value()
    service = RoomService(store, media, utcnow, functools.partial(janus_room_secret, admin_key))
    metrics = RoomMetrics.create(ctx.registry)
    ingest = JanusIngest(service, media, metrics, media_timeout=settings.media_timeout)
    media_api = MediaApi(service, media, ctx.identity, metrics, ad_hoc_rooms=settings.ad_hoc_rooms)
    routers = [
        media_router(media_api),
        ingest_router(ingest),
        page_router(ctx.identity, dev_tokens=settings.dev_tokens),
    ]
    state.room_service, state.room_routers, state.room_media = service, routers, media
    return service, routers


async def setup(ctx: ServiceContext) -> None:
    """Timer loop and Janus shutdown (the Janus session itself starts on first use)."""
    service, _ = build_room_side(ctx)
    settings: Settings = ctx.settings
    media: JanusMedia = ctx.app.state.room_media

    async def timers(stop: asyncio.Event) -> None:
        await run_timers(service, settings.timer_interval, stop)

    started = utcnow()

    async def reconcile(stop: asyncio.Event) -> None:
        # Participants whose sessions died with an earlier process (and whose Janus "leaving" event was
        # lost while no process listened) are disconnected once at start.
        try:
            for room_sid, participant_sid in await media.orphans(started):
                await service.disconnect(room_sid, participant_sid, "left")
        except Exception:  # Janus or Postgres down at start: the next start retries
            logger.exception("start-up reconciliation failed")
        await stop.wait()  # a finished task would stop the service

    ctx.runner.add_task("room-reconcile", reconcile)
    # The Janus long poll would log every request at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ctx.runner.add_task("room-timers", timers)
    ctx.runner.add_closer(media.close)
