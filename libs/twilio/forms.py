"""Typed access to Twilio request parameters (form-encoded body or query string).

Every getter raises ``TwilioError`` 400 with the caller's Twilio error code when a value is malformed, so each
API can report Twilio's own code (e.g. 53111 for a bad StatusCallback). Absent parameters give ``None`` or the
default unless ``required=True``.
"""

from __future__ import annotations

import builtins
import json as jsonlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from libs.twilio.errors import TwilioError, bad_request

_TRUE = "true"
_FALSE = "false"


class Form:
    """An ordered multi-dict of request parameters."""

    def __init__(self, items: Iterable[tuple[builtins.str, builtins.str]]) -> None:
        self._items: builtins.list[tuple[builtins.str, builtins.str]] = builtins.list(items)

    @classmethod
    async def from_request(cls, request: Request) -> Form:
        """Parse the body (``application/x-www-form-urlencoded``, or multipart). Empty body → empty form."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            form = await request.form()
            return cls((k, v) for k, v in form.multi_items() if isinstance(v, builtins.str))
        body = await request.body()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad_request(20001, "Request body is not valid UTF-8") from exc
        return cls(parse_qsl(text, keep_blank_values=True))

    @classmethod
    def from_query(cls, request: Request) -> Form:
        """The query string's parameters."""
        return cls(request.query_params.multi_items())

    # ------------------------------------------------------------------ raw access

    def __contains__(self, name: object) -> builtins.bool:
        return any(k == name for k, _ in self._items)

    def names(self) -> builtins.list[builtins.str]:
        """Parameter names in first-seen order, without repeats."""
        return builtins.list(dict.fromkeys(k for k, _ in self._items))

    def items(self) -> builtins.list[tuple[builtins.str, builtins.str]]:
        return builtins.list(self._items)

    def raw(self, name: builtins.str) -> builtins.str | None:
        """The last value of ``name`` (Twilio takes the last one for scalar parameters)."""
        found = None
        for key, value in self._items:
            if key == name:
                found = value
        return found

    def _missing(self, name: builtins.str, code: builtins.int, required: builtins.bool) -> None:
        if required:
            raise bad_request(code, f"Missing required parameter {name} in the post body")

    # ------------------------------------------------------------------ typed getters

    def str(
        self,
        name: builtins.str,
        code: builtins.int,
        max_len: builtins.int | None = None,
        *,
        required: builtins.bool = False,
        default: builtins.str | None = None,
    ) -> builtins.str | None:
        """A text value; longer than ``max_len`` characters → 400 ``code``."""
        value = self.raw(name)
        if value is None:
            self._missing(name, code, required)
            return default
        if max_len is not None and len(value) > max_len:
            raise bad_request(code, f"{name} must be at most {max_len} characters")
        return value

    def bool(self, name: builtins.str, code: builtins.int, default: builtins.bool) -> builtins.bool:
        """``true``/``false`` in any case; anything else → 400 ``code``."""
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered == _TRUE:
            return True
        if lowered == _FALSE:
            return False
        raise bad_request(code, f"{name} must be true or false")

    def int(
        self,
        name: builtins.str,
        code: builtins.int,
        min: builtins.int | None = None,  # noqa: A002  # Twilio-style getter names
        max: builtins.int | None = None,  # noqa: A002
        *,
        default: builtins.int | None = None,
        required: builtins.bool = False,
    ) -> builtins.int | None:
        """A base-10 integer within [min, max] (inclusive)."""
        value = self.raw(name)
        if value is None:
            self._missing(name, code, required)
            return default
        try:
            number = builtins.int(value.strip(), 10)
        except ValueError as exc:
            raise bad_request(code, f"{name} must be an integer") from exc
        if (min is not None and number < min) or (max is not None and number > max):
            raise bad_request(code, f"{name} must be between {min} and {max}")
        return number

    def list(self, name: builtins.str) -> builtins.list[builtins.str]:
        """Every value of a repeated key (``A=1&A=2``); a single value is a one-element list."""
        return [v for k, v in self._items if k == name]

    def json(self, name: builtins.str, code: builtins.int, *, required: builtins.bool = False) -> Any:
        """The parsed JSON document carried as the form value (None when absent)."""
        value = self.raw(name)
        if value is None:
            self._missing(name, code, required)
            return None
        try:
            return jsonlib.loads(value)
        except ValueError as exc:
            raise bad_request(code, f"{name} is not valid JSON") from exc

    def enum(
        self,
        name: builtins.str,
        values: Sequence[builtins.str],
        code: builtins.int,
        *,
        default: builtins.str | None = None,
        required: builtins.bool = False,
        case_insensitive: builtins.bool = False,
    ) -> builtins.str | None:
        """One of ``values`` (returned in the spelling of ``values``)."""
        value = self.raw(name)
        if value is None:
            self._missing(name, code, required)
            return default
        for allowed in values:
            if value == allowed or (case_insensitive and value.lower() == allowed.lower()):
                return allowed
        raise bad_request(code, f"{name} must be one of {', '.join(values)}")

    def uri(
        self,
        name: builtins.str,
        code: builtins.int,
        max_len: builtins.int = 1024,
        *,
        required: builtins.bool = False,
    ) -> builtins.str | None:
        """An absolute http(s) URL with a host. ``max_len`` characters or longer → 400 (Twilio 53111 rule).

        An empty value counts as absent (Twilio clients send ``StatusCallback=`` to clear it).
        """
        value = self.raw(name)
        if value is None or value == "":
            self._missing(name, code, required)
            return None
        if len(value) >= max_len:
            raise bad_request(code, f"{name} must be shorter than {max_len} characters")
        parts = urlsplit(value)
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in value)
        ):
            raise bad_request(code, f"{name} is not a valid URL")
        return value

    def date(self, name: builtins.str, code: builtins.int) -> datetime | None:
        """A date or datetime: ``YYYY-MM-DD`` (midnight UTC), ``…THH:MM:SSZ``, or with a ±hh:mm offset.

        The result is tz-aware UTC; a datetime without zone is taken as UTC.
        """
        value = self.raw(name)
        if value is None:
            return None
        return parse_date(value, name, code)


def parse_date(value: builtins.str, name: builtins.str, code: builtins.int) -> datetime:
    """Parse a Twilio date filter value; see ``Form.date``. Raises TwilioError 400 ``code``."""
    text = value.strip().replace(" ", "+")  # '+' in a query string arrives as a space
    try:
        parsed = datetime.fromisoformat(text)  # YYYY-MM-DD gives midnight, made UTC below
    except ValueError as exc:
        raise bad_request(code, f"{name} is not a valid date") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


__all__ = ["Form", "TwilioError", "parse_date"]
