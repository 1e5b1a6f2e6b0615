"""The event handler queues durably, skips redeliveries and drops events without a callback URL."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from libs.events.models import RoomCreated
from libs.events.sids import AccountSid, RoomSid
from services.notifier import domain
from services.notifier.handlers import on_event
from services.notifier.metrics import NotifierMetrics


class FakeQueue:
    def __init__(self) -> None:
        self.processed: set[UUID] = set()
        self.queued: list[domain.Callback] = []

    async def record(self, event_id: UUID, callback: domain.Callback | None) -> bool:
        if event_id in self.processed:
            return False
        self.processed.add(event_id)
        if callback is not None:
            self.queued.append(callback)
        return True


def event(url: str | None) -> RoomCreated:
    return RoomCreated(
        account_sid=AccountSid("AC" + "1" * 32),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        room_sid=RoomSid("RM" + "2" * 32),
        room_name="r",
        room_status="in-progress",
        sequence_number=0,
        status_callback=url,
    )


def sample(metrics: NotifierMetrics, result: str) -> float:
    return metrics.registry.get_sample_value("notifier_events_total", {"result": result}) or 0.0


async def test_queues_once_and_wakes_the_dispatcher() -> None:
    queue, metrics, wakes = FakeQueue(), NotifierMetrics(), []
    e = event("https://example.com/cb")
    await on_event(e, queue, lambda: wakes.append(1), metrics)
    await on_event(e, queue, lambda: wakes.append(1), metrics)  # redelivery
    assert [c.event_id for c in queue.queued] == [e.event_id]
    assert queue.queued[0].params["StatusCallbackEvent"] == "room-created"
    assert wakes == [1]
    assert (sample(metrics, "queued"), sample(metrics, "duplicate")) == (1.0, 1.0)


async def test_event_without_url_is_processed_and_dropped() -> None:
    queue, metrics, wakes = FakeQueue(), NotifierMetrics(), []
    e = event(None)
    await on_event(e, queue, lambda: wakes.append(1), metrics)
    assert e.event_id in queue.processed
    assert queue.queued == []
    assert wakes == []
    assert sample(metrics, "no_callback") == 1.0
