"""Wiring: settings -> Postgres pool, Kafka consumer, dispatcher, internal HTTP app; run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import asyncpg

from libs.auth.store import IdentityStore
from libs.db.migrate import migrate
from libs.db.pool import create_pool
from libs.events.base import Event
from libs.events.consumer import EventConsumer
from libs.events.sids import AccountSid
from libs.events.topics import ALL_TOPICS, TopicSpec, ensure_topics
from libs.observability.health import create_app, kafka_check, postgres_check
from libs.observability.logs import configure_logging
from libs.observability.runner import ServiceRunner
from libs.twilio.signature import compute_signature
from services.notifier import handlers
from services.notifier.api import internal_router
from services.notifier.delivery import CallbackSender
from services.notifier.dispatcher import AuthTokens, Dispatcher, DispatchLimits
from services.notifier.metrics import NotifierMetrics
from services.notifier.settings import Settings
from services.notifier.store import DeliveryStore

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PRUNE_INTERVAL_S = 300.0


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

    def __post_init__(self) -> None:
        self._stopped = asyncio.Event()

    async def refresh_gauges(self) -> None:
        """Keep the pending/dead gauges current (every ``gauge_interval_s``) until `stop()`."""
        while not self._stopped.is_set():
            try:
                self.metrics.set_queue(await self.store.count_by_state())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("queue gauge refresh failed", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.gauge_interval_s):
                    await self._stopped.wait()

    async def prune_delivered(self) -> None:
        """Delete delivered rows past the retention, a batch at a time, every few minutes until `stop()`."""
        retention = timedelta(days=self.settings.retention_days)
        while not self._stopped.is_set():
            try:
                deleted = await self.store.prune(retention)
                if deleted:
                    logger.info("delivered callbacks pruned", extra={"deleted": deleted})
                    continue  # more may be due
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("prune failed", extra={"error": type(exc).__name__})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PRUNE_INTERVAL_S):
                    await self._stopped.wait()

    def stop(self) -> None:
        """Graceful stop: no new messages or claims; `run` returns when attempts in flight are done."""
        self._stopped.set()
        self.consumer.stop()
        self.dispatcher.stop()

    async def run(self) -> None:
        """Consume, dispatch and refresh gauges until cancelled (or one of them fails)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.consumer.run(self.handle), name="notifier-consumer")
            group.create_task(self.dispatcher.run(), name="notifier-dispatcher")
            group.create_task(self.refresh_gauges(), name="notifier-gauges")
            group.create_task(self.prune_delivered(), name="notifier-prune")

    async def close(self) -> None:
        """Release HTTP and database resources."""
        self.consumer.stop()
        await self.sender.aclose()
        await self.pool.close()


class IdentityTokens:
    """Auth tokens from libs.auth, cached briefly so each attempt does not unseal again."""

    def __init__(self, identity: IdentityStore, ttl_s: float = 60.0) -> None:
        self._identity = identity
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def auth_token(self, account_sid: str) -> str | None:
        now = time.monotonic()
        hit = self._cache.get(account_sid)
        if hit is not None and hit[0] > now:
            return hit[1]
        if not AccountSid.is_valid(account_sid):
            return None
        token = await self._identity.auth_token(AccountSid(account_sid))
        self._cache[account_sid] = (now + self._ttl_s, token)
        return token


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Specs of the consumed topics (their logical twins' shape under the consumed names)."""
    logical = {spec.name: spec for spec in ALL_TOPICS}
    return [replace(logical[name], name=consumed) for consumed, name in settings.topic_map().items()]


async def build(
    settings: Settings, tokens: AuthTokens | None = None, metrics: NotifierMetrics | None = None
) -> Notifier:
    """Connect to Postgres, apply migrations and assemble the notifier (nothing runs yet).

    ``tokens`` defaults to the accounts of libs.auth (needs MIXDOWN_MASTER_KEY).
    """
    pool = await create_pool(
        settings.postgres.dsn,
        min_size=settings.postgres.min_pool_size,
        max_size=settings.postgres.max_pool_size,
    )
    try:
        await migrate(pool, settings.db_schema, MIGRATIONS)
        if tokens is None:
            tokens = IdentityTokens(IdentityStore(pool, settings.platform.master_key_bytes()))
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


async def _run_until_stop(notifier: Notifier, stop: asyncio.Event) -> None:
    """The notifier loops as a ServiceRunner task: on ``stop`` they stop gracefully (attempts finish)."""
    run = asyncio.create_task(notifier.run(), name="notifier-loops")
    stopped = asyncio.create_task(stop.wait(), name="notifier-stop")
    done, _ = await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if stopped in done:
        notifier.stop()
    else:
        stopped.cancel()
    await run


async def serve(settings: Settings) -> None:
    """The service process: topics, migrations, notifier loops and the internal HTTP app on ``port``.

    SIGTERM/SIGINT stop the HTTP server, then the notifier stops gracefully: no new claims, attempts in
    flight get up to the HTTP timeout to finish before they are cancelled (and retried after their lease).
    """
    await ensure_topics(settings.kafka.bootstrap_servers, topic_specs(settings))
    notifier = await build(settings)
    app = create_app(
        "notifier",
        registry=notifier.metrics.registry,
        readiness=[postgres_check(notifier.pool), kafka_check(settings.kafka.bootstrap_servers)],
    )
    app.include_router(internal_router(notifier.store, notifier.dispatcher.wake))
    runner = ServiceRunner(
        app, host=settings.host, port=settings.port, service="notifier", grace_s=settings.http_timeout_s + 2.0
    )
    runner.add_task("notifier", lambda stop: _run_until_stop(notifier, stop))
    runner.add_closer(notifier.close)
    await runner.serve()


def main() -> None:
    """`python -m services.notifier`."""
    configure_logging("notifier")
    # httpx logs full request URLs at INFO; GET callbacks carry their parameters in the query string.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(serve(Settings()))
