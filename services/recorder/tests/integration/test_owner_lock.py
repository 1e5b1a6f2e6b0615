"""The recorder's ownership lock survives losing its Postgres connection (as when Postgres restarts)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from libs.db.testing import integration_env, temp_schema
from services.recorder.sessions import OwnerLock

pytestmark = pytest.mark.integration


async def _held(pool: asyncpg.Pool, key: int) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = $1",
            key,
        )
    )


async def test_the_lock_is_retaken_after_its_connection_dies() -> None:
    env = integration_env()
    async with temp_schema(env["POSTGRES_DSN"], "t_owner_") as (pool, _schema):
        lock = OwnerLock(pool)
        await lock.acquire()
        assert await _held(pool, lock.key)
        killed = await pool.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND ((classid::bigint << 32) | objid::bigint) = $1",
            lock.key,
        )
        assert killed is True
        for _ in range(100):  # termination is asynchronous: wait until the lock is gone
            if not await _held(pool, lock.key):
                break
            await asyncio.sleep(0.05)
        assert not await _held(pool, lock.key)
        for _ in range(3):  # the first call may still see the dying connection as open
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await lock.alive(lock.key + 1)  # the broken connection fails once, as in production
            await lock.ensure()
        assert await _held(pool, lock.key)
        assert await lock.alive(lock.key + 1) is False  # a free key is not held by anyone
        await lock.release()
