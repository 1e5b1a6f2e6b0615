"""The consumed-event handler: plan the callback (pure) and queue it durably with the processed marker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol
from uuid import UUID

from libs.events.base import Event
from services.notifier import domain
from services.notifier.metrics import NotifierMetrics

logger = logging.getLogger(__name__)


class CallbackQueue(Protocol):
    async def record(self, event_id: UUID, callback: domain.Callback | None) -> bool:
        """In one transaction: mark the event processed and queue ``callback`` (if any).

        False when the event was already processed (a redelivery); nothing is written then.
        """
        ...


async def on_event(
    event: Event, queue: CallbackQueue, wake: Callable[[], None], metrics: NotifierMetrics
) -> None:
    """Handle any room/recording/composition event. The Kafka offset is committed after this returns."""
    callback = domain.plan_callback(event)
    if not await queue.record(event.event_id, callback):
        metrics.events.labels(result="duplicate").inc()
        return
    if callback is None:
        metrics.events.labels(result="no_callback").inc()
        return
    metrics.events.labels(result="queued").inc()
    logger.info(
        "callback queued",
        extra={
            "event_id": str(event.event_id),
            "event_type": event.type,
            "account_sid": str(event.account_sid),
        },
    )
    wake()
