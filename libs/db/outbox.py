"""Transactional outbox: events written with the state change, published exactly once by a relay.

Producers call ``add_event`` inside their DB transaction. ``OutboxRelay`` (one active per schema, elected with
a Postgres advisory lock) publishes pending rows in id order inside a Kafka transaction together with a marker
record on ``outbox.progress`` (key = relay name, value = the ids of the batch). Only after the Kafka
commit are the rows marked published. If the relay dies between the two, the next relay reads the last
committed marker (read_committed) at start and marks those rows published instead of sending them again.

The marker carries the batch's ids, not only the highest id: outbox ids are assigned at insert, so a row
with a lower id can commit after a higher one was already published; "everything up to max id" would skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from libs.db.pool import DbConnection, check_schema_name
from libs.events.base import Event
from libs.events.codec import encode
from libs.events.topics import ALL_TOPICS, OUTBOX_PROGRESS, ensure_topics

logger = logging.getLogger(__name__)

FailPoint = Callable[[str], None]


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel announcing new outbox rows of ``schema``."""
    return f"{check_schema_name(schema)}_outbox"


async def add_event(conn: DbConnection, schema: str, event: Event) -> None:
    """Queue ``event`` for publication; call inside the transaction that makes the fact true.

    Idempotent per ``event_id`` (a second insert of the same event is ignored).
    """
    check_schema_name(schema)
    await conn.execute(
        f"INSERT INTO {schema}.outbox (event_id, topic, key, event_type, payload) "  # noqa: S608
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        event.event_id,
        event.topic,
        event.key(),
        event.type,
        encode(event),
    )
    await conn.execute("SELECT pg_notify($1, '')", outbox_channel(schema))


async def add_events(conn: DbConnection, schema: str, events: Sequence[Event]) -> None:
    """``add_event`` for each event, in order."""
    for event in events:
        await add_event(conn, schema, event)


class RelayCrash(Exception):  # noqa: N818  # named for what tests simulate
    """Raised by test fail points to simulate the relay dying."""


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Counter, Counter]] = weakref.WeakKeyDictionary()


