"""Kafka topic names and their specs; ``ensure_topics`` creates them idempotently."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

logger = logging.getLogger(__name__)

ROOM_EVENTS = "room.events"
RECORDING_EVENTS = "recording.events"
COMPOSITION_EVENTS = "composition.events"
COMPOSITION_JOBS = "composition.jobs"
OUTBOX_PROGRESS = "outbox.progress"

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code: a concurrent creator won
_WEEK_MS = 7 * 24 * 3600 * 1000


def dlq(topic: str) -> str:
    """The dead-letter topic of ``topic`` (undecodable messages)."""
    return f"{topic}.dlq"


@dataclass(frozen=True)
class TopicSpec:
    """A topic's explicit shape. ``retention_ms`` -1 keeps forever; ``compacted`` keeps the last per key."""

    name: str
    partitions: int
    retention_ms: int
    compacted: bool = False

    def config(self) -> dict[str, str]:
        """Topic-level Kafka config for this spec."""
        if self.compacted:
            return {
                "cleanup.policy": "compact",
                "segment.ms": str(3600 * 1000),
                "min.cleanable.dirty.ratio": "0.1",
            }
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


_EVENT_TOPICS = (
    TopicSpec(ROOM_EVENTS, 6, 2 * _WEEK_MS),
    TopicSpec(RECORDING_EVENTS, 6, 2 * _WEEK_MS),
    TopicSpec(COMPOSITION_EVENTS, 6, 2 * _WEEK_MS),
    TopicSpec(COMPOSITION_JOBS, 6, 2 * _WEEK_MS),
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    *_EVENT_TOPICS,
    *(TopicSpec(dlq(t.name), 1, 4 * _WEEK_MS) for t in _EVENT_TOPICS),
    TopicSpec(OUTBOX_PROGRESS, 1, -1, compacted=True),
)


async def ensure_topics(bootstrap: str, specs: Sequence[TopicSpec] = ALL_TOPICS) -> None:
    """Create every topic of ``specs`` that does not exist yet. Existing topics are left unchanged.

    Replication factor 1 (single-broker devstack). Raises aiokafka errors when Kafka is unreachable.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mixdown-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return
        new = [
            NewTopic(name=s.name, num_partitions=s.partitions, replication_factor=1, topic_configs=s.config())
            for s in missing
        ]
        try:
            response = await admin.create_topics(new)
        except TopicAlreadyExistsError:
            return
        failures = [
            f"{item[0]}: error {item[1]}"
            for item in getattr(response, "topic_errors", [])
            if item[1] not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if failures:
            raise KafkaError("topic creation failed: " + "; ".join(failures))
        logger.info("topics created", extra={"topics": [s.name for s in missing]})
    finally:
        await admin.close()
