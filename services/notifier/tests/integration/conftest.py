"""Fixtures for notifier integration tests: the devstack's Postgres/Kafka, a uuid-named schema per test.

For a run without the devstack, set NOTIFIER_IT_POSTGRES_DSN (and NOTIFIER_IT_KAFKA for the Kafka tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from libs.config import KafkaSettings, PostgresSettings
from libs.db.migrate import migrate
from libs.db.pool import create_pool
from libs.events.base import Event
from libs.events.codec import encode
from libs.events.topics import COMPOSITION_EVENTS, RECORDING_EVENTS, ROOM_EVENTS, TopicSpec, ensure_topics
from libs.testing.devstack import ensure_devstack
from services.notifier.main import Notifier, build, run_until_cancelled
from services.notifier.settings import Settings
from services.notifier.store import DeliveryStore

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """POSTGRES_DSN and KAFKA_BOOTSTRAP_SERVERS of the stack the tests run against."""
    dsn = os.environ.get("NOTIFIER_IT_POSTGRES_DSN")
    if dsn:
        return {
            "POSTGRES_DSN": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("NOTIFIER_IT_KAFKA", "127.0.0.1:9092"),
        }
    env = ensure_devstack()
    env.setdefault("POSTGRES_DSN", "postgresql://mixdown:mixdown@127.0.0.1:5433/mixdown")
    env.setdefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    return env


@pytest.fixture
def schema() -> str:
    return "notifier_it_" + uuid.uuid4().hex[:12]


@pytest.fixture
async def pool(stack_env: dict[str, str], schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated schema (dropped afterwards)."""
    pool = await create_pool(stack_env["POSTGRES_DSN"], min_size=1, max_size=10)
    try:
        await migrate(pool, schema, MIGRATIONS)
        yield pool
    finally:
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def topics(stack_env: dict[str, str], run_id: str) -> dict[str, str]:
    """uuid-suffixed copies of the three consumed topics: logical name -> real name."""
    names = {t: f"{t}-{run_id}" for t in (ROOM_EVENTS, RECORDING_EVENTS, COMPOSITION_EVENTS)}
    await ensure_topics(
        stack_env["KAFKA_BOOTSTRAP_SERVERS"], [TopicSpec(n, 3, 3600 * 1000) for n in names.values()]
    )
    return names


@pytest.fixture
async def publish(
    stack_env: dict[str, str], topics: dict[str, str]
) -> AsyncIterator[Callable[[Event], Awaitable[None]]]:
    """Publish an event (libs.events codec) to the test copy of its topic, keyed like production."""
    producer = AIOKafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    await producer.start()

    async def send(event: Event) -> None:
        await producer.send_and_wait(
            topics[event.topic],
            encode(event),
            key=event.key().encode(),
            headers=[("event_type", event.type.encode())],
        )

    try:
        yield send
    finally:
        await producer.stop()


@pytest.fixture
def notifier_settings(stack_env: dict[str, str], schema: str, run_id: str) -> Settings:
    """Fast settings for tests: small backoff and poll interval, private callbacks allowed."""
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"]),
        postgres=PostgresSettings(dsn=stack_env["POSTGRES_DSN"], max_pool_size=5),
        db_schema=schema,
        consumer_group=f"notifier-it-{run_id}",
        topic_suffix=f"-{run_id}",
        allow_private_callbacks=True,
        backoff_base_s=0.2,
        backoff_cap_s=0.5,
        poll_interval_s=0.1,
        http_timeout_s=5.0,
        lease_s=8.0,
        gauge_interval_s=0.5,
    )


class StaticTokens:
    """Auth tokens by account SID (stands in for libs.auth in in-process tests)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    async def auth_token(self, account_sid: str) -> str | None:
        return self.tokens.get(account_sid)


@contextlib.asynccontextmanager
async def running_notifier(settings: Settings, tokens: dict[str, str]) -> AsyncIterator[Notifier]:
    """An in-process notifier (consumer + dispatcher) until the block exits."""
    notifier = await build(settings, StaticTokens(tokens))
    task = asyncio.create_task(run_until_cancelled(notifier))
    try:
        yield notifier
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_state(store: DeliveryStore, state: str, count: int, within_s: float = 20.0) -> None:
    """Poll until at least ``count`` deliveries are in ``state``."""
    async with asyncio.timeout(within_s):
        while len(await store.list(state=state)) < count:  # noqa: ASYNC110 (polls the database)
            await asyncio.sleep(0.05)
