"""The timer loop: applies passed room deadlines (unused/empty timeouts, 24 h limit, participant limit).

Deadlines are stored with each room (`rooms.next_deadline`), so nothing is lost across restarts: every
process polls for due rooms, claims them with `FOR UPDATE SKIP LOCKED` and lets `RoomService.run_due`
apply `lifecycle.advance`, which also catches up on deadlines that passed while no process was running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.room.service import RoomService

logger = logging.getLogger(__name__)


async def run_timers(service: RoomService, interval: float, stop: asyncio.Event | None = None) -> None:
    """Poll every `interval` seconds until cancelled (or `stop` is set); drains due rooms in batches."""
    while stop is None or not stop.is_set():
        try:
            while await service.run_due() > 0:
                pass
        except Exception:  # the DB may be briefly away; the next tick retries
            logger.exception("room timer tick failed")
        if stop is None:
            await asyncio.sleep(interval)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
