"""The compositor's SQL: compositions, the room/recording projections and the leased job queue.

Every state change that must be announced writes its events to ``<schema>.outbox`` in the same transaction
(libs.db.outbox); the relay publishes them. Tables: see migrations/0001_compositions.sql.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from libs.composition.spec import CallbackMethod, Format
from libs.db.outbox import add_events
from libs.db.pool import DbConnection, check_schema_name, transaction
from libs.db.processed import mark_processed
from libs.db.query import Where
from libs.events.base import Event
from libs.events.models import CompositionRequested
from libs.events.sids import AccountSid, CompositionSid, HookSid, RoomSid
from services.compositor.domain import (
    Composition,
    CompositionSpec,
    QueueHead,
    Status,
)


@dataclass(frozen=True)
class CompositionFilter:
    """List filters; None means not filtered."""

    status: Status | None = None
    room_sid: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class Recording:
    """A completed recording of the room, as projected from RecordingCompleted."""

    recording_sid: str
    participant_sid: str
    source_sid: str
    track_name: str
    kind: str
    codec: str
    object_key: str | None
    offset_ms: int
    size_bytes: int


@dataclass(frozen=True)
class RoomState:
    """The room as projected: its account, whether the recorder finalized its recordings, and how long
    ago the compositor learnt that it ended (None while in progress)."""

    account_sid: str
    recordings_finalized: bool
    ended_for_s: float | None


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: only the holder of ``lease_id`` may change the composition's outcome."""

    composition: Composition
    lease_id: UUID
    attempts: int


def _status(value: str) -> Status:
    for status in ("enqueued", "processing", "completed", "failed", "deleted"):
        if value == status:
            return status
    raise ValueError(f"unknown composition status {value!r}")


def _composition(row: asyncpg.Record) -> Composition:
    fmt: Format = "mp4" if row["format"] == "mp4" else "webm"
    method: CallbackMethod = "GET" if row["status_callback_method"] == "GET" else "POST"
    return Composition(
        sid=CompositionSid(row["sid"]),
        account_sid=AccountSid(row["account_sid"]),
        spec=CompositionSpec(
            room_sid=RoomSid(row["room_sid"]),
            video_layout=row["video_layout"],
            audio_sources=tuple(row["audio_sources"]),
            audio_sources_excluded=tuple(row["audio_sources_excluded"]),
            resolution=row["resolution"],
            format=fmt,
            trim=row["trim"],
            status_callback=row["status_callback"],
            status_callback_method=method,
            hook_sid=HookSid(row["hook_sid"]) if row["hook_sid"] else None,
            hook_friendly_name=row["hook_friendly_name"],
        ),
        status=_status(row["status"]),
        date_created=row["date_created"],
        date_completed=row["date_completed"],
        date_deleted=row["date_deleted"],
        bitrate=row["bitrate"],
        size=row["size"],
        duration=row["duration"],
        object_key=row["object_key"],
    )


def spec_of_request(event: CompositionRequested) -> CompositionSpec:
    """The spec carried by a CompositionRequested (hook-created or our own API's)."""
    return CompositionSpec(
        room_sid=event.room_sid,
        video_layout=event.video_layout,
        audio_sources=tuple(event.audio_sources),
        audio_sources_excluded=tuple(event.audio_sources_excluded),
        resolution=event.resolution,
        format=event.format,
        trim=event.trim,
        status_callback=event.status_callback,
        status_callback_method=event.status_callback_method,
        hook_sid=event.hook_sid,
        hook_friendly_name=event.hook_friendly_name,
    )