def _metrics_for(registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """One set of counters per registry, shared by every relay of the process."""
    metrics = _METRICS.get(registry)
    if metrics is None:
        metrics = (
            Counter(
                "outbox_published_events", "Outbox rows published to Kafka", ["schema"], registry=registry
            ),
            Counter(
                "outbox_batches", "Kafka transactions committed by the relay", ["schema"], registry=registry
            ),
        )
        _METRICS[registry] = metrics
    return metrics


class OutboxRelay:
    """Publishes ``<schema>.outbox`` to Kafka exactly once (see module docstring).

    ``fail_point`` is a test hook called with ``"after-kafka-commit"`` between Kafka commit and DB mark.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        bootstrap: str,
        relay_name: str,
        *,
        poll_interval_s: float = 1.0,
        batch_size: int = 500,
        progress_topic: str = OUTBOX_PROGRESS,
        fail_point: FailPoint | None = None,
        registry: CollectorRegistry | None = None,
        keep_published: timedelta = timedelta(days=7),
        keep_processed: timedelta = timedelta(days=21),
        housekeeping_interval_s: float = 3600.0,
    ) -> None:
        """``keep_processed`` must exceed the retention of every consumed topic (14 days), or a redelivered
        event could be applied twice."""
        self._pool = pool
        self._schema = check_schema_name(schema)
        self._bootstrap = bootstrap
        self._relay_name = relay_name
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._progress_topic = progress_topic
        self._fail_point = fail_point
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self.published = 0
        self.active = asyncio.Event()  # set while this relay holds the schema's leadership and publishes
        self._metrics = _metrics_for(registry) if registry is not None else None
        self._keep_published = keep_published
        self._keep_processed = keep_processed
        self._housekeeping_interval_s = housekeeping_interval_s
        self._next_housekeeping = 0.0

    @property
    def relay_name(self) -> str:
        return self._relay_name

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Start the transactional producer (fencing any previous one) and recover; returns rows recovered."""
        specs = [s for s in ALL_TOPICS if s.name == self._progress_topic]
        if specs:
            await ensure_topics(self._bootstrap, specs)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=f"outbox-{self._relay_name}",
            transactional_id=f"outbox-{self._relay_name}",
            enable_idempotence=True,
            acks="all",
        )
        await producer.start()
        self._producer = producer
        return await self.recover()

    async def close(self) -> None:
        """Stop the producer (idempotent)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set. Waits for the schema's leadership lock first.

        Failures (Postgres or Kafka down, producer fenced) are logged and the whole cycle restarts after a
        capped backoff; rows stay pending meanwhile, so nothing is lost.
        """
        backoff = self._poll_interval_s
        while not stop.is_set():
            try:
                await self._run_once(stop)
                backoff = self._poll_interval_s
            except Exception:
                logger.exception("outbox relay failed, restarting", extra={"schema": self._schema})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, 30.0)

    async def _run_once(self, stop: asyncio.Event) -> None:
        async with self._pool.acquire() as lock_conn:
            if not await self._acquire_leadership(lock_conn, stop):
                return
            await lock_conn.add_listener(outbox_channel(self._schema), self._on_notify)
            try:
                await self.start()
                self.active.set()
                logger.info("outbox relay active", extra={"schema": self._schema, "relay": self._relay_name})
                while not stop.is_set():
                    await self._maybe_housekeeping()
                    count = await self.publish_pending(self._batch_size)
                    if count >= self._batch_size:
                        continue
                    await self._sleep(stop)
            finally:
                self.active.clear()
                with contextlib.suppress(Exception):
                    await lock_conn.remove_listener(outbox_channel(self._schema), self._on_notify)
                await self.close()
                with contextlib.suppress(Exception):
                    await lock_conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self._lock_key())

    def _lock_key(self) -> str:
        return f"mixdown.outbox.{self._schema}"

    async def _acquire_leadership(self, conn: DbConnection, stop: asyncio.Event) -> bool:
        waiting_logged = False
        while not stop.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._lock_key()):
                return True
            if not waiting_logged:
                logger.info("outbox relay standing by", extra={"schema": self._schema})
                waiting_logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._poll_interval_s)
        return False

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _sleep(self, stop: asyncio.Event) -> None:
        wake = asyncio.ensure_future(self._wake.wait())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait(
                {wake, stopped}, timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            wake.cancel()
            stopped.cancel()
        self._wake.clear()

    # ------------------------------------------------------------------ work

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("OutboxRelay.start() was not called")
        return self._producer

    async def publish_pending(self, limit: int = 500) -> int:
        """Publish up to ``limit`` pending rows in id order in one Kafka transaction; returns the count."""
        producer = self._require_producer()
        schema = self._schema
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT id, event_id, topic, key, event_type, payload FROM {schema}.outbox "  # noqa: S608
                "WHERE published_at IS NULL ORDER BY id LIMIT $1",
                limit,
            )
            if not rows:
                return 0
            ids = [int(r["id"]) for r in rows]
            marker = json.dumps({"schema": schema, "max_id": max(ids), "ids": ids}).encode()
            async with producer.transaction():
                for row in rows:
                    await producer.send(
                        row["topic"],
                        bytes(row["payload"]),
                        key=row["key"].encode(),
                        headers=[
                            ("event_type", row["event_type"].encode()),
                            ("event_id", str(row["event_id"]).encode()),
                        ],
                    )
                await producer.send(self._progress_topic, marker, key=self._relay_name.encode())
            if self._fail_point is not None:
                self._fail_point("after-kafka-commit")
            await self._mark(conn, ids)
        self.published += len(ids)
        if self._metrics is not None:
            self._metrics[0].labels(schema).inc(len(ids))
            self._metrics[1].labels(schema).inc()
        logger.debug(
            "outbox batch published", extra={"schema": schema, "count": len(ids), "max_id": max(ids)}
        )
        return len(ids)

    async def _mark(self, conn: DbConnection, ids: list[int]) -> int:
        status = await conn.execute(
            f"UPDATE {self._schema}.outbox SET published_at = now() "  # noqa: S608
            "WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
            ids,
        )
        return int(status.split()[-1])

    async def _maybe_housekeeping(self) -> None:
        now = asyncio.get_running_loop().time()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self._housekeeping_interval_s
        outbox, processed = await self.housekeeping()
        if outbox or processed:
            logger.info(
                "outbox housekeeping",
                extra={"schema": self._schema, "outbox": outbox, "processed": processed},
            )

    async def housekeeping(self) -> tuple[int, int]:
        """Delete published outbox rows and processed marks past their retention; returns both counts."""
        async with self._pool.acquire() as conn:
            outbox = await conn.execute(
                f"DELETE FROM {self._schema}.outbox "  # noqa: S608
                "WHERE published_at IS NOT NULL AND published_at < now() - $1::interval",
                self._keep_published,
            )
            processed = await conn.execute(
                f"DELETE FROM {self._schema}.processed_events "  # noqa: S608
                "WHERE processed_at < now() - $1::interval",
                self._keep_processed,
            )
        return int(outbox.split()[-1]), int(processed.split()[-1])

    async def recover(self) -> int:
        """Mark the rows of the last committed marker of this relay as published; returns how many changed."""
        ids = await self._last_marker_ids()
        if not ids:
            return 0
        async with self._pool.acquire() as conn:
            changed = await self._mark(conn, ids)
        if changed:
            logger.warning(
                "outbox rows recovered from kafka marker",
                extra={"schema": self._schema, "relay": self._relay_name, "count": changed},
            )
        return changed

    @staticmethod
    async def _behind(consumer: AIOKafkaConsumer, tps: list[TopicPartition], ends: dict[Any, int]) -> bool:
        for tp in tps:
            if await consumer.position(tp) < ends[tp]:
                return True
        return False

    async def _last_marker_ids(self) -> list[int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=f"outbox-{self._relay_name}-recovery",
            group_id=None,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = await self._require_producer().partitions_for(self._progress_topic)
            tps = [TopicPartition(self._progress_topic, p) for p in sorted(partitions)]
            if not tps:
                return []
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            wanted = self._relay_name.encode()
            last: list[int] = []
            while await self._behind(consumer, tps, ends):
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for record in records:
                        if record.key == wanted and record.value:
                            last = [int(i) for i in json.loads(record.value).get("ids", [])]
            return last
        finally:
            await consumer.stop()
