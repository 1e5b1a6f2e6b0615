"""Test support for database/Kafka integration tests: where the dependencies are, and throwaway schemas.

``integration_env()`` uses ``POSTGRES_DSN`` and ``KAFKA_BOOTSTRAP_SERVERS`` from the process environment when
both are set (e.g. a private throwaway stack), otherwise starts/reads the devstack via ``libs.testing``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from libs.db.pool import check_schema_name, create_pool


@functools.cache
def _devstack_env() -> dict[str, str]:
    from libs.testing.devstack import ensure_devstack  # noqa: PLC0415  # only integration tests need it

    return ensure_devstack()


def integration_env() -> dict[str, str]:
    """Connection settings for integration tests (see module docstring). The devstack check runs once."""
    if os.environ.get("POSTGRES_DSN") and os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return dict(os.environ)
    return {**_devstack_env(), **{k: v for k, v in os.environ.items() if k.startswith(("S3_", "MIXDOWN_"))}}


def unique_name(prefix: str) -> str:
    """``prefix`` + 12 random hex digits: a schema, topic or bucket name no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def temp_schema(dsn: str, prefix: str = "t_") -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A pool and a fresh schema name; the schema is dropped afterwards."""
    schema = check_schema_name(unique_name(prefix))
    pool = await create_pool(dsn, min_size=1, max_size=5)
    try:
        yield pool, schema
    finally:
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        try:
            # close waits for every connection to come back; one whose backend a test killed may never
            # be handed back by asyncpg, so the pool is terminated after a bounded wait
            await asyncio.wait_for(pool.close(), 10)
        except TimeoutError:
            pool.terminate()
