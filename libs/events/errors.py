"""Errors of the event layer.

EventError
 ├── UndecodableEvent   bytes that are not a known event of the topic (sent to ``<topic>.dlq``)
 └── TransientError     a handler's dependency is down; the consumer retries the same message
"""


class EventError(Exception):
    """Base of the event layer's errors."""


class UndecodableEvent(EventError):
    """The message is not valid JSON or not a known event type for its topic."""


class TransientError(EventError):
    """Raised by handlers when a retry later can succeed (database, Kafka or storage unavailable)."""
