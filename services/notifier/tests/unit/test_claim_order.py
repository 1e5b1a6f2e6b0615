"""Which queued deliveries may be attempted now (the rule store.claim_due implements in SQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifier.domain import QueuedDelivery, claimable

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PAST = NOW - timedelta(seconds=5)
FUTURE = NOW + timedelta(seconds=5)


def row(
    id: int,
    key: str,
    seq: int,
    *,
    host: str = "a.example",
    state: str = "pending",
    due: datetime = PAST,
    lease: datetime | None = None,
) -> QueuedDelivery:
    return QueuedDelivery(
        id=id, ordering_key=key, sequence=seq, host=host, state=state, next_attempt_at=due, lease_until=lease
    )


def test_only_the_head_of_each_key_is_claimable() -> None:
    rows = [row(1, "k1", 0), row(2, "k1", 1), row(3, "k2", 0), row(4, "k2", 1)]
    assert [r.id for r in claimable(rows, NOW, [], 10)] == [1, 3]


def test_a_retrying_head_blocks_later_rows_of_its_key_only() -> None:
    rows = [row(1, "k1", 0, due=FUTURE), row(2, "k1", 1), row(3, "k2", 0)]
    assert [r.id for r in claimable(rows, NOW, [], 10)] == [3]


def test_a_head_in_flight_blocks_its_key_until_the_lease_expires() -> None:
    rows = [row(1, "k1", 0, state="delivering", lease=FUTURE), row(2, "k1", 1)]
    assert claimable(rows, NOW, [], 10) == []
    expired = [row(1, "k1", 0, state="delivering", lease=PAST), row(2, "k1", 1)]
    assert [r.id for r in claimable(expired, NOW, [], 10)] == [1]


def test_busy_hosts_are_skipped_and_others_proceed() -> None:
    rows = [row(1, "k1", 0, host="slow.example"), row(2, "k2", 0, host="fast.example")]
    assert [r.id for r in claimable(rows, NOW, ["slow.example"], 10)] == [2]


def test_soonest_due_first_and_limit() -> None:
    rows = [
        row(1, "k1", 0, due=NOW - timedelta(seconds=1)),
        row(2, "k2", 0, due=NOW - timedelta(seconds=9)),
        row(3, "k3", 0, due=NOW - timedelta(seconds=5)),
    ]
    assert [r.id for r in claimable(rows, NOW, [], 2)] == [2, 3]
    assert claimable(rows, NOW, [], 0) == []


def test_input_order_does_not_matter() -> None:
    rows = [row(2, "k1", 1), row(1, "k1", 0)]
    assert [r.id for r in claimable(rows, NOW, [], 10)] == [1]
