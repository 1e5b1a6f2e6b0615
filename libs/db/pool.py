"""asyncpg pools with JSON codecs, and the transaction context manager every store uses."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

DbConnection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""A plain or pooled connection: every libs.db function taking a connection accepts both."""

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if it is a safe unquoted identifier ([a-z0-9_]), else ValueError.

    Schema names are interpolated into SQL, so only this shape is accepted.
    """
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


async def init_connection(conn: DbConnection) -> None:
    """Register JSON/JSONB codecs: Python objects in, Python objects out."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb to Python values. Raises OSError/asyncpg errors if down."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=init_connection)
    if pool is None:  # pragma: no cover  # asyncpg only returns None when not awaited
        raise RuntimeError("asyncpg.create_pool returned None")
    return pool


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside one transaction: committed on exit, rolled back on error."""
    async with pool.acquire() as conn, conn.transaction():
        # The pool proxy forwards every Connection method; typing it as Connection keeps callers simple.
        yield cast("asyncpg.Connection[asyncpg.Record]", conn)
