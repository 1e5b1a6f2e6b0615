"""The public base URL of a request: the edge's X-Forwarded-Proto/Host win over the configured default."""

from __future__ import annotations

from starlette.requests import Request


def _first(value: str | None) -> str | None:
    if not value:
        return None
    first = value.split(",")[0].strip()
    return first or None


def public_base_url(request: Request, default: str) -> str:
    """``scheme://host[:port]`` without a trailing slash, e.g. ``http://127.0.0.1:8080``."""
    host = _first(request.headers.get("x-forwarded-host"))
    if host is None:
        return default.rstrip("/")
    proto = _first(request.headers.get("x-forwarded-proto"))
    if proto not in ("http", "https"):
        proto = default.split("://", 1)[0] if "://" in default else "http"
    return f"{proto}://{host}"
