"""The notifier's SQL: the `deliveries` queue (insert, claim, outcome, list, replay) in its own schema.

Claiming uses ``FOR UPDATE SKIP LOCKED`` so several notifier instances share the queue; only the head of each
ordering key is claimable (see `domain.claimable`, which states the same rule in Python).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from libs.db.pool import check_schema_name, transaction
from libs.db.processed import mark_processed
from services.notifier.domain import Callback
from services.notifier.targets import TargetRefused, parse_target

CONSUMER = "notifier"
SEQUENCE_LOCK_SPACE = 0x6E6F7466  # "notf": first key of the per-ordering-key advisory locks
STATES = ("pending", "delivering", "delivered", "dead")


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of `deliveries`."""

    id: int
    event_id: uuid.UUID
    event_type: str
    account_sid: str
    url: str
    host: str
    method: str
    params: dict[str, str]
    ordering_key: str
    sequence: int
    state: str
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    claim_token: uuid.UUID | None
    window_started_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view (CLI `--json`, internal API)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "account_sid": self.account_sid,
            "url": self.url,
            "method": self.method,
            "params": self.params,
            "ordering_key": self.ordering_key,
            "sequence": self.sequence,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
            "delivered_at": iso(self.delivered_at),
            "dead_at": iso(self.dead_at),
        }


