"""DeliveryStore vs real Postgres: per-key order, leases, SKIP LOCKED, host slots, replay, idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from libs.events.sids import AccountSid
from services.notifier.domain import Callback
from services.notifier.store import DeliveryStore

pytestmark = pytest.mark.integration

AC = AccountSid("AC" + "a" * 32)
LEASE = timedelta(seconds=30)


def cb(key: str, url: str = "https://a.example/cb") -> Callback:
    return Callback(
        event_id=uuid4(),
        event_type="room-created",
        account_sid=AC,
        url=url,
        method="POST",
        params={"AccountSid": str(AC), "StatusCallbackEvent": "room-created"},
        ordering_key=key,
    )


async def queue(store: DeliveryStore, *callbacks: Callback) -> list[int]:
    for c in callbacks:
        assert await store.record(c.event_id, c)
    rows = await store.list(limit=1000)
    by_event = {r.event_id: r.id for r in rows}
    return [by_event[c.event_id] for c in callbacks]


async def claim(
    store: DeliveryStore, limit: int = 10, *, per_host_limit: int = 10, lease: timedelta = LEASE
) -> list[int]:
    records = await store.claim_due(limit=limit, host_slots={}, per_host_limit=per_host_limit, lease=lease)
    return [r.id for r in records]


async def test_only_heads_are_claimed_and_claims_are_leased(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    a1, a2, a3, b1 = await queue(store, cb("A"), cb("A"), cb("A"), cb("B"))
    assert sorted(await claim(store)) == [a1, b1]
    assert await claim(store) == []  # heads are in flight
    record = await store.get(a1)
    assert record is not None
    assert (record.state, record.attempts, record.sequence) == ("delivering", 1, 0)
    assert record.params == {"AccountSid": str(AC), "StatusCallbackEvent": "room-created"}
    assert await store.mark_delivered(record, 200)
    assert await claim(store) == [a2]
    r2 = await store.get(a2)
    assert r2 is not None
    assert await store.mark_dead(r2, 404, "http status 404")
    assert await claim(store) == [a3]  # dead releases the next of its key


async def test_a_retrying_head_holds_back_its_key(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    a1, a2 = await queue(store, cb("A"), cb("A"))
    assert await claim(store) == [a1]
    r1 = await store.get(a1)
    assert r1 is not None
    later = datetime.now(UTC) + timedelta(seconds=0.5)
    assert await store.mark_retry(r1, 500, "http status 500", later)
    assert await claim(store) == []  # a2 must not overtake a1
    await asyncio.sleep(0.6)
    assert await claim(store) == [a1]
    again = await store.get(a1)
    assert again is not None
    assert (again.attempts, again.last_status, again.last_error) == (2, 500, "http status 500")
    assert a2 not in await claim(store)


async def test_expired_lease_is_reclaimed_and_stale_worker_loses(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    (a1,) = await queue(store, cb("A"))
    first = await store.claim_due(limit=1, host_slots={}, per_host_limit=4, lease=timedelta(seconds=0.2))
    assert [r.id for r in first] == [a1]
    await asyncio.sleep(0.3)
    second = await store.claim_due(limit=1, host_slots={}, per_host_limit=4, lease=LEASE)
    assert [r.id for r in second] == [a1]
    assert second[0].claim_token != first[0].claim_token
    assert not await store.mark_delivered(first[0], 200)  # the stale claim cannot settle the row
    assert await store.mark_delivered(second[0], 200)


async def test_concurrent_claimers_never_share_a_row(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    ids = await queue(store, *(cb(f"K{i}") for i in range(40)))
    results = await asyncio.gather(*(claim(store, limit=7, per_host_limit=100) for _ in range(8)))
    claimed = [i for batch in results for i in batch]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) <= set(ids)
    rest = await claim(store, limit=100, per_host_limit=100)
    assert sorted(claimed + rest) == sorted(ids)


async def test_host_slots_limit_claims_per_host(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    slow = [cb(f"S{i}", "https://slow.example/cb") for i in range(3)]
    fast = [cb(f"F{i}", "https://fast.example/cb") for i in range(3)]
    await queue(store, *slow, *fast)
    got = await store.claim_due(limit=10, host_slots={"slow.example": 0}, per_host_limit=2, lease=LEASE)
    assert sorted(r.host for r in got) == ["fast.example", "fast.example"]
    more = await store.claim_due(limit=10, host_slots={"slow.example": 1}, per_host_limit=2, lease=LEASE)
    assert sorted(r.host for r in more) == ["fast.example", "slow.example"]


async def test_redelivered_event_is_not_queued_twice(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    c = cb("A")
    assert await store.record(c.event_id, c)
    assert not await store.record(c.event_id, c)
    assert await store.record(uuid4(), None)  # no callback: processed, nothing queued
    assert len(await store.list()) == 1


async def test_replay_dead(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    a1, b1 = await queue(store, cb("A"), cb("B"))
    for record in await store.claim_due(limit=10, host_slots={}, per_host_limit=4, lease=LEASE):
        assert await store.mark_dead(record, 410, "http status 410")
    assert [r.id for r in await store.list(state="dead")] == [b1, a1]
    assert (await store.count_by_state())["dead"] == 2
    assert not await store.replay(999_999)
    assert await store.replay(a1)
    replayed = await store.get(a1)
    assert replayed is not None
    assert (replayed.state, replayed.attempts, replayed.last_error) == ("pending", 0, "http status 410")
    assert not await store.replay(a1)  # only dead rows
    assert await store.replay_all_dead() == 1
    assert sorted(await claim(store)) == [a1, b1]


async def test_prune_deletes_old_delivered_rows_only(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    a1, a2, b1, c1 = await queue(store, cb("A"), cb("A"), cb("B"), cb("C"))
    for claimed in await store.claim_due(limit=10, host_slots={}, per_host_limit=4, lease=LEASE):
        if claimed.id in (a1, c1):
            assert await store.mark_delivered(claimed, 200)
        else:
            assert await store.mark_dead(claimed, 404, "gone")
    assert await store.prune(timedelta(hours=1)) == 0  # too recent
    await pool.execute(f"UPDATE {schema}.deliveries SET delivered_at = now() - interval '2 hours'")  # noqa: S608
    assert await store.prune(timedelta(hours=1)) == 2
    assert {r.id for r in await store.list()} == {a2, b1}  # pending and dead rows stay
    (nxt,) = await queue(store, cb("A"))
    record = await store.get(nxt)
    assert record is not None and record.sequence == 2  # still after a2


async def test_concurrent_queuing_on_one_key_keeps_distinct_sequences(
    pool: asyncpg.Pool, schema: str
) -> None:
    store = DeliveryStore(pool, schema)
    callbacks = [cb("R") for _ in range(12)]
    results = await asyncio.gather(*(store.record(c.event_id, c) for c in callbacks))
    assert all(results)
    sequences = sorted(r.sequence for r in await store.list())
    assert sequences == list(range(12))
