"""The hook service's SQL: the ``hook.composition_hooks`` table. Every query is scoped to one account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from libs.composition.spec import CallbackMethod, Format, RequestError
from libs.db.query import Where
from libs.events.sids import AccountSid, HookSid
from services.hook.domain import Hook, HookDefinition

_COLUMNS = (
    "sid, account_sid, friendly_name, enabled, video_layout, audio_sources, audio_sources_excluded, "
    "resolution, format, trim, status_callback, status_callback_method, date_created, date_updated"
)


@dataclass(frozen=True)
class HookFilter:
    """List filters; None means not filtered. ``friendly_name_pattern`` is an ILIKE pattern."""

    enabled: bool | None = None
    friendly_name_pattern: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _method(value: str) -> CallbackMethod:
    return "GET" if value == "GET" else "POST"


def _hook(row: asyncpg.Record) -> Hook:
    fmt: Format = "mp4" if row["format"] == "mp4" else "webm"
    return Hook(
        sid=HookSid(row["sid"]),
        account_sid=AccountSid(row["account_sid"]),
        definition=HookDefinition(
            friendly_name=row["friendly_name"],
            enabled=row["enabled"],
            video_layout=row["video_layout"],
            audio_sources=tuple(row["audio_sources"]),
            audio_sources_excluded=tuple(row["audio_sources_excluded"]),
            resolution=row["resolution"],
            format=fmt,
            trim=row["trim"],
            status_callback=row["status_callback"],
            status_callback_method=_method(row["status_callback_method"]),
        ),
        date_created=row["date_created"],
        date_updated=row["date_updated"],
    )


def _duplicate(name: str) -> RequestError:
    return RequestError(20001, f"A CompositionHook with FriendlyName '{name}' already exists", status=409)


class HookStore:
    """Composition hooks of every account, in schema ``schema`` (``hook`` in production)."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "hook") -> None:
        self._pool = pool
        self._table = f"{schema}.composition_hooks"

    async def create(self, account_sid: AccountSid, definition: HookDefinition, now: datetime) -> Hook:
        """Insert a new hook. Raises RequestError (409) when the FriendlyName is taken in the account."""
        d = definition
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO {self._table} ({_COLUMNS}) "  # noqa: S608  # table name is ours
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,NULL) RETURNING *",
                HookSid.new(),
                account_sid,
                d.friendly_name,
                d.enabled,
                d.video_layout,
                list(d.audio_sources),
                list(d.audio_sources_excluded),
                d.resolution,
                d.format,
                d.trim,
                d.status_callback,
                d.status_callback_method,
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise _duplicate(d.friendly_name) from exc
        assert row is not None  # noqa: S101  # INSERT … RETURNING always returns the row
        return _hook(row)

    async def get(self, account_sid: AccountSid, sid: HookSid) -> Hook | None:
        row = await self._pool.fetchrow(
            f"SELECT * FROM {self._table} WHERE account_sid = $1 AND sid = $2",  # noqa: S608
            account_sid,
            sid,
        )
        return None if row is None else _hook(row)

    async def replace(
        self, account_sid: AccountSid, sid: HookSid, definition: HookDefinition, now: datetime
    ) -> Hook | None:
        """Replace the whole definition (Twilio's update semantics); None when there is no such hook."""
        d = definition
        try:
            row = await self._pool.fetchrow(
                f"UPDATE {self._table} SET friendly_name=$3, enabled=$4, video_layout=$5, "  # noqa: S608
                "audio_sources=$6, audio_sources_excluded=$7, resolution=$8, format=$9, trim=$10, "
                "status_callback=$11, status_callback_method=$12, date_updated=$13 "
                "WHERE account_sid=$1 AND sid=$2 RETURNING *",
                account_sid,
                sid,
                d.friendly_name,
                d.enabled,
                d.video_layout,
                list(d.audio_sources),
                list(d.audio_sources_excluded),
                d.resolution,
                d.format,
                d.trim,
                d.status_callback,
                d.status_callback_method,
                now,
            )
        except asyncpg.UniqueViolationError as exc:
            raise _duplicate(d.friendly_name) from exc
        return None if row is None else _hook(row)

    async def delete(self, account_sid: AccountSid, sid: HookSid) -> bool:
        status = await self._pool.execute(
            f"DELETE FROM {self._table} WHERE account_sid = $1 AND sid = $2",  # noqa: S608
            account_sid,
            sid,
        )
        return bool(status.endswith(" 1"))

    async def find(
        self,
        account_sid: AccountSid,
        filters: HookFilter,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Hook]:
        """Hooks in (date_created, sid) order, strictly after the ``after`` cursor, at most ``limit``."""
        where = Where("account_sid = {}", account_sid)
        where.add_if("enabled = {}", filters.enabled)
        where.add_if("friendly_name ILIKE {}", filters.friendly_name_pattern)
        where.add_if("date_created >= {}", filters.created_after)
        where.add_if("date_created < {}", filters.created_before)
        where.after(("date_created", "sid"), after)
        query = (
            f"SELECT * FROM {self._table} WHERE {where.sql} "  # noqa: S608  # fragments are constants
            f"ORDER BY date_created, sid LIMIT {where.arg(limit)}"
        )
        return [_hook(r) for r in await self._pool.fetch(query, *where.args)]

    async def enabled_hooks(self, account_sid: AccountSid) -> list[Hook]:
        """Every enabled hook of the account (what a completed room is composed with)."""
        rows = await self._pool.fetch(
            f"SELECT * FROM {self._table} WHERE account_sid = $1 AND enabled ORDER BY date_created, sid",  # noqa: S608
            account_sid,
        )
        return [_hook(r) for r in rows]
