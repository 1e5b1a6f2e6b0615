"""The hook service's event handlers: compose every finished room with the account's enabled hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg

from libs.db.outbox import add_event
from libs.db.pool import transaction
from libs.db.processed import mark_processed
from libs.events.base import Event
from libs.events.models import CompositionRequested, RoomRecordingsFinalized
from services.hook.domain import plan_room_composition
from services.hook.store import HookStore

logger = logging.getLogger(__name__)
CONSUMER = "hook"


async def on_room_recordings_finalized(
    event: RoomRecordingsFinalized,
    *,
    pool: asyncpg.Pool,
    hooks: HookStore,
    schema: str,
    now: Callable[[], datetime],
) -> None:
    """One composition request (or hook-failed fact) per enabled hook; never twice for a hook and room."""
    enabled = await hooks.enabled_hooks(event.account_sid)
    planned = [
        plan_room_composition(
            hook,
            room_sid=event.room_sid,
            room_name=event.room_name,
            recording_sids=event.completed_recording_sids,
            now=now(),
        )
        for hook in enabled
    ]
    async with transaction(pool) as conn:
        if not await mark_processed(conn, schema, CONSUMER, event.event_id):
            return  # redelivery: already handled
        for hook, fact in zip(enabled, planned, strict=True):
            requested = isinstance(fact, CompositionRequested)
            inserted = await conn.fetchval(
                f"INSERT INTO {schema}.hook_runs "  # noqa: S608  # schema name is ours
                "(hook_sid, room_sid, account_sid, composition_sid, outcome, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
                hook.sid,
                event.room_sid,
                event.account_sid,
                fact.composition_sid,
                "requested" if requested else "failed",
                fact.occurred_at,
            )
            if not inserted:
                continue  # this hook already acted on this room
            await add_event(conn, schema, fact)
            logger.info(
                "hook acted on finished room",
                extra={"hook_sid": hook.sid, "room_sid": event.room_sid, "requested": requested},
            )


async def handle(
    event: Event, *, pool: asyncpg.Pool, hooks: HookStore, schema: str, now: Callable[[], datetime]
) -> None:
    """Dispatch one consumed event; the hook service cares only about finished rooms."""
    if isinstance(event, RoomRecordingsFinalized):
        await on_room_recordings_finalized(event, pool=pool, hooks=hooks, schema=schema, now=now)