class CompositionStore:
    """Compositions, projections and jobs in schema ``schema`` (``compositor`` in production)."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "compositor", consumer: str = "compositor") -> None:
        self.pool = pool
        self.schema = check_schema_name(schema)
        self.consumer = consumer
        s = self.schema
        self._compositions = f"{s}.compositions"
        self._jobs = f"{s}.jobs"
        self._rooms = f"{s}.rooms"
        self._recordings = f"{s}.recordings"
        self._turns = f"{s}.account_turns"

    # ------------------------------------------------------------ compositions (API side)

    async def _insert(
        self,
        conn: DbConnection,
        sid: CompositionSid,
        account_sid: AccountSid,
        spec: CompositionSpec,
        now: datetime,
    ) -> bool:
        status = await conn.execute(
            f"INSERT INTO {self._compositions} (sid, account_sid, room_sid, status, hook_sid, "  # noqa: S608
            "hook_friendly_name, video_layout, audio_sources, audio_sources_excluded, resolution, format, "
            "trim, status_callback, status_callback_method, date_created) "
            "VALUES ($1,$2,$3,'enqueued',$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) ON CONFLICT (sid) DO NOTHING",
            sid,
            account_sid,
            spec.room_sid,
            spec.hook_sid,
            spec.hook_friendly_name,
            spec.video_layout,
            list(spec.audio_sources),
            list(spec.audio_sources_excluded),
            spec.resolution,
            spec.format,
            spec.trim,
            spec.status_callback,
            spec.status_callback_method,
            now,
        )
        return bool(status == "INSERT 0 1")

    async def create(
        self,
        sid: CompositionSid,
        account_sid: AccountSid,
        spec: CompositionSpec,
        now: datetime,
        events: Sequence[Event],
    ) -> Composition:
        """Insert an enqueued composition and queue ``events`` (enqueued + requested) atomically."""
        async with transaction(self.pool) as conn:
            await self._insert(conn, sid, account_sid, spec, now)
            await add_events(conn, self.schema, events)
        return Composition(sid=sid, account_sid=account_sid, spec=spec, status="enqueued", date_created=now)

    async def get(self, account_sid: AccountSid, sid: CompositionSid) -> Composition | None:
        row = await self.pool.fetchrow(
            f"SELECT * FROM {self._compositions} WHERE account_sid = $1 AND sid = $2",  # noqa: S608
            account_sid,
            sid,
        )
        return None if row is None else _composition(row)

    async def find(
        self,
        account_sid: AccountSid,
        filters: CompositionFilter,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Composition]:
        """Compositions in (date_created, sid) order after the ``after`` cursor, at most ``limit``."""
        where = Where("account_sid = {}", account_sid)
        where.add_if("status = {}", filters.status)
        where.add_if("room_sid = {}", filters.room_sid)
        where.add_if("date_created >= {}", filters.created_after)
        where.add_if("date_created < {}", filters.created_before)
        where.after(("date_created", "sid"), after)
        query = (
            f"SELECT * FROM {self._compositions} WHERE {where.sql} "  # noqa: S608  # fragments are constants
            f"ORDER BY date_created, sid LIMIT {where.arg(limit)}"
        )
        return [_composition(r) for r in await self.pool.fetch(query, *where.args)]

    async def mark_deleted(
        self, account_sid: AccountSid, sid: CompositionSid, now: datetime
    ) -> Composition | None:
        """Status ``deleted`` (any live state; a queued or running job is cancelled). Returns the
        composition as it was before, or None when there is no such composition. Idempotent."""
        async with transaction(self.pool) as conn:
            row = await conn.fetchrow(
                f"SELECT * FROM {self._compositions} WHERE account_sid = $1 AND sid = $2 FOR UPDATE",  # noqa: S608
                account_sid,
                sid,
            )
            if row is None:
                return None
            if row["status"] != "deleted":
                await conn.execute(
                    f"UPDATE {self._compositions} SET status = 'deleted', date_deleted = $2 "  # noqa: S608
                    "WHERE sid = $1",
                    sid,
                    now,
                )
                await conn.execute(
                    f"UPDATE {self._jobs} SET state = 'done', finished_at = $2, lease_id = NULL "  # noqa: S608
                    "WHERE composition_sid = $1 AND state <> 'done'",
                    sid,
                    now,
                )
            return _composition(row)

    async def purge_deleted(self, before: datetime, limit: int = 500) -> list[str]:
        """Remove the metadata of compositions deleted before ``before``; returns their media keys."""
        async with transaction(self.pool) as conn:
            rows = await conn.fetch(
                f"DELETE FROM {self._compositions} WHERE sid IN (SELECT sid FROM {self._compositions} "  # noqa: S608
                "WHERE status = 'deleted' AND date_deleted < $1 LIMIT $2) RETURNING sid, object_key",
                before,
                limit,
            )
            sids = [r["sid"] for r in rows]
            if sids:
                await conn.execute(
                    f"DELETE FROM {self._jobs} WHERE composition_sid = ANY($1::text[])",  # noqa: S608
                    sids,
                )
        return [r["object_key"] for r in rows if r["object_key"]]

    # ------------------------------------------------------------ projections (consumer side)

    def transaction(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """One transaction on a pooled connection (handlers: mark processed + effects + outbox)."""
        return transaction(self.pool)

    async def mark_processed(self, conn: DbConnection, event_id: UUID) -> bool:
        """Record a consumed event; False when it was already applied (a redelivery)."""
        return await mark_processed(conn, self.schema, self.consumer, event_id)

    async def add_events(self, conn: DbConnection, events: Sequence[Event]) -> None:
        await add_events(conn, self.schema, events)

    async def upsert_room(
        self,
        conn: DbConnection,
        room_sid: str,
        account_sid: str,
        room_name: str | None,
        status: str,
        end_time: datetime | None,
    ) -> None:
        """A room fact; ``completed``/``failed`` never go back to ``in-progress``."""
        await conn.execute(
            f"INSERT INTO {self._rooms} (room_sid, account_sid, room_name, status, end_time, ended_seen_at) "  # noqa: S608
            "VALUES ($1,$2,$3,$4,$5, CASE WHEN $4 <> 'in-progress' THEN now() END) "
            "ON CONFLICT (room_sid) DO UPDATE SET "
            "room_name = COALESCE(EXCLUDED.room_name, rooms.room_name), "
            "status = CASE WHEN EXCLUDED.status = 'in-progress' THEN rooms.status ELSE EXCLUDED.status END, "
            "end_time = COALESCE(EXCLUDED.end_time, rooms.end_time), "
            "ended_seen_at = COALESCE(rooms.ended_seen_at, EXCLUDED.ended_seen_at), updated_at = now()",
            room_sid,
            account_sid,
            room_name,
            status,
            end_time,
        )

    async def upsert_recording(self, conn: DbConnection, values: dict[str, object]) -> None:
        """A recording fact; a terminal status (completed/failed/deleted) is never replaced by ``started``."""
        columns = list(values)
        placeholders = ",".join(f"${i + 1}" for i in range(len(columns)))
        updates = ", ".join(
            f"{c} = COALESCE(EXCLUDED.{c}, recordings.{c})"
            for c in columns
            if c not in ("recording_sid", "status")
        )
        await conn.execute(
            f"INSERT INTO {self._recordings} ({', '.join(columns)}) VALUES ({placeholders}) "  # noqa: S608
            f"ON CONFLICT (recording_sid) DO UPDATE SET {updates}, updated_at = now(), "
            "status = CASE WHEN EXCLUDED.status = 'started' THEN recordings.status ELSE EXCLUDED.status END",
            *values.values(),
        )

    async def finalize_room(
        self, conn: DbConnection, room_sid: str, account_sid: str, room_name: str
    ) -> None:
        """The recorder finalized every recording of the room (RoomRecordingsFinalized)."""
        await conn.execute(
            f"INSERT INTO {self._rooms} (room_sid, account_sid, room_name, status, recordings_finalized, "  # noqa: S608
            "ended_seen_at) VALUES ($1, $2, $3, 'completed', true, now()) "
            "ON CONFLICT (room_sid) DO UPDATE SET "
            "recordings_finalized = true, status = CASE WHEN rooms.status = 'in-progress' THEN 'completed' "
            "ELSE rooms.status END, ended_seen_at = COALESCE(rooms.ended_seen_at, now()), updated_at = now()",
            room_sid,
            account_sid,
            room_name,
        )

    async def delete_recording(self, conn: DbConnection, recording_sid: str) -> None:
        """The recording's media is gone (RecordingDeleted): it can no longer be composed."""
        await conn.execute(
            f"UPDATE {self._recordings} SET status = 'deleted', object_key = NULL, updated_at = now() "  # noqa: S608
            "WHERE recording_sid = $1",
            recording_sid,
        )

    async def room_account(self, room_sid: RoomSid) -> str | None:
        """The account of a room the compositor has heard of (None when unknown)."""
        room = await self.room(room_sid)
        return None if room is None else room.account_sid

    async def room(self, room_sid: RoomSid) -> RoomState | None:
        """What the compositor knows about a room (None when unknown)."""
        row = await self.pool.fetchrow(
            f"SELECT account_sid, recordings_finalized, "  # noqa: S608
            f"EXTRACT(EPOCH FROM now() - ended_seen_at)::float8 AS ended_for_s FROM {self._rooms} "
            "WHERE room_sid = $1",
            room_sid,
        )
        if row is None:
            return None
        return RoomState(row["account_sid"], row["recordings_finalized"], row["ended_for_s"])

    async def recording_counts(self, room_sid: RoomSid) -> dict[str, int]:
        """Recordings of the room by status."""
        rows = await self.pool.fetch(
            f"SELECT status, count(*) AS n FROM {self._recordings} WHERE room_sid = $1 GROUP BY status",  # noqa: S608
            room_sid,
        )
        return {r["status"]: int(r["n"]) for r in rows}

    async def completed_recordings(self, room_sid: RoomSid) -> list[Recording]:
        rows = await self.pool.fetch(
            f"SELECT * FROM {self._recordings} WHERE room_sid = $1 AND status = 'completed' "  # noqa: S608
            "ORDER BY offset_ms, recording_sid",
            room_sid,
        )
        return [
            Recording(
                recording_sid=r["recording_sid"],
                participant_sid=r["participant_sid"],
                source_sid=r["source_sid"],
                track_name=r["track_name"],
                kind=r["kind"],
                codec=r["codec"],
                object_key=r["object_key"],
                offset_ms=r["offset_ms"],
                size_bytes=r["size_bytes"] or 0,
            )
            for r in rows
        ]

    async def insert_requested(self, conn: DbConnection, event: CompositionRequested, now: datetime) -> bool:
        """The composition row of a requested job (if new) and its job row. True when the composition row
        was created here (a hook's request); False when it already existed (our API wrote it)."""
        created = await self._insert(
            conn, event.composition_sid, event.account_sid, spec_of_request(event), now
        )
        await conn.execute(
            f"INSERT INTO {self._jobs} (composition_sid, account_sid, room_sid, state, enqueued_at, "  # noqa: S608
            "recording_sids) SELECT sid, account_sid, room_sid, 'queued', $2, $3::text[] FROM "
            f"{self._compositions} WHERE sid = $1 AND status IN ('enqueued', 'processing') "
            "ON CONFLICT (composition_sid) DO NOTHING",
            event.composition_sid,
            now,
            [str(r) for r in event.recording_sids],
        )
        return created

    # ------------------------------------------------------------ jobs (worker side)

    async def queue_heads(
        self, wait_limit: timedelta, settle: timedelta = timedelta(0), depth: int = 1
    ) -> list[QueueHead]:
        """The ``depth`` oldest claimable jobs of each account (``position`` 0 = the oldest).

        Claimable: queued, or running with an expired lease; and the room's recording set is known to be
        complete: the recorder said so (RoomRecordingsFinalized), or every recording the request names has
        an outcome, or (naming none) the room has been over for ``settle`` with no recording in progress
        (recording facts travel on another topic and may lag the room's end). A job that waited
        ``wait_limit`` is claimable anyway (it renders what there is)."""
        rows = await self.pool.fetch(
            "SELECT * FROM (SELECT j.composition_sid, j.account_sid, j.enqueued_at, t.last_claimed_at, "  # noqa: S608
            "row_number() OVER (PARTITION BY j.account_sid ORDER BY j.enqueued_at, j.composition_sid) - 1 "
            f"AS position FROM {self._jobs} j "
            f"LEFT JOIN {self._turns} t ON t.account_sid = j.account_sid "
            f"LEFT JOIN {self._rooms} r ON r.room_sid = j.room_sid "
            "WHERE (j.state = 'queued' OR (j.state = 'running' AND j.lease_expires < now())) AND ("
            " j.enqueued_at < now() - $1::interval"
            " OR r.recordings_finalized"
            " OR (cardinality(j.recording_sids) > 0 AND cardinality(j.recording_sids) = ("
            f"   SELECT count(*) FROM {self._recordings} g"
            "    WHERE g.recording_sid = ANY(j.recording_sids) AND g.status <> 'started'))"
            " OR (cardinality(j.recording_sids) = 0 AND r.status <> 'in-progress'"
            "  AND r.ended_seen_at <= now() - $2::interval AND NOT EXISTS ("
            f"   SELECT 1 FROM {self._recordings} g WHERE g.room_sid = j.room_sid AND g.status = 'started'))"
            ")) q WHERE position < $3 ORDER BY account_sid, position",
            wait_limit,
            settle,
            depth,
        )
        return [
            QueueHead(
                r["composition_sid"], r["account_sid"], r["enqueued_at"], r["last_claimed_at"], r["position"]
            )
            for r in rows
        ]

    async def try_claim(self, composition_sid: str, owner: str, lease: timedelta) -> Claim | None:
        """Take the job if it is still claimable (row lock, SKIP LOCKED: a concurrent claimer moves on)."""
        async with transaction(self.pool) as conn:
            row = await conn.fetchrow(
                f"WITH c AS (SELECT composition_sid FROM {self._jobs} WHERE composition_sid = $1 "  # noqa: S608
                "AND (state = 'queued' OR (state = 'running' AND lease_expires < now())) "
                "FOR UPDATE SKIP LOCKED) "
                f"UPDATE {self._jobs} j SET state = 'running', lease_id = gen_random_uuid(), "
                "lease_owner = $2, lease_expires = now() + $3::interval, attempts = j.attempts + 1 "
                "FROM c WHERE j.composition_sid = c.composition_sid "
                "RETURNING j.lease_id, j.attempts, j.account_sid",
                composition_sid,
                owner,
                lease,
            )
            if row is None:
                return None
            await conn.execute(
                f"INSERT INTO {self._turns} (account_sid, last_claimed_at) VALUES ($1, clock_timestamp()) "  # noqa: S608
                "ON CONFLICT (account_sid) DO UPDATE SET last_claimed_at = EXCLUDED.last_claimed_at",
                row["account_sid"],
            )
            comp = await conn.fetchrow(
                f"SELECT * FROM {self._compositions} WHERE sid = $1",  # noqa: S608
                composition_sid,
            )
            if comp is None:
                return None
        return Claim(_composition(comp), row["lease_id"], row["attempts"])

    async def renew(self, lease_id: UUID, lease: timedelta) -> bool:
        """Extend the lease; False when it was lost (expired and re-claimed, or the job was cancelled)."""
        status = await self.pool.execute(
            f"UPDATE {self._jobs} SET lease_expires = now() + $2::interval "  # noqa: S608
            "WHERE lease_id = $1 AND state = 'running'",
            lease_id,
            lease,
        )
        return bool(status == "UPDATE 1")

    async def release(self, lease_id: UUID) -> None:
        """Give the job back to the queue (transient failure or shutdown)."""
        await self.pool.execute(
            f"UPDATE {self._jobs} SET state = 'queued', lease_id = NULL, lease_expires = NULL "  # noqa: S608
            "WHERE lease_id = $1 AND state = 'running'",
            lease_id,
        )

    async def expire_leases_of(self, owner: str) -> int:
        """At start: the leases a previous process of this instance held are expired at once."""
        status = await self.pool.execute(
            f"UPDATE {self._jobs} SET lease_expires = now() "  # noqa: S608
            "WHERE lease_owner = $1 AND state = 'running' AND lease_expires > now()",
            owner,
        )
        return int(status.split()[-1])

    async def _holds(self, conn: DbConnection, lease_id: UUID, sid: str) -> bool:
        held = await conn.fetchval(
            f"SELECT 1 FROM {self._jobs} WHERE composition_sid = $1 AND lease_id = $2 "  # noqa: S608
            "AND state = 'running' FOR UPDATE",
            sid,
            lease_id,
        )
        return held is not None

    async def start(self, claim: Claim, event: Event) -> bool:
        """enqueued → processing with ``event`` (composition-started) when first started. True when the
        composition is live and ours to process; False when it was deleted or finished meanwhile."""
        sid = claim.composition.sid
        async with transaction(self.pool) as conn:
            if not await self._holds(conn, claim.lease_id, sid):
                return False
            status = await conn.fetchval(
                f"SELECT status FROM {self._compositions} WHERE sid = $1 FOR UPDATE",  # noqa: S608
                sid,
            )
            if status == "enqueued":
                await conn.execute(
                    f"UPDATE {self._compositions} SET status = 'processing' WHERE sid = $1",  # noqa: S608
                    sid,
                )
                await add_events(conn, self.schema, [event])
                return True
            if status == "processing":
                return True
            await conn.execute(
                f"UPDATE {self._jobs} SET state = 'done', finished_at = now() WHERE composition_sid = $1",  # noqa: S608
                sid,
            )
            return False

    async def report_progress(self, claim: Claim, percent: int, event: Event) -> bool:
        """Record a progress step and queue its event, only when it advances past the last one reported
        (so a retried job never sends a lower percentage)."""
        sid = claim.composition.sid
        async with transaction(self.pool) as conn:
            if not await self._holds(conn, claim.lease_id, sid):
                return False
            status = await conn.execute(
                f"UPDATE {self._compositions} SET progress_reported = $2 "  # noqa: S608
                "WHERE sid = $1 AND status = 'processing' AND progress_reported < $2",
                sid,
                percent,
            )
            if status != "UPDATE 1":
                return False
            await add_events(conn, self.schema, [event])
        return True

    async def last_progress(self, sid: str) -> int:
        value = await self.pool.fetchval(
            f"SELECT progress_reported FROM {self._compositions} WHERE sid = $1",  # noqa: S608
            sid,
        )
        return int(value or 0)

    async def complete(
        self,
        claim: Claim,
        *,
        object_key: str,
        duration: int,
        size: int,
        bitrate: int,
        now: datetime,
        event: Event,
    ) -> bool:
        """processing → completed with composition-available, only for the current lease holder."""
        sid = claim.composition.sid
        async with transaction(self.pool) as conn:
            if not await self._holds(conn, claim.lease_id, sid):
                return False
            status = await conn.execute(
                f"UPDATE {self._compositions} SET status = 'completed', object_key = $2, duration = $3, "  # noqa: S608
                "size = $4, bitrate = $5, date_completed = $6 WHERE sid = $1 AND status = 'processing'",
                sid,
                object_key,
                duration,
                size,
                bitrate,
                now,
            )
            if status != "UPDATE 1":
                return False
            await self._finish_job(conn, sid, now)
            await add_events(conn, self.schema, [event])
        return True

    async def fail(self, claim: Claim, *, code: int, message: str, now: datetime, event: Event) -> bool:
        """→ failed with composition-failed, only for the current lease holder."""
        sid = claim.composition.sid
        async with transaction(self.pool) as conn:
            if not await self._holds(conn, claim.lease_id, sid):
                return False
            status = await conn.execute(
                f"UPDATE {self._compositions} SET status = 'failed', error_code = $2, error_message = $3, "  # noqa: S608
                "date_completed = $4 WHERE sid = $1 AND status IN ('enqueued', 'processing')",
                sid,
                code,
                message[:500],
                now,
            )
            await self._finish_job(conn, sid, now)
            if status != "UPDATE 1":
                return False
            await add_events(conn, self.schema, [event])
        return True

    async def _finish_job(self, conn: DbConnection, sid: str, now: datetime) -> None:
        await conn.execute(
            f"UPDATE {self._jobs} SET state = 'done', finished_at = $2, lease_id = NULL "  # noqa: S608
            "WHERE composition_sid = $1",
            sid,
            now,
        )

    async def queue_depth(self) -> dict[str, int]:
        """Open jobs by state (queued, running)."""
        rows = await self.pool.fetch(
            f"SELECT state, count(*) AS n FROM {self._jobs} WHERE state <> 'done' GROUP BY state",  # noqa: S608
        )
        return {r["state"]: int(r["n"]) for r in rows}
