"""The delivery loop: claim due callbacks, attempt them concurrently within limits, record the outcome.

Limits: at most ``global_limit`` attempts in flight per process, at most ``per_host_limit`` per callback host,
so a hanging receiver occupies only its own slots. Rows are claimed with a lease; an attempt that dies with
its process is claimed again after the lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from services.notifier.delivery import AttemptResult, CallbackRequest
from services.notifier.metrics import NotifierMetrics
from services.notifier.retry_policy import (
    AttemptClass,
    BackoffPolicy,
    classify_status,
    decide_retry,
    parse_retry_after,
)
from services.notifier.store import DeliveryRecord

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, UTC."""
    return datetime.now(UTC)


class DispatchStore(Protocol):
    async def claim_due(
        self, *, limit: int, host_slots: Mapping[str, int], per_host_limit: int, lease: timedelta
    ) -> list[DeliveryRecord]: ...

    async def mark_delivered(self, record: DeliveryRecord, status: int) -> bool: ...

    async def mark_retry(
        self, record: DeliveryRecord, status: int | None, error: str | None, next_attempt_at: datetime
    ) -> bool: ...

    async def mark_dead(self, record: DeliveryRecord, status: int | None, error: str | None) -> bool: ...


class Sender(Protocol):
    async def send(self, request: CallbackRequest, auth_token: str) -> AttemptResult: ...


class AuthTokens(Protocol):
    async def auth_token(self, account_sid: str) -> str | None:
        """The account's auth token (signing key), or None when the account does not exist."""
        ...


@dataclass(frozen=True)
class DispatchLimits:
    global_limit: int = 64
    per_host_limit: int = 4
    lease: timedelta = timedelta(seconds=60)
    poll_interval_s: float = 1.0


class Dispatcher:
    """Runs attempts until cancelled. ``wake()`` makes it look for due rows at once (new row, freed slot)."""

    def __init__(
        self,
        *,
        store: DispatchStore,
        sender: Sender,
        tokens: AuthTokens,
        backoff: BackoffPolicy,
        limits: DispatchLimits,
        metrics: NotifierMetrics,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._tokens = tokens
        self._backoff = backoff
        self._limits = limits
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._wake = asyncio.Event()
        self._stopping = False
        self._by_host: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Attempts running in this process."""
        return len(self._tasks)

    def wake(self) -> None:
        """Look for due deliveries now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; `run` returns once the attempts in flight have finished."""
        self._stopping = True
        self._wake.set()

    def _host_slots(self) -> dict[str, int]:
        return {h: max(0, self._limits.per_host_limit - n) for h, n in self._by_host.items() if n > 0}

    async def run_once(self) -> int:
        """Claim and start as many due attempts as the limits allow; returns how many were started."""
        free = self._limits.global_limit - len(self._tasks)
        if free <= 0:
            return 0
        records = await self._store.claim_due(
            limit=free,
            host_slots=self._host_slots(),
            per_host_limit=self._limits.per_host_limit,
            lease=self._limits.lease,
        )
        for record in records:
            self._by_host[record.host] += 1
            task = asyncio.create_task(self._attempt(record), name=f"callback-{record.id}")
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        self._metrics.in_flight.set(len(self._tasks))
        return len(records)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._metrics.in_flight.set(len(self._tasks))
        self._wake.set()

    async def run(self) -> None:
        """Loop until `stop()` or cancellation; database trouble is logged and retried after a poll interval.

        After `stop()` the attempts in flight finish normally; on cancellation they are cancelled (their rows
        are retried once their lease expires).
        """
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    started = await self.run_once()
                except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    logger.warning("claim failed, will retry", extra={"error": type(exc).__name__})
                    started = 0
                except Exception:
                    logger.exception("claim failed, will retry")
                    started = 0
                free = self._limits.global_limit - len(self._tasks)
                if started and free > 0:
                    continue  # there may be more due rows than one batch
                try:
                    async with asyncio.timeout(self._limits.poll_interval_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            await self.drain(cancel=False)
        finally:
            await self.drain(cancel=True)

    async def drain(self, *, cancel: bool) -> None:
        """Wait for (or cancel) attempts in flight; cancelled rows are retried after their lease."""
        tasks = list(self._tasks)
        if cancel:
            for task in tasks:
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _attempt(self, record: DeliveryRecord) -> None:
        fields = {"delivery_id": record.id, "event_type": record.event_type, "attempt": record.attempts}
        try:
            token = await self._tokens.auth_token(record.account_sid)
            if token is None:
                await self._settle_dead(record, None, "unknown account", fields)
                return
            request = CallbackRequest(
                url=record.url,
                method=record.method,
                params=record.params,
                idempotency_token=str(record.event_id),
            )
            result = await self._sender.send(request, token)
            self._metrics.attempt_seconds.observe(result.elapsed_s)
            await self._settle(record, result, fields)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The row stays `delivering`; it is claimed again once its lease expires.
            logger.exception("callback attempt failed unexpectedly", extra=fields)
        finally:
            self._by_host[record.host] -= 1
            if self._by_host[record.host] <= 0:
                del self._by_host[record.host]

    async def _settle(self, record: DeliveryRecord, result: AttemptResult, fields: dict[str, object]) -> None:
        if result.refused:
            await self._settle_dead(record, None, f"refused: {result.error}", fields)
            return
        if result.status is not None:
            verdict = classify_status(result.status)
            if verdict is AttemptClass.DELIVERED:
                if await self._store.mark_delivered(record, result.status):
                    self._metrics.deliveries.labels(outcome="delivered").inc()
                    logger.info("callback delivered", extra=fields | {"status": result.status})
                else:
                    logger.warning("claim lost before recording delivery", extra=fields)
                return
            if verdict is AttemptClass.PERMANENT:
                await self._settle_dead(record, result.status, result.error, fields)
                return
        now = self._clock()
        retry_after = None
        if result.status in (429, 503):
            retry_after = parse_retry_after(result.retry_after, now)
        decision = decide_retry(
            policy=self._backoff,
            attempt=record.attempts,
            window_started_at=record.window_started_at,
            now=now,
            retry_after_s=retry_after,
            rng=self._rng,
        )
        if decision.dead or decision.next_attempt_at is None:
            await self._settle_dead(record, result.status, f"retry window over: {result.error}", fields)
            return
        if await self._store.mark_retry(record, result.status, result.error, decision.next_attempt_at):
            self._metrics.deliveries.labels(outcome="retried").inc()
            logger.info(
                "callback attempt failed, retrying",
                extra=fields
                | {
                    "status": result.status,
                    "error": result.error,
                    "next_attempt_at": decision.next_attempt_at.isoformat(),
                },
            )

    async def _settle_dead(
        self, record: DeliveryRecord, status: int | None, error: str | None, fields: dict[str, object]
    ) -> None:
        if await self._store.mark_dead(record, status, error):
            self._metrics.deliveries.labels(outcome="dead").inc()
            logger.warning("callback dead", extra=fields | {"status": status, "error": error})
