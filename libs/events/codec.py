"""Wire encoding of events: the value is the event's JSON; the topic plus ``type`` select the class."""

from __future__ import annotations

import json

from pydantic import ValidationError

from libs.events.base import Event
from libs.events.errors import UndecodableEvent
from libs.events.models import ALL_EVENT_TYPES

_REGISTRY: dict[str, dict[str, type[Event]]] = {}
for _cls in ALL_EVENT_TYPES:
    _type_name = _cls.model_fields["type"].default
    _REGISTRY.setdefault(_cls.topic, {})[_type_name] = _cls


def event_class(topic: str, type_name: str) -> type[Event] | None:
    """The event class registered for ``type_name`` on ``topic``, if any."""
    return _REGISTRY.get(topic, {}).get(type_name)


def encode(event: Event) -> bytes:
    """The UTF-8 JSON of ``event`` (the Kafka message value)."""
    return event.model_dump_json().encode()


def decode(topic: str, data: bytes) -> Event:
    """Parse a message of ``topic``. Raises UndecodableEvent for bad JSON, unknown types or invalid fields."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UndecodableEvent(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise UndecodableEvent("no string 'type' field")
    cls = event_class(topic, raw["type"])
    if cls is None:
        raise UndecodableEvent(f"unknown event type {raw['type'][:64]!r} for topic {topic!r}")
    # Forward compatibility: a newer producer may add optional fields this consumer does not know yet.
    # Models stay strict (extra="forbid") for producers; readers ignore what they cannot use.
    known = set(cls.model_fields)
    raw = {k: v for k, v in raw.items() if k in known}
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise UndecodableEvent(f"invalid {raw['type']}: {exc.error_count()} errors") from exc
