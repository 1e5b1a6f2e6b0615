"""Schema migrations: ``NNNN_name.sql`` files applied in order, once, under an advisory lock.

Each schema gets the platform tables first (``schema_migrations``, ``outbox``,
``processed_events``). Migration files run with ``search_path`` set to the schema (then ``public``),
so they may use unqualified names.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg

from libs.db.errors import MigrationError
from libs.db.pool import DbConnection, check_schema_name

logger = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_[A-Za-z0-9_\-]+\.sql$")


def _platform_ddl(schema: str) -> str:
    return f"""
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    name        text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    topic         text NOT NULL,
    key           text NOT NULL,
    event_type    text NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON {schema}.outbox (id) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS {schema}.processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
"""


async def ensure_platform_tables(conn: DbConnection, schema: str) -> None:
    """Create the schema and its ``schema_migrations``, ``outbox`` and ``processed_events`` (idempotent)."""
    await conn.execute(_platform_ddl(check_schema_name(schema)))


def migration_files(migrations_dir: Path) -> list[Path]:
    """The ``NNNN_*.sql`` files of ``migrations_dir`` in order. Raises MigrationError on duplicate numbers."""
    if not migrations_dir.is_dir():
        return []
    files = sorted(p for p in migrations_dir.iterdir() if p.is_file() and _FILE.match(p.name))
    numbers = [p.name[:4] for p in files]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise MigrationError(f"duplicate migration numbers in {migrations_dir}: {', '.join(duplicates)}")
    return files


async def migrate(pool: asyncpg.Pool, schema: str, migrations_dir: Path | None) -> list[str]:
    """Apply the pending migrations of ``schema``; returns the names applied now (empty when up to date).

    All pending files run in one transaction holding ``pg_advisory_xact_lock`` for the schema, so concurrent
    starters wait and then find nothing to do. A failing file rolls everything back (MigrationError).
    """
    check_schema_name(schema)
    files = migration_files(migrations_dir) if migrations_dir is not None else []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"mixdown.migrate.{schema}")
        await ensure_platform_tables(conn, schema)
        done = {r["name"] for r in await conn.fetch(f"SELECT name FROM {schema}.schema_migrations")}  # noqa: S608
        applied: list[str] = []
        await conn.execute(f"SET LOCAL search_path TO {schema}, public")
        for path in files:
            if path.name in done:
                continue
            try:
                await conn.execute(path.read_text(encoding="utf-8"))
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {schema}/{path.name} failed: {exc}") from exc
            await conn.execute(f"INSERT INTO {schema}.schema_migrations (name) VALUES ($1)", path.name)  # noqa: S608
            applied.append(path.name)
        if applied:
            logger.info("migrations applied", extra={"schema": schema, "migrations": applied})
        return applied
