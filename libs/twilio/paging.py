"""Twilio list paging: ``PageSize``/``Page``/``PageToken`` in, ``meta`` with absolute URLs out.

Tokens are keyset cursors: ``"PT"`` + urlsafe base64 of the JSON sort key of the last item returned.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request

from libs.twilio.errors import bad_request

_PAGING = ("PageSize", "Page", "PageToken")
T = TypeVar("T")


def encode_token(key: Any) -> str:
    """An opaque cursor for the JSON-serializable sort ``key`` (e.g. ``[date_created_iso, sid]``)."""
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return "PT" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """The sort key inside ``token``. Raises TwilioError 400 / 20001 when it is not one of ours."""
    if not token.startswith("PT"):
        raise bad_request(20001, "Invalid PageToken")
    body = token[2:]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(20001, "Invalid PageToken") from exc


@dataclass(frozen=True)
class PageRequest:
    """What the client asked for. ``after`` is the decoded cursor (None on the first page)."""

    page_size: int
    page: int
    page_token: str | None
    after: Any

    @classmethod
    def from_request(cls, request: Request, *, max_page_size: int, default: int = 50) -> PageRequest:
        """Read the paging parameters; PageSize outside 1..max_page_size → TwilioError 400 / 20001."""
        params = request.query_params
        raw_size = params.get("PageSize")
        if raw_size is None or raw_size == "":
            size = min(default, max_page_size)
        else:
            try:
                size = int(raw_size)
            except ValueError as exc:
                raise bad_request(20001, "PageSize must be an integer") from exc
            if not 1 <= size <= max_page_size:
                raise bad_request(20001, f"PageSize must be between 1 and {max_page_size}")
        raw_page = params.get("Page") or "0"
        try:
            page = max(int(raw_page), 0)
        except ValueError as exc:
            raise bad_request(20001, "Page must be an integer") from exc
        token = params.get("PageToken") or None
        after = decode_token(token) if token else None
        # Page is informational; without a cursor we are on the first page whatever it says.
        return cls(page_size=size, page=page if token else 0, page_token=token, after=after)


def _filters(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k not in _PAGING]


def page_url(base_url: str, request: Request, extra: list[tuple[str, str]]) -> str:
    """``base_url`` + the request path + the active filters + ``extra`` paging parameters."""
    query = urlencode(_filters(request) + extra)
    return f"{base_url.rstrip('/')}{request.url.path}?{query}"


def page_body(
    key: str,
    items: list[dict[str, Any]],
    request: Request,
    page: PageRequest,
    next_token: str | None,
    base_url: str,
) -> dict[str, Any]:
    """The list response: ``{key: items, "meta": {...}}`` with absolute URLs repeating the filters.

    ``next_token`` is the cursor after the last item, or None on the last page. ``previous_page_url`` is
    always null (cursors only go forward; Twilio clients only follow ``next_page_url``).
    """
    size = str(page.page_size)
    current = [("PageSize", size), ("Page", str(page.page))]
    if page.page_token:
        current.append(("PageToken", page.page_token))
    next_url = None
    if next_token is not None:
        next_url = page_url(
            base_url, request, [("PageSize", size), ("Page", str(page.page + 1)), ("PageToken", next_token)]
        )
    return {
        key: items,
        "meta": {
            "page": page.page,
            "page_size": page.page_size,
            "first_page_url": page_url(base_url, request, [("PageSize", size), ("Page", "0")]),
            "previous_page_url": None,
            "url": page_url(base_url, request, current),
            "next_page_url": next_url,
            "key": key,
        },
    }


def created_cursor(page: PageRequest) -> tuple[datetime, str] | None:
    """The ``(date_created, sid)`` cursor of a page token made by ``trim_page`` (None on the first page).

    Raises TwilioError 400 / 20001 for a token that is not such a cursor."""
    if page.after is None:
        return None
    try:
        return datetime.fromisoformat(page.after[0]), str(page.after[1])
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise bad_request(20001, "Invalid PageToken") from exc


def trim_page(
    items: list[T], page: PageRequest, key: Callable[[T], tuple[datetime, str]]
) -> tuple[list[T], str | None]:
    """Cut a ``page_size + 1`` fetch to the page; the token continues after its last item (None: last)."""
    if len(items) <= page.page_size:
        return items, None
    kept = items[: page.page_size]
    created, sid = key(kept[-1])
    return kept, encode_token([created.isoformat(), sid])
