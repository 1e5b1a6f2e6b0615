"""Dispatcher outcomes and isolation, with in-memory fakes and an injected clock."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from services.notifier.delivery import AttemptResult, CallbackRequest
from services.notifier.dispatcher import Dispatcher, DispatchLimits
from services.notifier.metrics import NotifierMetrics
from services.notifier.retry_policy import BackoffPolicy
from services.notifier.tests.unit.fakes import FakeClock, FakeSender, FakeStore, FakeTokens, Responder, ok

AC = "AC" + "a" * 32
URL = "https://hooks.example.com/cb"


Rig = tuple[FakeClock, FakeStore, FakeSender, NotifierMetrics, Dispatcher]


def make(respond: Responder, *, per_host: int = 4, global_limit: int = 8, window_s: float = 86400.0) -> Rig:
    clock = FakeClock()
    store = FakeStore(clock)
    sender = FakeSender(respond)
    metrics = NotifierMetrics()
    dispatcher = Dispatcher(
        store=store,
        sender=sender,
        tokens=FakeTokens({AC: "tok"}),
        backoff=BackoffPolicy(base_s=2.0, cap_s=60.0, window_s=window_s),
        limits=DispatchLimits(
            global_limit=global_limit, per_host_limit=per_host, lease=timedelta(seconds=60)
        ),
        metrics=metrics,
        clock=clock,
        rng=random.Random(3),
    )
    return clock, store, sender, metrics, dispatcher


async def settle(dispatcher: Dispatcher) -> None:
    await dispatcher.run_once()
    await dispatcher.drain(cancel=False)


def count(metrics: NotifierMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value("notifier_deliveries_total", {"outcome": outcome})
    return value or 0.0


async def test_2xx_is_delivered_once() -> None:
    clock, store, sender, metrics, dispatcher = make(lambda r: ok(204))
    row = store.add(URL, "k")
    await settle(dispatcher)
    assert store.rows[row].state == "delivered"
    assert store.rows[row].last_status == 204
    assert len(sender.sent) == 1
    assert sender.sent[0].idempotency_token == str(store.rows[row].event_id)
    await settle(dispatcher)
    assert len(sender.sent) == 1
    assert count(metrics, "delivered") == 1


async def test_5xx_is_retried_with_backoff_then_delivered() -> None:
    statuses = iter([500, 502, 200])
    clock, store, sender, metrics, dispatcher = make(lambda r: ok(next(statuses)))
    row = store.add(URL, "k")
    await settle(dispatcher)
    first = store.rows[row]
    assert first.state == "pending"
    assert first.last_status == 500
    assert clock.now <= first.next_attempt_at <= clock.now + timedelta(seconds=2)
    clock.now = first.next_attempt_at
    await settle(dispatcher)
    second = store.rows[row]
    assert second.state == "pending"
    assert second.next_attempt_at <= clock.now + timedelta(seconds=4)
    await settle(dispatcher)  # not due yet unless jitter gave zero
    clock.now = second.next_attempt_at
    await settle(dispatcher)
    assert store.rows[row].state == "delivered"
    assert store.rows[row].attempts == 3
    assert count(metrics, "retried") == 2


async def test_4xx_is_dead_at_once_and_releases_the_next() -> None:
    clock, store, sender, metrics, dispatcher = make(lambda r: ok(404 if r.params["N"] == "1" else 200))
    first = store.add(URL, "k")
    second = store.add(URL, "k")
    await settle(dispatcher)
    assert store.rows[first].state == "dead"
    assert store.rows[first].last_error == "http status 404"
    assert store.rows[second].state == "pending"
    await settle(dispatcher)
    assert store.rows[second].state == "delivered"


async def test_timeouts_are_retried_and_429_retry_after_is_honoured() -> None:
    results = iter([AttemptResult(None, "timeout", None, 15.0), ok(429, retry_after="30"), ok(200)])
    clock, store, sender, metrics, dispatcher = make(lambda r: next(results))
    row = store.add(URL, "k")
    await settle(dispatcher)
    assert store.rows[row].last_error == "timeout"
    clock.now = store.rows[row].next_attempt_at
    await settle(dispatcher)
    assert store.rows[row].next_attempt_at == clock.now + timedelta(seconds=30)
    clock.now += timedelta(seconds=30)
    await settle(dispatcher)
    assert store.rows[row].state == "delivered"


async def test_retry_window_ends_in_dead() -> None:
    clock, store, sender, metrics, dispatcher = make(lambda r: ok(503), window_s=10.0)
    row = store.add(URL, "k")
    for _ in range(50):
        await settle(dispatcher)
        if store.rows[row].state == "dead":
            break
        clock.now = store.rows[row].next_attempt_at
    assert store.rows[row].state == "dead"
    assert "retry window over" in (store.rows[row].last_error or "")
    assert store.rows[row].attempts > 1


async def test_refused_target_and_unknown_account_are_dead() -> None:
    clock, store, sender, metrics, dispatcher = make(
        lambda r: AttemptResult(None, "address refused: loopback", None, 0.0, refused=True)
    )
    refused = store.add("http://127.0.0.1/cb", "k1")
    orphan = store.add(URL, "k2", account_sid="AC" + "0" * 32)
    await settle(dispatcher)
    assert store.rows[refused].state == "dead"
    assert store.rows[refused].last_error == "refused: address refused: loopback"
    assert store.rows[orphan].state == "dead"
    assert store.rows[orphan].last_error == "unknown account"
    assert [r.url for r in sender.sent] == ["http://127.0.0.1/cb"]


async def test_hanging_host_does_not_delay_other_hosts() -> None:
    clock, store, sender, metrics, dispatcher = make(lambda r: ok(200), per_host=2, global_limit=4)
    slow_url = "https://slow.example/cb"
    sender.hang[slow_url] = asyncio.Event()
    slow = [store.add(slow_url, f"s{i}") for i in range(5)]
    fast = [store.add(URL, f"f{i}") for i in range(6)]
    for _ in range(10):
        await dispatcher.run_once()
        await asyncio.sleep(0)
    assert all(store.rows[i].state == "delivered" for i in fast)
    assert sum(store.rows[i].state == "delivering" for i in slow) == 2  # only its own slots
    sender.hang[slow_url].set()
    for _ in range(10):
        await dispatcher.run_once()
        await asyncio.sleep(0)
    await dispatcher.drain(cancel=False)
    assert all(store.rows[i].state == "delivered" for i in slow)


async def test_order_per_key_is_kept_under_retries() -> None:
    failures = {"1": 2}

    def respond(request: CallbackRequest) -> AttemptResult:
        n = request.params["N"]
        if failures.get(n, 0) > 0:
            failures[n] -= 1
            return ok(500)
        return ok(200)

    clock, store, sender, metrics, dispatcher = make(respond)
    rows = [store.add(URL, "room") for _ in range(3)]
    for _ in range(20):
        await settle(dispatcher)
        clock.now += timedelta(seconds=120)
    assert all(store.rows[r].state == "delivered" for r in rows)
    delivered_order = [r.params["N"] for r in sender.sent]
    assert delivered_order == ["1", "1", "1", "2", "3"]
