"""Keyset cursors: trim_page cuts a page_size + 1 fetch and its token resumes after the last item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.twilio.errors import TwilioError
from libs.twilio.paging import PageRequest, created_cursor, decode_token, encode_token, trim_page

BASE = datetime(2026, 1, 1, tzinfo=UTC)
ITEMS = [(BASE + timedelta(seconds=i), f"HK{i}") for i in range(3)]


def _key(item: tuple[datetime, str]) -> tuple[datetime, str]:
    return item


def test_trim_page_and_created_cursor_round_trip() -> None:
    first = PageRequest(page_size=2, page=0, page_token=None, after=None)
    kept, token = trim_page(ITEMS, first, _key)
    assert kept == ITEMS[:2]
    assert token is not None
    second = PageRequest(page_size=2, page=1, page_token=token, after=decode_token(token))
    assert created_cursor(second) == ITEMS[1]
    assert trim_page(ITEMS[2:], second, _key) == (ITEMS[2:], None)
    assert created_cursor(first) is None


def test_a_foreign_token_is_a_400() -> None:
    token = encode_token({"not": "a cursor"})
    page = PageRequest(page_size=2, page=1, page_token=token, after=decode_token(token))
    with pytest.raises(TwilioError) as info:
        created_cursor(page)
    assert (info.value.status, info.value.code) == (400, 20001)
