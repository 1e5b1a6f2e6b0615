"""At-least-once Kafka consumer runner shared by every service (plain aiokafka).

Guarantees: messages of a partition are handled one at a time, in order; an offset is committed only after
the handler returned; a failing message is retried with capped exponential backoff and never skipped;
undecodable messages are copied to ``<topic>.dlq`` and then committed. Handlers must be idempotent
(``libs.db.processed.mark_processed``) because redelivery after a crash or rebalance is normal.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, Counter

from libs.events.base import Event
from libs.events.codec import decode
from libs.events.errors import TransientError, UndecodableEvent
from libs.events.topics import dlq

logger = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Counter, Counter, Counter]] = (
    weakref.WeakKeyDictionary()
)


def _metrics_for(registry: CollectorRegistry) -> tuple[Counter, Counter, Counter]:
    """One set of counters per registry, shared by every consumer of the process."""
    metrics = _METRICS.get(registry)
    if metrics is None:
        metrics = (
            Counter("consumer_handled_events", "Events handled", ["group", "type"], registry=registry),
            Counter(
                "consumer_handler_failures", "Handler attempts that raised", ["group"], registry=registry
            ),
            Counter(
                "consumer_dead_lettered", "Undecodable messages sent to a DLQ", ["group"], registry=registry
            ),
        )
        _METRICS[registry] = metrics
    return metrics


class EventConsumer:
    """Consume ``topics`` in consumer group ``group_id`` (read_committed, manual commits)."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        *,
        client_id: str | None = None,
        initial_backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
        auto_offset_reset: str = "earliest",
        max_records: int = 100,
        decode_as: Mapping[str, str] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """``decode_as`` maps a consumed topic to the logical topic whose event types it carries (tests use
        uuid-named copies of the real topics)."""
        self._bootstrap = bootstrap
        self._topics = list(topics)
        self._group_id = group_id
        self._client_id = client_id or group_id
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._auto_offset_reset = auto_offset_reset
        self._max_records = max_records
        self._decode_as = dict(decode_as or {})
        self._stopping = asyncio.Event()
        self.handled = 0
        self.dead_lettered = 0
        self._metrics = _metrics_for(registry) if registry is not None else None

    def stop(self) -> None:
        """Ask ``run`` to return after the message in hand (its offset is committed first)."""
        self._stopping.set()

    async def run(self, handler: Handler) -> None:
        """Consume until ``stop()`` or cancellation. Never returns on handler errors: it retries."""
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            client_id=self._client_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=f"{self._client_id}-dlq",
            acks="all",
            enable_idempotence=True,
        )
        try:
            await self._start_with_retry(producer.start)
            await self._start_with_retry(consumer.start)
            if not self._stopping.is_set():
                await self._loop(consumer, producer, handler)
        finally:
            await consumer.stop()
            await producer.stop()

    async def run_until(self, handler: Handler, stop: asyncio.Event) -> None:
        """``run`` as a ServiceRunner task: when ``stop`` is set, finish the message in hand and return."""
        running = asyncio.create_task(self.run(handler), name=f"consumer-{self._group_id}")
        stopping = asyncio.create_task(stop.wait(), name=f"consumer-{self._group_id}-stop")
        done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping in done:
            self.stop()
        else:
            stopping.cancel()
        await running

    async def _start_with_retry(self, start: Callable[[], Awaitable[None]]) -> None:
        """Kafka may be down at boot: retry with capped backoff instead of crashing the service."""
        backoff = self._initial_backoff_s
        while not self._stopping.is_set():
            try:
                await start()
                return
            except KafkaError as exc:
                logger.warning(
                    "kafka unavailable, retrying", extra={"group_id": self._group_id, "error": str(exc)}
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)

    async def _loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, handler: Handler) -> None:
        logger.info("consumer started", extra={"group_id": self._group_id, "topics": self._topics})
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
            for tp, records in batches.items():
                await self._partition_batch(consumer, producer, tp, records, handler)

    async def _partition_batch(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        records: list[ConsumerRecord],
        handler: Handler,
    ) -> None:
        """Handle one partition's fetched records in order; commit after the last one handled.

        Offsets are committed per fetched batch (not per message) for throughput; before retrying a failing
        message the progress made so far is committed, so a long outage never replays finished work.
        """
        next_offset: int | None = None

        async def commit_progress() -> None:
            if next_offset is not None:
                await self._commit(consumer, tp, next_offset)

        try:
            for record in records:
                if self._stopping.is_set() or tp not in consumer.assignment():
                    # Revoked or stopping: the uncommitted rest is redelivered to the new owner.
                    break
                value: bytes = record.value or b""
                try:
                    event = decode(self._decode_as.get(record.topic, record.topic), value)
                except UndecodableEvent as exc:
                    await self._dead_letter(producer, record, value, str(exc))
                else:
                    await self._handle_with_retry(event, record, handler, commit_progress)
                next_offset = record.offset + 1
        finally:
            await commit_progress()

    async def _handle_with_retry(
        self,
        event: Event,
        record: ConsumerRecord,
        handler: Handler,
        before_retry: Callable[[], Awaitable[None]],
    ) -> None:
        backoff = self._initial_backoff_s
        attempt = 0
        while True:
            try:
                await handler(event)
            except TransientError as exc:
                logger.warning(
                    "handler transient failure, retrying",
                    extra=self._fields(event, record, attempt) | {"error": str(exc)},
                )
            except Exception:
                if attempt == 0:
                    logger.exception("handler failed, retrying", extra=self._fields(event, record, attempt))
                else:
                    logger.warning("handler still failing", extra=self._fields(event, record, attempt))
            else:
                self.handled += 1
                if self._metrics is not None:
                    self._metrics[0].labels(self._group_id, event.type).inc()
                return
            if self._metrics is not None:
                self._metrics[1].labels(self._group_id).inc()
            if attempt == 0:
                await before_retry()
            attempt += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _dead_letter(
        self,
        producer: AIOKafkaProducer,
        record: ConsumerRecord,
        value: bytes,
        reason: str,
    ) -> None:
        headers = [
            *list(record.headers or ()),
            ("dlq_reason", reason[:500].encode()),
            ("source_offset", str(record.offset).encode()),
            ("source_partition", str(record.partition).encode()),
        ]
        backoff = self._initial_backoff_s
        while True:
            try:
                await producer.send_and_wait(dlq(record.topic), value, key=record.key, headers=headers)
                break
            except KafkaError as exc:
                logger.warning("dead-letter publish failed, retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
        self.dead_lettered += 1
        if self._metrics is not None:
            self._metrics[2].labels(self._group_id).inc()
        logger.warning(
            "undecodable message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: OffsetAndMetadata(offset, "")})
        except CommitFailedError:
            # The partition moved to another member; it will redeliver from the last committed offset.
            logger.warning(
                "offset commit rejected after rebalance", extra={"topic": tp.topic, "offset": offset}
            )

    def _fields(
        self,
        event: Event,
        record: ConsumerRecord,
        attempt: int,
    ) -> dict[str, object]:
        return {
            "group_id": self._group_id,
            "event_type": event.type,
            "event_id": str(event.event_id),
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "attempt": attempt,
        }