def _record(row: asyncpg.Record) -> DeliveryRecord:
    params = row["params"]
    return DeliveryRecord(
        id=row["id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        account_sid=row["account_sid"],
        url=row["url"],
        host=row["host"],
        method=row["method"],
        params=json.loads(params) if isinstance(params, str) else dict(params),
        ordering_key=row["ordering_key"],
        sequence=row["sequence"],
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        lease_until=row["lease_until"],
        claim_token=row["claim_token"],
        window_started_at=row["window_started_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        dead_at=row["dead_at"],
    )


def callback_host(url: str) -> str:
    """The host a callback URL targets (per-host concurrency key); empty when the URL is unusable."""
    try:
        return parse_target(url).host
    except TargetRefused:
        return ""


class DeliveryStore:
    """SQL over ``<schema>.deliveries``. Methods taking ``conn`` join the caller's transaction."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "notifier") -> None:
        self.pool = pool
        self.schema = schema
        self._t = f"{check_schema_name(schema)}.deliveries"

    async def record(self, event_id: uuid.UUID, callback: Callback | None) -> bool:
        """Mark the event processed and queue its callback, in one transaction; False for a redelivery."""
        async with transaction(self.pool) as conn:
            if not await mark_processed(conn, self.schema, CONSUMER, event_id):
                return False
            if callback is not None:
                await self.insert(conn, callback)
        return True

    async def insert(self, conn: asyncpg.Connection, callback: Callback) -> int | None:
        """Queue a callback behind the earlier ones of its key; None when the event is already queued."""
        # Room and recording events share a key but arrive through different consumers: serialize the
        # sequence choice per key (transaction-scoped lock, own two-key namespace), then max + 1.
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", SEQUENCE_LOCK_SPACE, callback.ordering_key
        )
        sequence = await conn.fetchval(
            f"SELECT coalesce(max(sequence), -1) + 1 FROM {self._t} WHERE ordering_key = $1",  # noqa: S608
            callback.ordering_key,
        )
        row_id: int | None = await conn.fetchval(
            f"INSERT INTO {self._t} (event_id, event_type, account_sid, url, host, method, params, "  # noqa: S608
            "ordering_key, sequence) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING id",
            callback.event_id,
            callback.event_type,
            str(callback.account_sid),
            callback.url,
            callback_host(callback.url),
            callback.method,
            dict(callback.params),
            callback.ordering_key,
            sequence,
        )
        return row_id

    async def claim_due(
        self, *, limit: int, host_slots: Mapping[str, int], per_host_limit: int, lease: timedelta
    ) -> list[DeliveryRecord]:
        """Claim up to ``limit`` due heads of their ordering keys, at most the free slots per host.

        ``host_slots`` gives the free slots of hosts that already have attempts in flight (0 = busy); other
        hosts get ``per_host_limit``. Claimed rows become ``delivering`` with a fresh ``claim_token``,
        ``attempts + 1`` and a lease; if the worker dies, the row is claimable again when the lease expires.
        """
        if limit <= 0:
            return []
        hosts = list(host_slots)
        slots = [host_slots[h] for h in hosts]
        due = (
            "((d.state = 'pending' AND d.next_attempt_at <= now()) "
            "OR (d.state = 'delivering' AND d.lease_until <= now()))"
        )
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"""
                WITH heads AS (
                    SELECT DISTINCT ON (ordering_key) id
                    FROM {self._t}
                    WHERE state IN ('pending', 'delivering')
                    ORDER BY ordering_key, sequence
                ), ranked AS (
                    SELECT d.id, d.host, d.next_attempt_at,
                           row_number() OVER (PARTITION BY d.host ORDER BY d.next_attempt_at, d.id) AS rn
                    FROM {self._t} d JOIN heads h ON h.id = d.id
                    WHERE {due}
                ), picked AS (
                    SELECT r.id FROM ranked r
                    LEFT JOIN unnest($1::text[], $2::int[]) AS s(host, free) ON s.host = r.host
                    WHERE r.rn <= coalesce(s.free, $3)
                    ORDER BY r.next_attempt_at, r.id
                    LIMIT $4
                )
                SELECT d.id FROM {self._t} d
                WHERE d.id IN (SELECT id FROM picked) AND {due}
                FOR UPDATE OF d SKIP LOCKED
                """,  # noqa: S608 (checked schema name; values are bound)
                hosts,
                slots,
                per_host_limit,
                limit,
            )
            if not rows:
                return []
            claimed = await conn.fetch(
                f"UPDATE {self._t} SET state = 'delivering', attempts = attempts + 1, "  # noqa: S608
                "lease_until = now() + $2::interval, claim_token = $3 "
                "WHERE id = ANY($1::bigint[]) RETURNING *",
                [r["id"] for r in rows],
                lease,
                uuid.uuid4(),
            )
        return sorted((_record(r) for r in claimed), key=lambda r: (r.next_attempt_at, r.id))

    async def mark_delivered(self, record: DeliveryRecord, status: int) -> bool:
        """Record a 2xx. False when the claim was lost (lease expired and someone else took the row)."""
        result = await self.pool.execute(
            f"UPDATE {self._t} SET state = 'delivered', delivered_at = now(), last_status = $3, "  # noqa: S608
            "last_error = NULL, lease_until = NULL "
            "WHERE id = $1 AND claim_token = $2 AND state = 'delivering'",
            record.id,
            record.claim_token,
            status,
        )
        return result.endswith(" 1")

    async def mark_retry(
        self, record: DeliveryRecord, status: int | None, error: str | None, next_attempt_at: datetime
    ) -> bool:
        """Put the row back to pending for another attempt at ``next_attempt_at``."""
        result = await self.pool.execute(
            f"UPDATE {self._t} SET state = 'pending', next_attempt_at = $3, last_status = $4, "  # noqa: S608
            "last_error = $5, lease_until = NULL WHERE id = $1 AND claim_token = $2 AND state = 'delivering'",
            record.id,
            record.claim_token,
            next_attempt_at,
            status,
            error,
        )
        return result.endswith(" 1")

    async def mark_dead(self, record: DeliveryRecord, status: int | None, error: str | None) -> bool:
        """Give up on the row (permanent failure, window over); the next row of its key is released."""
        result = await self.pool.execute(
            f"UPDATE {self._t} SET state = 'dead', dead_at = now(), last_status = $3, "  # noqa: S608
            "last_error = $4, lease_until = NULL WHERE id = $1 AND claim_token = $2 AND state = 'delivering'",
            record.id,
            record.claim_token,
            status,
            error,
        )
        return result.endswith(" 1")

    async def get(self, delivery_id: int) -> DeliveryRecord | None:
        """One delivery by id."""
        row = await self.pool.fetchrow(f"SELECT * FROM {self._t} WHERE id = $1", delivery_id)  # noqa: S608
        return _record(row) if row is not None else None

    async def list(
        self, *, state: str | None = None, account_sid: str | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Deliveries, newest first, optionally filtered by state and account."""
        rows = await self.pool.fetch(
            f"SELECT * FROM {self._t} WHERE ($1::text IS NULL OR state = $1) "  # noqa: S608
            "AND ($2::text IS NULL OR account_sid = $2) ORDER BY id DESC LIMIT $3",
            state,
            account_sid,
            limit,
        )
        return [_record(r) for r in rows]

    async def replay(self, delivery_id: int) -> bool:
        """Send a dead delivery again, with fresh attempts and retry window. False if it is not dead."""
        result = await self.pool.execute(
            f"UPDATE {self._t} SET state = 'pending', attempts = 0, next_attempt_at = now(), "  # noqa: S608
            "window_started_at = now(), lease_until = NULL, claim_token = NULL, dead_at = NULL "
            "WHERE id = $1 AND state = 'dead'",
            delivery_id,
        )
        return result.endswith(" 1")

    async def replay_all_dead(self, account_sid: str | None = None) -> int:
        """Replay every dead delivery (optionally of one account); returns how many."""
        result = await self.pool.execute(
            f"UPDATE {self._t} SET state = 'pending', attempts = 0, next_attempt_at = now(), "  # noqa: S608
            "window_started_at = now(), lease_until = NULL, claim_token = NULL, dead_at = NULL "
            "WHERE state = 'dead' AND ($1::text IS NULL OR account_sid = $1)",
            account_sid,
        )
        return int(result.rsplit(" ", 1)[-1])

    async def count_by_state(self) -> dict[str, int]:
        """Row counts per state (all states present, zero when empty)."""
        rows = await self.pool.fetch(f"SELECT state, count(*) AS n FROM {self._t} GROUP BY state")  # noqa: S608
        counts = dict.fromkeys(STATES, 0)
        for row in rows:
            counts[row["state"]] = int(row["n"])
        return counts

    async def prune(self, older_than: timedelta, batch: int = 5000) -> int:
        """Delete delivered rows older than ``older_than`` (at most ``batch``); returns how many.

        Dead, pending and in-flight rows are kept. Later rows of a key still sort after the remaining ones,
        because a new sequence is always above the highest one left.
        """
        result = await self.pool.execute(
            f"DELETE FROM {self._t} WHERE id IN (SELECT id FROM {self._t} "  # noqa: S608
            "WHERE state = 'delivered' AND delivered_at < now() - $1::interval ORDER BY id LIMIT $2)",
            older_than,
            batch,
        )
        return int(result.rsplit(" ", 1)[-1])
