"""The room service's SQL: rooms, participants, tracks and the outbox of schema `room`.

Reads go through `RoomStore` (pool). Every state change runs in a `RoomTx` (one transaction) that locks
the room row first (`lock_room`, `FOR UPDATE`), so the lifecycle of one room is serialized across requests,
Janus events and the timer loop, and the outbox rows commit with the state they describe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from libs.db.outbox import add_events
from libs.db.pool import check_schema_name, transaction
from libs.db.query import Where
from libs.events.base import Event
from libs.events.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from services.room.domain import unique_name_taken
from services.room.records import (
    ParticipantRecord,
    RoomRecord,
    TrackRecord,
    rules_from_json,
    spec_from_json,
    spec_to_json,
)
from services.room.rules import Rule, rules_to_json


def _room(row: asyncpg.Record) -> RoomRecord:
    rules = rules_from_json(row["recording_rules"])
    return RoomRecord(
        sid=RoomSid(row["sid"]),
        account_sid=AccountSid(row["account_sid"]),
        spec=spec_from_json(row["spec"], rules),
        status=row["status"],
        janus_secret=row["janus_secret"],
        ad_hoc=row["ad_hoc"],
        date_created=row["date_created"],
        date_updated=row["date_updated"],
        recording_rules_updated=row["recording_rules_updated"],
        end_time=row["end_time"],
        end_reason=row["end_reason"],
        ever_joined=row["ever_joined"],
        emptied_at=row["emptied_at"],
        next_sequence=row["next_sequence"],
    )


def _participant(row: asyncpg.Record) -> ParticipantRecord:
    raw_rules = row["subscribe_rules"]
    return ParticipantRecord(
        sid=ParticipantSid(row["sid"]),
        room_sid=RoomSid(row["room_sid"]),
        account_sid=AccountSid(row["account_sid"]),
        identity=row["identity"],
        status=row["status"],
        date_created=row["date_created"],
        date_updated=row["date_updated"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        duration=row["duration"],
        subscribe_rules=None if raw_rules is None else rules_from_json(raw_rules),
        subscribe_rules_updated=row["subscribe_rules_updated"],
    )


def _track(row: asyncpg.Record) -> TrackRecord:
    return TrackRecord(
        sid=TrackSid(row["sid"]),
        room_sid=RoomSid(row["room_sid"]),
        participant_sid=ParticipantSid(row["participant_sid"]),
        name=row["name"],
        kind=row["kind"],
        mid=row["mid"],
        codec=row["codec"],
        enabled=row["enabled"],
        published=row["published"],
        date_created=row["date_created"],
        date_updated=row["date_updated"],
    )


@dataclass(frozen=True)
class RoomFilter:
    status: str | None = None
    unique_name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class ParticipantFilter:
    status: str | None = None
    identity: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class RoomTx:
    """One transaction of the room service (see module docstring)."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self._s = schema

    async def insert_room(self, room: RoomRecord, deadline: datetime | None) -> None:
        """Insert a new room. Raises 53113 when the name is taken by an in-progress room."""
        try:
            await self.conn.execute(
                f"INSERT INTO {self._s}.rooms (sid, account_sid, unique_name, status, spec, recording_rules, "  # noqa: S608
                "recording_rules_updated, janus_secret, ad_hoc, date_created, date_updated, next_sequence, "
                "next_deadline) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
                room.sid,
                room.account_sid,
                room.spec.unique_name,
                room.status,
                spec_to_json(room.spec),
                rules_to_json(room.spec.recording_rules),
                room.recording_rules_updated,
                room.janus_secret,
                room.ad_hoc,
                room.date_created,
                room.date_updated,
                room.next_sequence,
                deadline,
            )
        except asyncpg.UniqueViolationError as exc:
            raise unique_name_taken(room.spec.unique_name or room.sid) from exc

    async def lock_room(self, sid: RoomSid) -> RoomRecord | None:
        row = await self.conn.fetchrow(f"SELECT * FROM {self._s}.rooms WHERE sid = $1 FOR UPDATE", sid)  # noqa: S608
        return None if row is None else _room(row)

    async def update_room(self, room: RoomRecord, deadline: datetime | None) -> None:
        await self.conn.execute(
            f"UPDATE {self._s}.rooms SET status=$2, end_time=$3, end_reason=$4, ever_joined=$5, "  # noqa: S608
            "emptied_at=$6, next_sequence=$7, date_updated=$8, next_deadline=$9, recording_rules=$10, "
            "recording_rules_updated=$11 WHERE sid=$1",
            room.sid,
            room.status,
            room.end_time,
            room.end_reason,
            room.ever_joined,
            room.emptied_at,
            room.next_sequence,
            room.date_updated,
            deadline,
            rules_to_json(room.spec.recording_rules),
            room.recording_rules_updated,
        )

    async def connected(self, room_sid: RoomSid) -> list[ParticipantRecord]:
        rows = await self.conn.fetch(
            f"SELECT * FROM {self._s}.participants WHERE room_sid=$1 AND status='connected' "  # noqa: S608
            "ORDER BY start_time, sid",
            room_sid,
        )
        return [_participant(r) for r in rows]

    async def participant(self, sid: ParticipantSid) -> ParticipantRecord | None:
        row = await self.conn.fetchrow(f"SELECT * FROM {self._s}.participants WHERE sid=$1", sid)  # noqa: S608
        return None if row is None else _participant(row)

    async def insert_participant(self, p: ParticipantRecord) -> None:
        await self.conn.execute(
            f"INSERT INTO {self._s}.participants (sid, room_sid, account_sid, identity, status, "  # noqa: S608
            "date_created, date_updated, start_time) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            p.sid,
            p.room_sid,
            p.account_sid,
            p.identity,
            p.status,
            p.date_created,
            p.date_updated,
            p.start_time,
        )

    async def mark_disconnected(self, sid: ParticipantSid, at: datetime, duration: int) -> None:
        await self.conn.execute(
            f"UPDATE {self._s}.participants SET status='disconnected', end_time=$2, duration=$3, "  # noqa: S608
            "date_updated=$2 WHERE sid=$1",
            sid,
            at,
            duration,
        )

    async def set_subscribe_rules(self, sid: ParticipantSid, rules: Sequence[Rule], now: datetime) -> None:
        await self.conn.execute(
            f"UPDATE {self._s}.participants SET subscribe_rules=$2, subscribe_rules_updated=$3 "  # noqa: S608
            "WHERE sid=$1",
            sid,
            rules_to_json(rules),
            now,
        )

    async def anonymize(self, sid: ParticipantSid, now: datetime) -> None:
        await self.conn.execute(
            f"UPDATE {self._s}.participants SET identity=sid, date_updated=$2 WHERE sid=$1",  # noqa: S608
            sid,
            now,
        )

    async def published_tracks(self, room_sid: RoomSid) -> list[TrackRecord]:
        rows = await self.conn.fetch(
            f"SELECT * FROM {self._s}.tracks WHERE room_sid=$1 AND published ORDER BY date_created, sid",  # noqa: S608
            room_sid,
        )
        return [_track(r) for r in rows]

    async def participant_tracks(self, participant_sid: ParticipantSid) -> list[TrackRecord]:
        rows = await self.conn.fetch(
            f"SELECT * FROM {self._s}.tracks WHERE participant_sid=$1 ORDER BY date_created, sid",  # noqa: S608
            participant_sid,
        )
        return [_track(r) for r in rows]

    async def insert_track(self, t: TrackRecord) -> None:
        await self.conn.execute(
            f"INSERT INTO {self._s}.tracks (sid, room_sid, participant_sid, name, kind, mid, codec, "  # noqa: S608
            "enabled, published, date_created, date_updated) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            t.sid,
            t.room_sid,
            t.participant_sid,
            t.name,
            t.kind,
            t.mid,
            t.codec,
            t.enabled,
            t.published,
            t.date_created,
            t.date_updated,
        )

    async def update_track(self, t: TrackRecord) -> None:
        await self.conn.execute(
            f"UPDATE {self._s}.tracks SET enabled=$2, published=$3, codec=$4, date_updated=$5 "  # noqa: S608
            "WHERE sid=$1",
            t.sid,
            t.enabled,
            t.published,
            t.codec,
            t.date_updated,
        )

    async def add_events(self, events: Sequence[Event]) -> None:
        await add_events(self.conn, self._s, events)

    async def claim_due(self, now: datetime, limit: int) -> list[RoomSid]:
        """In-progress rooms whose deadline has passed, locked; rooms another process holds are skipped."""
        rows = await self.conn.fetch(
            f"SELECT sid FROM {self._s}.rooms WHERE status='in-progress' AND next_deadline <= $1 "  # noqa: S608
            "ORDER BY next_deadline LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [RoomSid(r["sid"]) for r in rows]


class RoomStore:
    """Reads of the room schema, and `transaction()` for writes."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "room") -> None:
        self._pool = pool
        self._s = check_schema_name(schema)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RoomTx]:
        async with transaction(self._pool) as conn:
            yield RoomTx(conn, self._s)

    async def room(self, account_sid: AccountSid, sid: RoomSid) -> RoomRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT * FROM {self._s}.rooms WHERE account_sid=$1 AND sid=$2",  # noqa: S608
            account_sid,
            sid,
        )
        return None if row is None else _room(row)

    async def room_any_account(self, sid: RoomSid) -> RoomRecord | None:
        row = await self._pool.fetchrow(f"SELECT * FROM {self._s}.rooms WHERE sid=$1", sid)  # noqa: S608
        return None if row is None else _room(row)

    async def room_in_progress_by_name(self, account_sid: AccountSid, name: str) -> RoomRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT * FROM {self._s}.rooms WHERE account_sid=$1 AND unique_name=$2 "  # noqa: S608
            "AND status='in-progress'",
            account_sid,
            name,
        )
        return None if row is None else _room(row)

    async def find_rooms(
        self, account_sid: AccountSid, f: RoomFilter, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[RoomRecord]:
        """Rooms in (date_created, sid) order after the cursor."""
        w = Where("account_sid = {}", account_sid)
        w.add_if("status = {}", f.status)
        w.add_if("coalesce(unique_name, sid) = {}", f.unique_name)
        w.add_if("date_created >= {}", f.created_after)
        w.add_if("date_created < {}", f.created_before)
        w.after(("date_created", "sid"), after)
        sql = (
            f"SELECT * FROM {self._s}.rooms WHERE {w.sql} "  # noqa: S608  # fragments are constants
            f"ORDER BY date_created, sid LIMIT {w.arg(limit)}"
        )
        return [_room(r) for r in await self._pool.fetch(sql, *w.args)]

    async def participant(self, room_sid: RoomSid, ref: str) -> ParticipantRecord | None:
        """By PA SID, else by identity (the connected one first, then the latest)."""
        if ParticipantSid.is_valid(ref):
            row = await self._pool.fetchrow(
                f"SELECT * FROM {self._s}.participants WHERE room_sid=$1 AND sid=$2",  # noqa: S608
                room_sid,
                ParticipantSid(ref),
            )
        else:
            row = await self._pool.fetchrow(
                f"SELECT * FROM {self._s}.participants WHERE room_sid=$1 AND identity=$2 "  # noqa: S608
                "ORDER BY (status='connected') DESC, date_created DESC LIMIT 1",
                room_sid,
                ref,
            )
        return None if row is None else _participant(row)

    async def find_participants(
        self, room_sid: RoomSid, f: ParticipantFilter, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[ParticipantRecord]:
        w = Where("room_sid = {}", room_sid)
        w.add_if("status = {}", f.status)
        w.add_if("identity = {}", f.identity)
        w.add_if("date_created >= {}", f.created_after)
        w.add_if("date_created < {}", f.created_before)
        w.after(("date_created", "sid"), after)
        sql = (
            f"SELECT * FROM {self._s}.participants WHERE {w.sql} "  # noqa: S608  # fragments are constants
            f"ORDER BY date_created, sid LIMIT {w.arg(limit)}"
        )
        return [_participant(r) for r in await self._pool.fetch(sql, *w.args)]

    async def participants_by_sid(self, sids: Sequence[str]) -> dict[str, ParticipantRecord]:
        rows = await self._pool.fetch(
            f"SELECT * FROM {self._s}.participants WHERE sid = ANY($1::text[])",  # noqa: S608
            list(sids),
        )
        return {r["sid"]: _participant(r) for r in rows}

    async def tracks_of(self, participant_sid: ParticipantSid, *, published_only: bool) -> list[TrackRecord]:
        extra = " AND published" if published_only else ""
        rows = await self._pool.fetch(
            f"SELECT * FROM {self._s}.tracks WHERE participant_sid=$1{extra} ORDER BY date_created, sid",  # noqa: S608
            participant_sid,
        )
        return [_track(r) for r in rows]

    async def room_tracks(self, room_sid: RoomSid) -> list[TrackRecord]:
        """The tracks currently published in the room."""
        rows = await self._pool.fetch(
            f"SELECT * FROM {self._s}.tracks WHERE room_sid=$1 AND published ORDER BY date_created, sid",  # noqa: S608
            room_sid,
        )
        return [_track(r) for r in rows]

    async def connected_by_room(self, before: datetime) -> dict[RoomSid, list[ParticipantSid]]:
        """Participants connected before `before` in every in-progress room (start-up reconciliation)."""
        rows = await self._pool.fetch(
            f"SELECT p.room_sid, p.sid FROM {self._s}.participants p JOIN {self._s}.rooms r "  # noqa: S608
            "ON r.sid = p.room_sid WHERE r.status = 'in-progress' AND p.status = 'connected' "
            "AND p.start_time < $1",
            before,
        )
        found: dict[RoomSid, list[ParticipantSid]] = {}
        for row in rows:
            found.setdefault(RoomSid(row["room_sid"]), []).append(ParticipantSid(row["sid"]))
        return found

    async def stats(self) -> dict[str, Any]:
        row = await self._pool.fetchrow(
            f"SELECT (SELECT count(*) FROM {self._s}.rooms WHERE status='in-progress') AS rooms, "  # noqa: S608
            f"(SELECT count(*) FROM {self._s}.participants WHERE status='connected') AS participants"
        )
        return {} if row is None else dict(row)
