"""EventConsumer against real Kafka: order, retries of the same message, committed progress per group."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from libs.db.testing import integration_env, unique_name
from libs.events.base import Event
from libs.events.codec import encode
from libs.events.consumer import EventConsumer
from libs.events.errors import TransientError
from libs.events.models import RoomCreated
from libs.events.sids import AccountSid, RoomSid
from libs.events.topics import ROOM_EVENTS, TopicSpec, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROOM = RoomSid.new()


def _event(seq: int) -> RoomCreated:
    return RoomCreated(
        occurred_at=datetime.now(UTC),
        account_sid=AccountSid.new(),
        room_sid=ROOM,
        room_name="r",
        room_status="in-progress",
        sequence_number=seq,
    )


async def _produce(bootstrap: str, topic: str, seqs: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for seq in seqs:
            event = _event(seq)
            await producer.send(topic, encode(event), key=event.key().encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _until(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_order_transient_retries_and_committed_progress() -> None:
    bootstrap = integration_env()["KAFKA_BOOTSTRAP_SERVERS"]
    topic = unique_name("test.room.")
    await ensure_topics(bootstrap, [TopicSpec(topic, 2, 3600_000)])
    await _produce(bootstrap, topic, range(30))
    group = unique_name("g-")
    seen: list[int] = []
    failures = {"left": 3}

    async def handler(event: Event) -> None:
        assert isinstance(event, RoomCreated)
        if event.sequence_number == 17 and failures["left"]:
            failures["left"] -= 1
            raise TransientError("database briefly unavailable")
        seen.append(event.sequence_number)

    registry = CollectorRegistry()
    consumer = EventConsumer(
        bootstrap, [topic], group, initial_backoff_s=0.02, decode_as={topic: ROOM_EVENTS}, registry=registry
    )
    task = asyncio.create_task(consumer.run(handler))
    try:
        await _until(lambda: len(seen) >= 30, 40)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 20)
    assert seen == list(range(30))  # one key, one partition: strict order, 17 retried in place
    labels = {"group": group, "type": "room-created"}
    assert registry.get_sample_value("consumer_handled_events_total", labels) == 30
    assert registry.get_sample_value("consumer_handler_failures_total", {"group": group}) == 3

    # Same group again: everything was committed, nothing is redelivered; new messages are.
    again: list[int] = []

    async def second(event: Event) -> None:
        assert isinstance(event, RoomCreated)
        again.append(event.sequence_number)

    consumer = EventConsumer(bootstrap, [topic], group, decode_as={topic: ROOM_EVENTS})
    task = asyncio.create_task(consumer.run(second))
    try:
        await asyncio.sleep(3)
        assert again == []
        await _produce(bootstrap, topic, range(30, 32))
        await _until(lambda: len(again) >= 2, 20)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 20)
    assert again == [30, 31]
