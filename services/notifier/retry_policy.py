"""Retry rules for status-callback deliveries: response classification, backoff, Retry-After.

Pure functions only: the dispatcher feeds them attempt counts, clocks and random sources.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime


class AttemptClass(enum.Enum):
    """How one attempt's outcome is treated."""

    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


def classify_status(status: int) -> AttemptClass:
    """Classify an HTTP status: 2xx delivered, 429 and 5xx retried, everything else permanent.

    Redirects (3xx) are not followed, so they count as a permanent refusal of the callback.
    """
    if 200 <= status < 300:
        return AttemptClass.DELIVERED
    if status == 429 or 500 <= status < 600:
        return AttemptClass.RETRY
    return AttemptClass.PERMANENT


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with full jitter.

    The ceiling for attempt n (1-based) is ``min(cap_s, base_s * 2**(n-1))``; the delay is uniform in
    ``[0, ceiling]``. Deliveries are retried until ``window_s`` seconds after the window started.
    """

    base_s: float = 2.0
    cap_s: float = 3600.0
    window_s: float = 86400.0

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay (seconds) after the given 1-based attempt number."""
        exponent = max(0, attempt - 1)
        # 2**64 seconds is beyond any cap; avoid building huge ints for absurd attempt counts.
        if exponent >= 64:
            return self.cap_s
        return min(self.cap_s, self.base_s * float(2**exponent))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A full-jitter delay in seconds after the given 1-based attempt number."""
        return rng.uniform(0.0, self.ceiling(attempt))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a Retry-After header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryDecision:
    """What to do after a failed attempt: retry at ``next_attempt_at``, or give up (``dead``)."""

    dead: bool
    next_attempt_at: datetime | None


def decide_retry(
    *,
    policy: BackoffPolicy,
    attempt: int,
    window_started_at: datetime,
    now: datetime,
    retry_after_s: float | None,
    rng: random.Random,
) -> RetryDecision:
    """Schedule the next attempt after a retryable failure, or declare the delivery dead.

    A server-sent Retry-After (429/503) replaces the jittered delay, bounded by the backoff cap. When the next
    attempt would fall after the retry window, the delivery is dead.
    """
    if retry_after_s is not None:
        delay = min(max(0.0, retry_after_s), policy.cap_s)
    else:
        delay = policy.delay(attempt, rng)
    next_at = now + timedelta(seconds=delay)
    deadline = window_started_at + timedelta(seconds=policy.window_s)
    if next_at > deadline:
        return RetryDecision(dead=True, next_attempt_at=None)
    return RetryDecision(dead=False, next_attempt_at=next_at)
