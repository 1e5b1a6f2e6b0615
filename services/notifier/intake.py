"""Event intake: libs' EventConsumer, with consumed topic names mapped to the logical topics the codec knows.

Integration tests (and any deployment that renames topics) consume e.g. ``room.events-<uuid>``; the codec
selects event classes by the logical name (``room.events``). EventConsumer has no public hook for this yet,
so this subclass overrides its per-message step and reuses its retry, dead-letter and commit behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from libs.events.codec import decode
from libs.events.consumer import EventConsumer, Handler
from libs.events.errors import UndecodableEvent


class MappedTopicConsumer(EventConsumer):
    """An EventConsumer over ``topic_map`` keys that decodes each message as its mapped logical topic."""

    def __init__(self, bootstrap: str, topic_map: Mapping[str, str], group_id: str) -> None:
        super().__init__(bootstrap, list(topic_map), group_id)
        self._topic_map = dict(topic_map)

    async def _process(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        record: ConsumerRecord,
        handler: Handler,
    ) -> None:
        value: bytes = record.value or b""
        try:
            event = decode(self._topic_map.get(record.topic, record.topic), value)
        except UndecodableEvent as exc:
            await self._dead_letter(producer, record, value, str(exc))
        else:
            await self._handle_with_retry(event, record, handler)
        await self._commit(consumer, tp, record.offset + 1)
