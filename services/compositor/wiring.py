"""The compositor's processes inside the service: the event consumer, the job workers, the purge of deleted
compositions and the queue gauge. Called by ``libs.observability.bootstrap.build_service``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg

from libs.events.base import Event
from libs.events.consumer import EventConsumer
from libs.events.topics import COMPOSITION_JOBS, RECORDING_EVENTS, ROOM_EVENTS
from libs.observability.runner import TaskFactory, wait_or_stop
from libs.storage.errors import StorageError
from libs.storage.port import ObjectStore
from libs.twilio.dates import utcnow
from services.compositor import handlers
from services.compositor.metrics import CompositorMetrics
from services.compositor.store import CompositionStore
from services.compositor.worker import JobRunner, default_instance_id

if TYPE_CHECKING:
    from libs.observability.bootstrap import ServiceContext

logger = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0
GAUGE_INTERVAL_S = 10.0
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def periodic(interval_s: float, step: Callable[[], Awaitable[None]], name: str) -> TaskFactory:
    """A task running ``step`` every ``interval_s`` seconds until stop; failures are logged and retried."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await step()
            except (*DB_ERRORS, StorageError) as exc:
                logger.warning("periodic task failed", extra={"task": name, "error": type(exc).__name__})
            if await wait_or_stop(stop, interval_s):
                return

    return run


async def purge_deleted(store: CompositionStore, objects: ObjectStore, retention: timedelta) -> int:
    """Drop the metadata (and any leftover media) of compositions deleted longer than ``retention`` ago."""
    total = 0
    while True:
        keys = await store.purge_deleted(utcnow() - retention)
        for key in keys:
            with contextlib.suppress(StorageError):
                await objects.delete(key)
        total += len(keys)
        if not keys:
            return total


async def setup(ctx: ServiceContext) -> None:
    """Register the consumer, workers, purge and gauge tasks on the service runner."""
    settings = ctx.settings
    worker_settings = settings.jobs
    objects = ctx.object_store
    if objects is None:
        raise RuntimeError("the compositor needs an object store")
    store = CompositionStore(ctx.pool, settings.db_schema, settings.consumer_group)
    metrics = CompositorMetrics(ctx.registry)
    owner = worker_settings.instance_id or default_instance_id(settings.port)
    runner = JobRunner(store, objects, metrics, worker_settings, owner, utcnow)
    consumer = EventConsumer(
        settings.kafka.bootstrap_servers,
        [ROOM_EVENTS, RECORDING_EVENTS, COMPOSITION_JOBS],
        settings.consumer_group,
        registry=ctx.registry,
    )

    async def handle(event: Event) -> None:
        await handlers.on_event(event, store, utcnow, runner.wake)

    async def consume(stop: asyncio.Event) -> None:
        task = asyncio.create_task(consumer.run(handle))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        consumer.stop()
        waiter.cancel()
        await task

    async def work(stop: asyncio.Event) -> None:
        task = asyncio.create_task(runner.run())
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not task.done():
            task.cancel()  # a job in hand gives its lease back (JobRunner.process)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def purge() -> None:
        purged = await purge_deleted(store, objects, timedelta(days=worker_settings.retention_days))
        if purged:
            logger.info("deleted compositions purged", extra={"count": purged})

    async def gauge() -> None:
        metrics.set_queue(await store.queue_depth())

    ctx.runner.add_task("compositor-consumer", consume)
    ctx.runner.add_task("compositor-workers", work)
    ctx.runner.add_task("compositor-purge", periodic(PURGE_INTERVAL_S, purge, "purge"))
    ctx.runner.add_task("compositor-queue-gauge", periodic(GAUGE_INTERVAL_S, gauge, "queue-gauge"))
    logger.info("compositor wired", extra={"workers": worker_settings.workers, "owner": owner})
