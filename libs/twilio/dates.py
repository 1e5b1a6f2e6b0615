"""Dates on the wire: ISO 8601 UTC with a literal Z and no fraction; RFC 2822 for the 2010-style API."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime


def utcnow() -> datetime:
    """The current time, tz-aware UTC."""
    return datetime.now(UTC)


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: attach a timezone before formatting")
    return dt.astimezone(UTC)


def iso8601(dt: datetime) -> str:
    """``2015-07-30T20:00:00Z``. Fractions are truncated. Raises ValueError for naive datetimes."""
    return _as_utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso8601_or_none(dt: datetime | None) -> str | None:
    """``iso8601`` that passes None through (never-set dates are JSON null)."""
    return None if dt is None else iso8601(dt)


def rfc2822(dt: datetime) -> str:
    """``Thu, 30 Jul 2015 20:00:00 +0000`` (locale-independent)."""
    return format_datetime(_as_utc(dt).replace(microsecond=0))
