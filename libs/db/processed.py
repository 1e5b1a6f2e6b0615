"""Consumer-side idempotency: remember which events a consumer already applied."""

from __future__ import annotations

from uuid import UUID

from libs.db.pool import DbConnection, check_schema_name


async def mark_processed(conn: DbConnection, schema: str, consumer: str, event_id: UUID) -> bool:
    """Record ``event_id`` for ``consumer``; False when it was already recorded (a redelivery).

    Call it inside the transaction that applies the event's effects, so both commit or neither does.
    """
    status = await conn.execute(
        f"INSERT INTO {check_schema_name(schema)}.processed_events (consumer, event_id) "  # noqa: S608
        "VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        event_id,
    )
    return bool(status == "INSERT 0 1")
