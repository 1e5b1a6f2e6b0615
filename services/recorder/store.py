"""The recorder's SQL: room/track projection, Recording resources, claims and outbox writes.

Tables (schema ``recorder`` in production): ``rooms``, ``tracks``, ``recordings`` (0001_recordings.sql).
Every state change that is a fact others must learn is written with its outbox event in one transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from libs.db.outbox import add_event
from libs.db.pool import check_schema_name, transaction
from libs.db.processed import mark_processed
from libs.db.query import Where
from libs.events.base import Event, HttpMethod
from libs.events.models import Container, MediaKind, RoomType
from libs.events.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid
from libs.rooms.rules import Rule, TrackKind
from services.recorder.domain import Recording, RecordingSettings, RecordingStatus, RoomView, TrackView

_REC_COLUMNS = (
    "sid, account_sid, room_sid, room_name, room_type, participant_sid, participant_identity, source_sid, "
    "track_name, kind, codec, container, status, date_created, date_updated, offset_ms, prefix, "
    "status_callback, status_callback_method, capture_open, duration_s, size_bytes, object_key, "
    "start_time, end_time, deleted_at"
)


def _method(value: str) -> HttpMethod:
    return "GET" if value == "GET" else "POST"


def _room_type(value: str) -> RoomType:
    for known in ("group", "group-small", "peer-to-peer", "go"):
        if value == known:
            return known
    return "group"


def _track_kind(value: str) -> TrackKind:
    return "audio" if value == "audio" else "video" if value == "video" else "data"


def _media_kind(value: str) -> MediaKind:
    return "audio" if value == "audio" else "video"


def _container(value: str) -> Container:
    return "mka" if value == "mka" else "mkv"


def _status(value: str) -> RecordingStatus:
    for known in ("processing", "completed", "failed", "deleted"):
        if value == known:
            return known
    raise ValueError(f"unknown recording status {value!r}")


def _rules_json(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [
        {"type": r.type, "all": r.all, "publisher": r.publisher, "track": r.track, "kind": r.kind}
        for r in rules
    ]


def _rules(raw: list[dict[str, Any]]) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for item in raw:
        kind = item.get("kind")
        out.append(
            Rule(
                type="exclude" if item.get("type") == "exclude" else "include",
                all=bool(item.get("all")),
                publisher=item.get("publisher"),
                track=item.get("track"),
                kind=None if kind is None else _track_kind(str(kind)),
            )
        )
    return tuple(out)


def _room(row: asyncpg.Record) -> RoomView:
    return RoomView(
        room_sid=RoomSid(row["room_sid"]),
        account_sid=AccountSid(row["account_sid"]),
        room_name=row["room_name"],
        room_type=_room_type(row["room_type"]),
        status_callback=row["status_callback"],
        status_callback_method=_method(row["status_callback_method"]),
        rules=_rules(row["rules"]),
        ended=row["ended_at"] is not None,
    )


def _track(row: asyncpg.Record) -> TrackView:
    return TrackView(
        track_sid=TrackSid(row["track_sid"]),
        room_sid=RoomSid(row["room_sid"]),
        participant_sid=ParticipantSid(row["participant_sid"]),
        participant_identity=row["participant_identity"],
        track_name=row["track_name"],
        kind=_track_kind(row["kind"]),
        codec=row["codec"],
        janus_publisher_id=row["janus_publisher_id"],
        stream_mid=row["stream_mid"],
        published=row["published"],
    )


def _recording(row: asyncpg.Record) -> Recording:
    return Recording(
        sid=RecordingSid(row["sid"]),
        account_sid=AccountSid(row["account_sid"]),
        room_sid=RoomSid(row["room_sid"]),
        room_name=row["room_name"],
        room_type=_room_type(row["room_type"]),
        participant_sid=ParticipantSid(row["participant_sid"]),
        participant_identity=row["participant_identity"],
        source_sid=TrackSid(row["source_sid"]),
        track_name=row["track_name"],
        kind=_media_kind(row["kind"]),
        codec=row["codec"],
        container=_container(row["container"]),
        status=_status(row["status"]),
        date_created=row["date_created"],
        date_updated=row["date_updated"],
        offset_ms=row["offset_ms"],
        prefix=row["prefix"],
        status_callback=row["status_callback"],
        status_callback_method=_method(row["status_callback_method"]),
        capture_open=row["capture_open"],
        duration_s=row["duration_s"],
        size_bytes=row["size_bytes"],
        object_key=row["object_key"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        deleted_at=row["deleted_at"],
    )


@dataclass(frozen=True)
class RecordingFilter:
    """List filters (None: not filtered). ``grouping_sids`` must all match room or participant SID."""

    room_sid: RoomSid | None = None
    status: RecordingStatus | None = None
    source_sid: str | None = None
    grouping_sids: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    media_type: str | None = None


@dataclass(frozen=True)
class OwnedCapture:
    """A processing recording and who owns it (advisory-lock key), with its Janus forwarder if known."""

    recording: Recording
    owner_key: int | None
    janus_room: str | None
    janus_publisher_id: str | None
    janus_stream_id: int | None


class RecorderStore:
    """All of the recorder's tables in schema ``schema``."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "recorder") -> None:
        self.pool = pool
        self.schema = check_schema_name(schema)
        self._rooms = f"{schema}.rooms"
        self._tracks = f"{schema}.tracks"
        self._recs = f"{schema}.recordings"

    # ---- consumer side (one transaction per event) ---------------------------------------------------

    @asynccontextmanager
    async def event_transaction(
        self, consumer: str, event: Event
    ) -> AsyncIterator[asyncpg.Connection | None]:
        """A transaction that records ``event`` as processed; yields None on a redelivery (skip it)."""
        async with transaction(self.pool) as conn:
            if not await mark_processed(conn, self.schema, consumer, event.event_id):
                yield None
                return
            yield conn

    async def upsert_room(self, conn: asyncpg.Connection, room: RoomView, created_at: datetime) -> None:
        await conn.execute(
            f"INSERT INTO {self._rooms} (room_sid, account_sid, room_name, room_type, status_callback, "  # noqa: S608
            "status_callback_method, rules, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
            "ON CONFLICT (room_sid) DO UPDATE SET room_name = EXCLUDED.room_name, "
            "status_callback = EXCLUDED.status_callback, "
            "status_callback_method = EXCLUDED.status_callback_method, rules = EXCLUDED.rules",
            room.room_sid,
            room.account_sid,
            room.room_name,
            room.room_type,
            room.status_callback,
            room.status_callback_method,
            _rules_json(room.rules),
            created_at,
        )

    async def set_rules(self, conn: asyncpg.Connection, room_sid: RoomSid, rules: Sequence[Rule]) -> bool:
        status = await conn.execute(
            f"UPDATE {self._rooms} SET rules = $2 WHERE room_sid = $1",  # noqa: S608
            room_sid,
            _rules_json(rules),
        )
        return bool(status != "UPDATE 0")

    async def end_room(self, conn: asyncpg.Connection, room_sid: RoomSid, ended_at: datetime) -> None:
        await conn.execute(
            f"UPDATE {self._rooms} SET ended_at = COALESCE(ended_at, $2) WHERE room_sid = $1",  # noqa: S608
            room_sid,
            ended_at,
        )

    async def upsert_track(self, conn: asyncpg.Connection, track: TrackView) -> None:
        await conn.execute(
            f"INSERT INTO {self._tracks} (track_sid, room_sid, participant_sid, participant_identity, "  # noqa: S608
            "track_name, kind, codec, janus_publisher_id, stream_mid, published) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (track_sid) DO UPDATE SET "
            "codec = COALESCE(EXCLUDED.codec, tracks.codec), "
            "janus_publisher_id = COALESCE(EXCLUDED.janus_publisher_id, tracks.janus_publisher_id), "
            "stream_mid = COALESCE(EXCLUDED.stream_mid, tracks.stream_mid), "
            "published = EXCLUDED.published",
            track.track_sid,
            track.room_sid,
            track.participant_sid,
            track.participant_identity,
            track.track_name,
            track.kind,
            track.codec,
            track.janus_publisher_id,
            track.stream_mid,
            track.published,
        )

    async def unpublish_track(self, conn: asyncpg.Connection, track_sid: TrackSid) -> None:
        await conn.execute(
            f"UPDATE {self._tracks} SET published = false WHERE track_sid = $1",  # noqa: S608
            track_sid,
        )

    async def unpublish_participant(self, conn: asyncpg.Connection, participant_sid: ParticipantSid) -> None:
        await conn.execute(
            f"UPDATE {self._tracks} SET published = false WHERE participant_sid = $1",  # noqa: S608
            participant_sid,
        )

    # ---- reconciler side ------------------------------------------------------------------------------

    async def live_rooms(self) -> list[RoomView]:
        """Rooms whose recording set is not final yet."""
        rows = await self.pool.fetch(
            f"SELECT * FROM {self._rooms} WHERE finalized_at IS NULL ORDER BY created_at"  # noqa: S608
        )
        return [_room(r) for r in rows]

    async def tracks(self, room_sid: RoomSid) -> list[TrackView]:
        rows = await self.pool.fetch(
            f"SELECT * FROM {self._tracks} WHERE room_sid = $1 ORDER BY track_sid",  # noqa: S608
            room_sid,
        )
        return [_track(r) for r in rows]

    async def processing(self, room_sid: RoomSid | None = None) -> list[OwnedCapture]:
        """Processing recordings (of one room, or all) with their owners."""
        where = "status = 'processing'" + (" AND room_sid = $1" if room_sid is not None else "")
        args: list[object] = [room_sid] if room_sid is not None else []
        rows = await self.pool.fetch(
            f"SELECT *, owner_key AS _owner FROM {self._recs} WHERE {where} ORDER BY sid",  # noqa: S608
            *args,
        )
        return [
            OwnedCapture(
                recording=_recording(r),
                owner_key=r["owner_key"],
                janus_room=r["janus_room"],
                janus_publisher_id=r["janus_publisher_id"],
                janus_stream_id=r["janus_stream_id"],
            )
            for r in rows
        ]

    async def claim(self, rec: Recording, owner_key: int, started: Event) -> bool:
        """Insert a new open recording owned by ``owner_key`` plus RecordingStarted; False if the track
        already has an open capture (another process claimed it)."""
        async with transaction(self.pool) as conn:
            inserted = await conn.fetchval(
                f"INSERT INTO {self._recs} ({_REC_COLUMNS}, owner_key) VALUES "  # noqa: S608
                "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,"
                "$25,$26,$27) ON CONFLICT (source_sid) WHERE capture_open DO NOTHING RETURNING true",
                *_recording_values(rec),
                owner_key,
            )
            if not inserted:
                return False
            await add_event(conn, self.schema, started)
            return True

    async def set_forwarder(
        self, sid: RecordingSid, janus_room: str, publisher_id: str, stream_id: int
    ) -> None:
        await self.pool.execute(
            f"UPDATE {self._recs} SET janus_room = $2, janus_publisher_id = $3, janus_stream_id = $4 "  # noqa: S608
            "WHERE sid = $1",
            sid,
            janus_room,
            publisher_id,
            stream_id,
        )

    async def close_capture(self, sid: RecordingSid) -> None:
        """The capture is over (stopping); the track may be claimed again by a new recording."""
        await self.pool.execute(
            f"UPDATE {self._recs} SET capture_open = false WHERE sid = $1",  # noqa: S608
            sid,
        )

    async def take_over(self, sid: RecordingSid, old_owner: int | None, new_owner: int) -> Recording | None:
        """Adopt a processing recording whose owner died: close its capture; None if someone else did."""
        row = await self.pool.fetchrow(
            f"UPDATE {self._recs} SET owner_key = $3, capture_open = false "  # noqa: S608
            "WHERE sid = $1 AND status = 'processing' AND owner_key IS NOT DISTINCT FROM $2 RETURNING *",
            sid,
            old_owner,
            new_owner,
        )
        return None if row is None else _recording(row)

    async def finish(self, rec: Recording, fact: Event) -> bool:
        """Store the final state (completed/failed) of a processing recording and its event."""
        async with transaction(self.pool) as conn:
            done = await conn.fetchval(
                f"UPDATE {self._recs} SET status = $2, capture_open = false, date_updated = $3, "  # noqa: S608
                "offset_ms = $4, duration_s = $5, size_bytes = $6, object_key = $7, start_time = $8, "
                "end_time = $9 WHERE sid = $1 AND status = 'processing' RETURNING true",
                rec.sid,
                rec.status,
                rec.date_updated,
                rec.offset_ms,
                rec.duration_s,
                rec.size_bytes,
                rec.object_key,
                rec.start_time,
                rec.end_time,
            )
            if not done:
                return False
            await add_event(conn, self.schema, fact)
            return True

    async def finalize_room(self, room_sid: RoomSid, now: datetime, fact: Event) -> bool:
        """Mark an ended room's recording set final (with RoomRecordingsFinalized) once nothing is
        processing; False when not ended, still processing, or already done."""
        async with transaction(self.pool) as conn:
            done = await conn.fetchval(
                f"UPDATE {self._rooms} SET finalized_at = $2 WHERE room_sid = $1 "  # noqa: S608
                "AND finalized_at IS NULL AND ended_at IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {self._recs} WHERE room_sid = $1 AND status = 'processing') RETURNING true",
                room_sid,
                now,
            )
            if not done:
                return False
            await add_event(conn, self.schema, fact)
            return True

    async def room_recordings(self, room_sid: RoomSid) -> list[Recording]:
        rows = await self.pool.fetch(
            f"SELECT * FROM {self._recs} WHERE room_sid = $1 ORDER BY date_created, sid",  # noqa: S608
            room_sid,
        )
        return [_recording(r) for r in rows]

    # ---- API side ---------------------------------------------------------------------------------------

    async def get(self, account_sid: AccountSid, sid: RecordingSid) -> Recording | None:
        row = await self.pool.fetchrow(
            f"SELECT * FROM {self._recs} WHERE account_sid = $1 AND sid = $2",  # noqa: S608
            account_sid,
            sid,
        )
        return None if row is None else _recording(row)

    async def find(
        self,
        account_sid: AccountSid,
        filters: RecordingFilter,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Recording]:
        """Recordings of the account, oldest first, keyset-paged on (date_created, sid)."""
        w = Where("account_sid = {}", account_sid)
        w.add_if("room_sid = {}", filters.room_sid)
        w.add_if("status = {}", filters.status)
        w.add_if("source_sid = {}", filters.source_sid)
        for grouping in filters.grouping_sids:
            w.add("(room_sid = {} OR participant_sid = {})", grouping, grouping)
        w.add_if("date_created >= {}", filters.created_after)
        w.add_if("date_created < {}", filters.created_before)
        w.add_if("kind = {}", filters.media_type)
        w.after(("date_created", "sid"), after)
        rows = await self.pool.fetch(
            f"SELECT * FROM {self._recs} WHERE {w.sql} "  # noqa: S608  # fragments are constants
            f"ORDER BY date_created, sid LIMIT {w.arg(limit)}",
            *w.args,
        )
        return [_recording(r) for r in rows]

    async def mark_deleted(
        self, account_sid: AccountSid, sid: RecordingSid, now: datetime, fact: Event
    ) -> bool:
        """Status ``deleted`` (media removed by the caller), with RecordingDeleted; False if not deletable."""
        async with transaction(self.pool) as conn:
            done = await conn.fetchval(
                f"UPDATE {self._recs} SET status = 'deleted', deleted_at = $3, date_updated = $3 "  # noqa: S608
                "WHERE account_sid = $1 AND sid = $2 AND status IN ('completed', 'failed') RETURNING true",
                account_sid,
                sid,
                now,
            )
            if not done:
                return False
            await add_event(conn, self.schema, fact)
            return True

    async def settings(self, account_sid: AccountSid) -> RecordingSettings:
        row = await self.pool.fetchrow(
            f"SELECT * FROM {self.schema}.recording_settings WHERE account_sid = $1",  # noqa: S608
            account_sid,
        )
        if row is None:
            return RecordingSettings()
        return RecordingSettings(
            friendly_name=row["friendly_name"],
            aws_credentials_sid=row["aws_credentials_sid"],
            aws_s3_url=row["aws_s3_url"],
            aws_storage_enabled=row["aws_storage_enabled"],
            encryption_key_sid=row["encryption_key_sid"],
            encryption_enabled=row["encryption_enabled"],
        )

    async def save_settings(self, account_sid: AccountSid, s: RecordingSettings, now: datetime) -> None:
        await self.pool.execute(
            f"INSERT INTO {self.schema}.recording_settings (account_sid, friendly_name, "  # noqa: S608
            "aws_credentials_sid, aws_s3_url, aws_storage_enabled, encryption_key_sid, encryption_enabled, "
            "date_updated) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (account_sid) DO UPDATE SET "
            "friendly_name = EXCLUDED.friendly_name, aws_credentials_sid = EXCLUDED.aws_credentials_sid, "
            "aws_s3_url = EXCLUDED.aws_s3_url, aws_storage_enabled = EXCLUDED.aws_storage_enabled, "
            "encryption_key_sid = EXCLUDED.encryption_key_sid, "
            "encryption_enabled = EXCLUDED.encryption_enabled, date_updated = EXCLUDED.date_updated",
            account_sid,
            s.friendly_name,
            s.aws_credentials_sid,
            s.aws_s3_url,
            s.aws_storage_enabled,
            s.encryption_key_sid,
            s.encryption_enabled,
            now,
        )

    async def purge_deleted(self, before: datetime) -> int:
        """Drop the metadata of recordings deleted before ``before`` (kept 30 days)."""
        status = await self.pool.execute(
            f"DELETE FROM {self._recs} WHERE status = 'deleted' AND deleted_at < $1",  # noqa: S608
            before,
        )
        return int(status.split()[-1])


def _recording_values(rec: Recording) -> list[object]:
    return [
        rec.sid,
        rec.account_sid,
        rec.room_sid,
        rec.room_name,
        rec.room_type,
        rec.participant_sid,
        rec.participant_identity,
        rec.source_sid,
        rec.track_name,
        rec.kind,
        rec.codec,
        rec.container,
        rec.status,
        rec.date_created,
        rec.date_updated,
        rec.offset_ms,
        rec.prefix,
        rec.status_callback,
        rec.status_callback_method,
        rec.capture_open,
        rec.duration_s,
        rec.size_bytes,
        rec.object_key,
        rec.start_time,
        rec.end_time,
        rec.deleted_at,
    ]
