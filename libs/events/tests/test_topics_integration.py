"""ensure_topics against real Kafka: creates with the given shape, idempotent, concurrent-safe."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from libs.db.testing import integration_env, unique_name
from libs.events.topics import TopicSpec, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_ensure_topics_idempotent_and_concurrent() -> None:
    bootstrap = integration_env()["KAFKA_BOOTSTRAP_SERVERS"]
    specs = [
        TopicSpec(unique_name("test.a."), 3, 3600_000),
        TopicSpec(unique_name("test.b."), 1, -1, compacted=True),
    ]
    await asyncio.gather(*(ensure_topics(bootstrap, specs) for _ in range(3)))
    await ensure_topics(bootstrap, specs)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        assert len(await producer.partitions_for(specs[0].name)) == 3
        assert len(await producer.partitions_for(specs[1].name)) == 1
    finally:
        await producer.stop()


async def test_invalid_spec_raises() -> None:
    bootstrap = integration_env()["KAFKA_BOOTSTRAP_SERVERS"]
    with pytest.raises(KafkaError):
        await ensure_topics(bootstrap, [TopicSpec(unique_name("test.bad."), 0, 1000)])
