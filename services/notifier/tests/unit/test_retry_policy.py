"""Backoff bounds and jitter, response classification, Retry-After, retry window."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.retry_policy import (
    AttemptClass,
    BackoffPolicy,
    classify_status,
    decide_retry,
    parse_retry_after,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, AttemptClass.DELIVERED),
        (204, AttemptClass.DELIVERED),
        (299, AttemptClass.DELIVERED),
        (301, AttemptClass.PERMANENT),
        (302, AttemptClass.PERMANENT),
        (400, AttemptClass.PERMANENT),
        (404, AttemptClass.PERMANENT),
        (410, AttemptClass.PERMANENT),
        (429, AttemptClass.RETRY),
        (500, AttemptClass.RETRY),
        (502, AttemptClass.RETRY),
        (503, AttemptClass.RETRY),
        (599, AttemptClass.RETRY),
    ],
)
def test_classify_status(status: int, expected: AttemptClass) -> None:
    assert classify_status(status) is expected


def test_ceiling_doubles_from_base_and_caps() -> None:
    policy = BackoffPolicy(base_s=2.0, cap_s=3600.0)
    assert [policy.ceiling(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert policy.ceiling(12) == 3600.0  # 2 * 2**11 = 4096 > cap
    assert policy.ceiling(10_000) == 3600.0


def test_delays_stay_within_bounds_and_are_jittered() -> None:
    policy = BackoffPolicy(base_s=2.0, cap_s=3600.0)
    rng = random.Random(7)
    for attempt in range(1, 30):
        samples = [policy.delay(attempt, rng) for _ in range(300)]
        assert min(samples) >= 0.0
        assert max(samples) <= policy.ceiling(attempt)
        # Full jitter: spread over the whole range, mean near half the ceiling.
        assert len(set(samples)) > 250
        assert statistics.mean(samples) == pytest.approx(policy.ceiling(attempt) / 2, rel=0.15)


def test_retries_last_at_least_the_window_then_dead() -> None:
    policy = BackoffPolicy(base_s=2.0, cap_s=3600.0, window_s=86400.0)
    rng = random.Random(1)
    start = NOW
    now = NOW
    attempt = 0
    while True:
        attempt += 1
        decision = decide_retry(
            policy=policy, attempt=attempt, window_started_at=start, now=now, retry_after_s=None, rng=rng
        )
        if decision.dead:
            break
        assert decision.next_attempt_at is not None
        assert decision.next_attempt_at >= now
        now = decision.next_attempt_at
    # Dead only when the next attempt would have been after the window: retried for most of 24 h.
    assert now <= start + timedelta(seconds=86400)
    assert now >= start + timedelta(seconds=86400 - 3600)
    assert attempt > 24


def test_retry_after_replaces_jitter_and_is_capped() -> None:
    policy = BackoffPolicy(base_s=2.0, cap_s=60.0, window_s=86400.0)
    rng = random.Random(0)
    decision = decide_retry(
        policy=policy, attempt=1, window_started_at=NOW, now=NOW, retry_after_s=30, rng=rng
    )
    assert decision.next_attempt_at == NOW + timedelta(seconds=30)
    capped = decide_retry(
        policy=policy, attempt=1, window_started_at=NOW, now=NOW, retry_after_s=9999, rng=rng
    )
    assert capped.next_attempt_at == NOW + timedelta(seconds=60)


def test_window_over_means_dead() -> None:
    policy = BackoffPolicy(base_s=2.0, cap_s=60.0, window_s=100.0)
    late = NOW + timedelta(seconds=99)
    decision = decide_retry(
        policy=policy, attempt=1, window_started_at=NOW, now=late, retry_after_s=5, rng=random.Random(0)
    )
    assert decision.dead
    assert decision.next_attempt_at is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("soon", None),
        ("-5", None),
        ("Fri, 01 May 2026 12:01:00 GMT", 60.0),
        ("Fri, 01 May 2026 11:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
