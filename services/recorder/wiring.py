"""Background work of the recorder: the room.events consumer, the capture supervisor and the purge of
deleted recordings' metadata."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import timedelta

import httpx

from libs.events.base import Event
from libs.events.consumer import EventConsumer
from libs.events.topics import ROOM_EVENTS
from libs.janus.client import JanusClient
from libs.janus.errors import JanusError
from libs.observability.bootstrap import ServiceContext
from libs.twilio.dates import utcnow
from services.recorder.forwarding import JanusStreamForwarder
from services.recorder.handlers import handle
from services.recorder.metrics import RecorderMetrics
from services.recorder.receiver import PortAllocator
from services.recorder.sessions import CaptureSupervisor, OwnerLock, SupervisorConfig
from services.recorder.settings import Settings
from services.recorder.store import RecorderStore
from services.recorder.track_recorder import TrackRecorderConfig

logger = logging.getLogger(__name__)
PURGE_INTERVAL_S = 3600.0


def setup(ctx: ServiceContext) -> None:
    """Register the consumer (group ``RECORDER_CONSUMER_GROUP``), the supervisor and the purge task."""
    settings: Settings = ctx.settings
    if ctx.object_store is None:
        raise RuntimeError("the recorder needs an object store")
    store = RecorderStore(ctx.pool, settings.db_schema)
    admin_key = settings.janus.admin_key.get_secret_value()
    janus = JanusClient.from_settings(settings.janus)
    supervisor = CaptureSupervisor(
        store,
        ctx.object_store,
        JanusStreamForwarder(janus, admin_key),
        PortAllocator(settings.rtp_host, settings.rtp_port_first, settings.rtp_port_last),
        OwnerLock(ctx.pool),
        RecorderMetrics.create(ctx.registry),
        SupervisorConfig(
            forward_host=settings.rtp_host,
            interval=settings.reconcile_interval,
            recorder=TrackRecorderConfig(
                chunk_seconds=settings.chunk_seconds, keyframe_interval=settings.keyframe_interval
            ),
        ),
        utcnow,
    )
    ctx.app.state.supervisor = supervisor
    consumer = EventConsumer(
        settings.kafka.bootstrap_servers, [ROOM_EVENTS], settings.consumer_group, registry=ctx.registry
    )
    handler = functools.partial(handle, store=store, wake=supervisor.wake)

    async def consume(stop: asyncio.Event) -> None:
        async def on_event(event: Event) -> None:
            await handler(event)

        await consumer.run_until(on_event, stop)

    async def supervise(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await janus.start()
                break
            except (JanusError, httpx.HTTPError) as exc:
                logger.warning("janus unavailable, retrying", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
        try:
            await supervisor.run(stop)
        finally:
            await janus.close()

    async def purge(stop: asyncio.Event) -> None:
        retention = timedelta(days=settings.deleted_retention_days)
        while not stop.is_set():
            await store.purge_deleted(utcnow() - retention)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PURGE_INTERVAL_S)

    ctx.runner.add_task("room-events", consume)
    ctx.runner.add_task("capture-supervisor", supervise)
    ctx.runner.add_task("purge-deleted", purge)
