"""Wiring: settings -> Postgres pool, Kafka consumer, dispatcher, internal HTTP app; run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg

from libs.db.migrate import migrate
from libs.db.pool import create_pool
from libs.events.base import Event
from libs.events.consumer import EventConsumer
from libs.twilio.signature import compute_signature
from services.notifier import handlers
from services.notifier.delivery import CallbackSender
from services.notifier.dispatcher import AuthTokens, Dispatcher, DispatchLimits
from services.notifier.metrics import NotifierMetrics
from services.notifier.settings import Settings
from services.notifier.store import DeliveryStore

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class Notifier:
    """The running parts of one notifier process."""

    settings: Settings
    pool: asyncpg.Pool
    store: DeliveryStore
    sender: CallbackSender
    dispatcher: Dispatcher
    consumer: EventConsumer
    metrics: NotifierMetrics

    async def handle(self, event: Event) -> None:
        """The consumer's handler: queue the event's callback durably (see handlers.on_event)."""
        await handlers.on_event(event, self.store, self.dispatcher.wake, self.metrics)

    async def refresh_gauges(self) -> None:
        """Keep the pending/dead gauges current (every ``gauge_interval_s``)."""
        while True:
            try:
                self.metrics.set_queue(await self.store.count_by_state())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("queue gauge refresh failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.settings.gauge_interval_s)

    async def run(self) -> None:
        """Consume, dispatch and refresh gauges until cancelled (or one of them fails)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.consumer.run(self.handle), name="notifier-consumer")
            group.create_task(self.dispatcher.run(), name="notifier-dispatcher")
            group.create_task(self.refresh_gauges(), name="notifier-gauges")

    async def close(self) -> None:
        """Release HTTP and database resources."""
        self.consumer.stop()
        await self.sender.aclose()
        await self.pool.close()


async def build(settings: Settings, tokens: AuthTokens, metrics: NotifierMetrics | None = None) -> Notifier:
    """Connect to Postgres, apply migrations and assemble the notifier (nothing runs yet)."""
    pool = await create_pool(
        settings.postgres.dsn,
        min_size=settings.postgres.min_pool_size,
        max_size=settings.postgres.max_pool_size,
    )
    try:
        await migrate(pool, settings.db_schema, MIGRATIONS)
    except BaseException:
        await pool.close()
        raise
    metrics = metrics or NotifierMetrics()
    store = DeliveryStore(pool, settings.db_schema)
    sender = CallbackSender(
        policy=settings.target_policy(), sign=compute_signature, timeout_s=settings.http_timeout_s
    )
    dispatcher = Dispatcher(
        store=store,
        sender=sender,
        tokens=tokens,
        backoff=settings.backoff_policy(),
        limits=DispatchLimits(
            global_limit=settings.global_concurrency,
            per_host_limit=settings.per_host_concurrency,
            lease=timedelta(seconds=settings.lease_s),
            poll_interval_s=settings.poll_interval_s,
        ),
        metrics=metrics,
    )
    topic_map = settings.topic_map()
    consumer = EventConsumer(
        settings.kafka.bootstrap_servers, list(topic_map), settings.consumer_group, decode_as=topic_map
    )
    return Notifier(settings, pool, store, sender, dispatcher, consumer, metrics)


async def run_until_cancelled(notifier: Notifier) -> None:
    """Run a built notifier; always closes it."""
    try:
        await notifier.run()
    finally:
        with contextlib.suppress(Exception):
            await notifier.close()
