"""libs.db against real PostgreSQL and Kafka: migrations, outbox exactly-once, idempotent consumers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from libs.db.migrate import migrate
from libs.db.outbox import OutboxRelay, RelayCrash, add_event
from libs.db.pool import transaction
from libs.db.processed import mark_processed
from libs.db.testing import integration_env, temp_schema, unique_name
from libs.events.base import Event
from libs.events.consumer import EventConsumer
from libs.events.models import RoomCreated
from libs.events.sids import AccountSid, RoomSid
from libs.events.topics import ROOM_EVENTS, TopicSpec, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return integration_env()


@pytest.fixture
async def db(env: dict[str, str]) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with temp_schema(env["POSTGRES_DSN"]) as (pool, schema):
        await migrate(pool, schema, None)
        yield pool, schema


def _event(room: RoomSid, seq: int) -> RoomCreated:
    return RoomCreated(
        occurred_at=datetime.now(UTC),
        account_sid=AccountSid("AC" + "1" * 32),
        room_sid=room,
        room_name=f"r{seq}",
        room_status="in-progress",
        sequence_number=seq,
    )


async def _add(pool: asyncpg.Pool, schema: str, event: Event, topic: str) -> None:
    async with transaction(pool) as conn:
        await add_event(conn, schema, event)
        await conn.execute(
            f"UPDATE {schema}.outbox SET topic = $1 WHERE event_id = $2",  # noqa: S608
            topic,
            event.event_id,
        )


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes, dict[str, Any]]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[bytes, dict[str, Any]]] = []
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not behind:
                return out
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out += [(r.key, json.loads(r.value)) for r in records]
    finally:
        await consumer.stop()


async def test_migrate_applies_once_and_in_order(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "0002_more.sql").write_text("ALTER TABLE things ADD COLUMN note text;")
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "README").write_text("ignored")
    async with temp_schema(env["POSTGRES_DSN"]) as (pool, schema):
        results = await asyncio.gather(*(migrate(pool, schema, tmp_path) for _ in range(3)))
        assert sorted(results, key=len) == [[], [], ["0001_init.sql", "0002_more.sql"]]
        await pool.execute(f"INSERT INTO {schema}.things (id, note) VALUES (1, 'x')")  # noqa: S608
        assert await migrate(pool, schema, tmp_path) == []
        tables = {
            r["table_name"]
            for r in await pool.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema=$1", schema
            )
        }
        assert {"outbox", "processed_events", "schema_migrations", "things"} <= tables


async def test_relay_crash_after_kafka_commit_is_exactly_once(
    env: dict[str, str], db: tuple[asyncpg.Pool, str]
) -> None:
    pool, schema = db
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = unique_name("test.outbox.")
    progress = unique_name("test.progress.")
    await ensure_topics(
        bootstrap, [TopicSpec(topic, 3, 3600_000), TopicSpec(progress, 1, -1, compacted=True)]
    )
    relay_name = unique_name("relay-")
    room = RoomSid.new()
    first = [_event(room, i) for i in range(5)]
    for e in first:
        await _add(pool, schema, e, topic)

    def crash(point: str) -> None:
        if point == "after-kafka-commit":
            raise RelayCrash(point)

    crashing = OutboxRelay(pool, schema, bootstrap, relay_name, progress_topic=progress, fail_point=crash)
    await crashing.start()
    with pytest.raises(RelayCrash):
        await crashing.publish_pending()
    await crashing.close()
    pending = await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")  # noqa: S608
    assert pending == 5  # Kafka has them, the DB does not know yet

    second = [_event(room, i) for i in range(5, 8)]
    for e in second:
        await _add(pool, schema, e, topic)
    registry = CollectorRegistry()
    relay = OutboxRelay(pool, schema, bootstrap, relay_name, progress_topic=progress, registry=registry)
    assert await relay.start() == 5  # recovered from the marker
    assert await relay.publish_pending() == 3
    assert await relay.publish_pending() == 0
    await relay.close()
    assert registry.get_sample_value("outbox_published_events_total", {"schema": schema}) == 3

    # Housekeeping removes only published rows past retention (and old processed marks).
    await pool.execute(
        f"UPDATE {schema}.outbox SET published_at = now() - interval '8 days' WHERE event_id = $1",  # noqa: S608
        first[0].event_id,
    )
    async with transaction(pool) as conn:
        await mark_processed(conn, schema, "c", first[0].event_id)
        await conn.execute(f"UPDATE {schema}.processed_events SET processed_at = now() - interval '30 days'")  # noqa: S608
    assert await relay.housekeeping() == (1, 1)
    assert await relay.housekeeping() == (0, 0)

    records = await _read_all(bootstrap, topic)
    ids = [r[1]["event_id"] for r in records]
    assert sorted(ids) == sorted(str(e.event_id) for e in first + second)
    assert len(ids) == len(set(ids)) == 8
    assert {k for k, _ in records} == {str(room).encode()}
    assert [r[1]["sequence_number"] for r in records] == list(range(8))  # one key: one partition, in order


async def test_relay_run_wakes_on_notify(env: dict[str, str], db: tuple[asyncpg.Pool, str]) -> None:
    pool, schema = db
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = unique_name("test.outbox.")
    progress = unique_name("test.progress.")
    await ensure_topics(
        bootstrap, [TopicSpec(topic, 1, 3600_000), TopicSpec(progress, 1, -1, compacted=True)]
    )
    relay = OutboxRelay(
        pool, schema, bootstrap, unique_name("relay-"), progress_topic=progress, poll_interval_s=30
    )
    standby = OutboxRelay(
        pool, schema, bootstrap, unique_name("relay-"), progress_topic=progress, poll_interval_s=0.2
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.wait_for(relay.active.wait(), 30)  # relay holds the lock before the standby starts
    standby_task = asyncio.create_task(standby.run(stop))
    try:
        await asyncio.sleep(1)  # the standby is waiting for the lock
        assert not standby.active.is_set()
        event = _event(RoomSid.new(), 0)
        await _add(pool, schema, event, topic)
        deadline = asyncio.get_running_loop().time() + 20
        while relay.published < 1:
            assert asyncio.get_running_loop().time() < deadline, "relay did not wake on NOTIFY"
            await asyncio.sleep(0.1)
        assert standby.published == 0
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(task, standby_task), 30)
    assert [r[1]["event_id"] for r in await _read_all(bootstrap, topic)] == [str(event.event_id)]


async def test_consumer_retries_and_mark_processed_dedupes(
    env: dict[str, str], db: tuple[asyncpg.Pool, str]
) -> None:
    pool, schema = db
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    progress = unique_name("test.progress.")
    topic = unique_name("test.room.")
    await ensure_topics(
        bootstrap, [TopicSpec(topic, 3, 3600_000), TopicSpec(progress, 1, -1, compacted=True)]
    )
    room = RoomSid.new()
    events = [_event(room, i) for i in range(4)]
    await pool.execute(f"CREATE TABLE {schema}.effects (event_id uuid, seq int)")  # noqa: S608
    for e in events:
        await _add(pool, schema, e, topic)
    relay = OutboxRelay(pool, schema, bootstrap, unique_name("relay-"), progress_topic=progress)
    await relay.start()
    await relay.publish_pending()
    await relay.close()

    failures = {"left": 2}
    seen: list[int] = []

    async def handler(event: Event) -> None:
        if not isinstance(event, RoomCreated) or event.room_sid != room:
            return
        async with transaction(pool) as conn:
            if not await mark_processed(conn, schema, "test", event.event_id):
                return
            await conn.execute(
                f"INSERT INTO {schema}.effects VALUES ($1, $2)",  # noqa: S608
                event.event_id,
                event.sequence_number,
            )
            if event.sequence_number == 2 and failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("boom mid-handling")  # rolls back effect + processed mark
        seen.append(event.sequence_number)

    group = unique_name("g-")
    consumer = EventConsumer(
        bootstrap, [topic], group, initial_backoff_s=0.05, decode_as={topic: ROOM_EVENTS}
    )
    task = asyncio.create_task(consumer.run(handler))
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(seen) < 4:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 30)
    assert seen == [0, 1, 2, 3]
    assert failures["left"] == 0

    # Redelivery of everything (a fresh group re-reads the topic): no duplicated effects.
    again = EventConsumer(
        bootstrap, [topic], unique_name("g-"), initial_backoff_s=0.05, decode_as={topic: ROOM_EVENTS}
    )
    task = asyncio.create_task(again.run(handler))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while again.handled < 4:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    finally:
        again.stop()
        await asyncio.wait_for(task, 30)
    rows = await pool.fetch(f"SELECT seq FROM {schema}.effects ORDER BY seq")  # noqa: S608
    assert [r["seq"] for r in rows] == [0, 1, 2, 3]


async def test_undecodable_goes_to_dlq(env: dict[str, str]) -> None:
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = unique_name("test.room.")
    await ensure_topics(bootstrap, [TopicSpec(topic, 1, 3600_000), TopicSpec(topic + ".dlq", 1, 3600_000)])
    marker = unique_name("garbage-").encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{not json " + marker, key=b"k")
    finally:
        await producer.stop()
    consumer = EventConsumer(
        bootstrap, [topic], unique_name("g-"), initial_backoff_s=0.05, decode_as={topic: ROOM_EVENTS}
    )
    handled: list[Event] = []

    async def handler(event: Event) -> None:
        handled.append(event)

    task = asyncio.create_task(consumer.run(handler))
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while consumer.dead_lettered < 1:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 30)
    dlq_values = []
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await reader.start()
    try:
        tp = TopicPartition(topic + ".dlq", 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        end = (await reader.end_offsets([tp]))[tp]
        while await reader.position(tp) < end:
            for records in (await reader.getmany(timeout_ms=1000)).values():
                dlq_values += [r.value for r in records]
    finally:
        await reader.stop()
    assert any(marker in v for v in dlq_values)
