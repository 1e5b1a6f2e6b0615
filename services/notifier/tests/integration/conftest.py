"""Fixtures for notifier integration tests: the devstack's Postgres/Kafka, a uuid-named schema per test.

For a run without the devstack, set NOTIFIER_IT_POSTGRES_DSN (and NOTIFIER_IT_KAFKA for the Kafka tests).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from libs.db.migrate import migrate
from libs.db.pool import create_pool
from libs.testing.devstack import ensure_devstack

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """POSTGRES_DSN and KAFKA_BOOTSTRAP_SERVERS of the stack the tests run against."""
    dsn = os.environ.get("NOTIFIER_IT_POSTGRES_DSN")
    if dsn:
        return {
            "POSTGRES_DSN": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("NOTIFIER_IT_KAFKA", "127.0.0.1:9092"),
        }
    env = ensure_devstack()
    env.setdefault("POSTGRES_DSN", "postgresql://mixdown:mixdown@127.0.0.1:5433/mixdown")
    env.setdefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    return env


@pytest.fixture
def schema() -> str:
    return "notifier_it_" + uuid.uuid4().hex[:12]


@pytest.fixture
async def pool(stack_env: dict[str, str], schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated schema (dropped afterwards)."""
    pool = await create_pool(stack_env["POSTGRES_DSN"], min_size=1, max_size=10)
    try:
        await migrate(pool, schema, MIGRATIONS)
        yield pool
    finally:
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()
