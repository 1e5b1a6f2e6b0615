"""In-memory fakes of the dispatcher's ports (store, sender, auth tokens)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.notifier.delivery import AttemptResult, CallbackRequest
from services.notifier.domain import QueuedDelivery, claimable
from services.notifier.store import DeliveryRecord, callback_host


class FakeClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FakeStore:
    """DispatchStore over a dict, using the same claim rule as the SQL (`domain.claimable`)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.rows: dict[int, DeliveryRecord] = {}
        self._sequences: dict[str, int] = {}

    def add(self, url: str, key: str, method: str = "POST", account_sid: str = "AC" + "a" * 32) -> int:
        row_id = len(self.rows) + 1
        seq = self._sequences.get(key, -1) + 1
        self._sequences[key] = seq
        now = self.clock()
        self.rows[row_id] = DeliveryRecord(
            id=row_id,
            event_id=uuid.uuid4(),
            event_type="room-created",
            account_sid=account_sid,
            url=url,
            host=callback_host(url),
            method=method,
            params={"StatusCallbackEvent": "room-created", "N": str(row_id)},
            ordering_key=key,
            sequence=seq,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            claim_token=None,
            window_started_at=now,
            last_status=None,
            last_error=None,
            created_at=now,
            delivered_at=None,
            dead_at=None,
        )
        return row_id

    async def claim_due(
        self, *, limit: int, host_slots: Mapping[str, int], per_host_limit: int, lease: timedelta
    ) -> list[DeliveryRecord]:
        now = self.clock()
        queued = [
            QueuedDelivery(
                r.id, r.ordering_key, r.sequence, r.host, r.state, r.next_attempt_at, r.lease_until
            )
            for r in self.rows.values()
            if r.state in ("pending", "delivering")
        ]
        busy = [h for h, free in host_slots.items() if free <= 0]
        picked: list[DeliveryRecord] = []
        per_host: dict[str, int] = {}
        for q in claimable(queued, now, busy, len(queued)):
            allowed = host_slots.get(q.host, per_host_limit)
            if per_host.get(q.host, 0) >= allowed or len(picked) >= limit:
                continue
            per_host[q.host] = per_host.get(q.host, 0) + 1
            row = self.rows[q.id]
            row = replace(
                row,
                state="delivering",
                attempts=row.attempts + 1,
                lease_until=now + lease,
                claim_token=uuid.uuid4(),
            )
            self.rows[q.id] = row
            picked.append(row)
        return picked

    def _owned(self, record: DeliveryRecord) -> bool:
        row = self.rows[record.id]
        return row.state == "delivering" and row.claim_token == record.claim_token

    async def mark_delivered(self, record: DeliveryRecord, status: int) -> bool:
        if not self._owned(record):
            return False
        self.rows[record.id] = replace(
            self.rows[record.id], state="delivered", last_status=status, delivered_at=self.clock()
        )
        return True

    async def mark_retry(
        self, record: DeliveryRecord, status: int | None, error: str | None, next_attempt_at: datetime
    ) -> bool:
        if not self._owned(record):
            return False
        self.rows[record.id] = replace(
            self.rows[record.id],
            state="pending",
            last_status=status,
            last_error=error,
            next_attempt_at=next_attempt_at,
            lease_until=None,
        )
        return True

    async def mark_dead(self, record: DeliveryRecord, status: int | None, error: str | None) -> bool:
        if not self._owned(record):
            return False
        self.rows[record.id] = replace(
            self.rows[record.id], state="dead", last_status=status, last_error=error, dead_at=self.clock()
        )
        return True


Responder = Callable[[CallbackRequest], AttemptResult]


class FakeSender:
    """Scripted receiver per URL; a URL in `hang` blocks until released."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.sent: list[CallbackRequest] = []
        self.hang: dict[str, asyncio.Event] = {}

    async def send(self, request: CallbackRequest, auth_token: str) -> AttemptResult:
        self.sent.append(request)
        gate = self.hang.get(request.url)
        if gate is not None:
            await gate.wait()
        return self.respond(request)


class FakeTokens:
    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    async def auth_token(self, account_sid: str) -> str | None:
        return self.tokens.get(account_sid)


def ok(status: int = 200, retry_after: str | None = None) -> AttemptResult:
    return AttemptResult(
        status=status,
        error=None if status < 300 else f"http status {status}",
        retry_after=retry_after,
        elapsed_s=0.01,
    )
