"""The base of every event: identity, time, version, type name and the ordering key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.events.sids import AccountSid

HttpMethod = Literal["GET", "POST"]


class Event(BaseModel):
    """A fact that happened. Immutable; only optional fields are ever added to a published type.

    ``type`` is narrowed by each subclass to a Literal (the Twilio ``StatusCallbackEvent`` name if any).
    ``topic`` is the Kafka topic carrying the event; ``key()`` is its ordering key on that topic.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: ClassVar[str] = ""

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime
    version: int = 1
    type: str
    account_sid: AccountSid

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")
        return value.astimezone(UTC)

    def key(self) -> str:
        """The Kafka message key that orders this event (see docs/architecture.md)."""
        return str(self.account_sid)
