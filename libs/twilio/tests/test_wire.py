"""Errors, forms, dates, URLs and paging through a real FastAPI app."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from libs.twilio.dates import iso8601, rfc2822
from libs.twilio.errors import TwilioError, install_error_handlers, not_found
from libs.twilio.forms import Form, parse_date
from libs.twilio.paging import PageRequest, decode_token, encode_token, page_body
from libs.twilio.urls import public_base_url


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/v1/Things")
    async def create(request: Request) -> dict[str, Any]:
        form = await Form.from_request(request)
        return {
            "name": form.str("FriendlyName", 20001, 5, required=True),
            "enabled": form.bool("Enabled", 20002, True),
            "n": form.int("N", 53107, 1, 50),
            "sources": form.list("AudioSources"),
            "layout": form.json("VideoLayout", 53120),
            "fmt": form.enum("Format", ["mp4", "webm"], 20003, default="webm"),
            "cb": form.uri("StatusCallback", 53111),
        }

    @app.get("/v1/Things/{sid}")
    async def fetch(sid: str, request: Request) -> dict[str, Any]:
        raise not_found(f"/Things/{sid}")

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    @app.get("/v1/Items")
    async def items(request: Request) -> dict[str, Any]:
        page = PageRequest.from_request(request, max_page_size=100)
        start = int(page.after) if page.after is not None else 0
        rows = [{"n": i} for i in range(start, min(start + page.page_size, 7))]
        token = encode_token(start + len(rows)) if start + len(rows) < 7 else None
        base = public_base_url(request, "http://127.0.0.1:8080")
        return page_body("items", rows, request, page, token, base)

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def test_form_happy_path(client: httpx.AsyncClient) -> None:
    body = (
        "FriendlyName=abc&Enabled=FALSE&N=7&AudioSources=%2A&AudioSources=user%2A"
        "&VideoLayout=%7B%22grid%22%3A+%7B%7D%7D&StatusCallback=https%3A%2F%2Fcb.example.com%2Fx"
    )
    r = await client.post(
        "/v1/Things", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "abc",
        "enabled": False,
        "n": 7,
        "sources": ["*", "user*"],
        "layout": {"grid": {}},
        "fmt": "webm",
        "cb": "https://cb.example.com/x",
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", 20001),
        ("FriendlyName=toolong", 20001),
        ("FriendlyName=a&Enabled=yes", 20002),
        ("FriendlyName=a&N=0", 53107),
        ("FriendlyName=a&N=x", 53107),
        ("FriendlyName=a&VideoLayout=%7B", 53120),
        ("FriendlyName=a&Format=avi", 20003),
        ("FriendlyName=a&StatusCallback=ftp%3A%2F%2Fx", 53111),
        ("FriendlyName=a&StatusCallback=http%3A%2F%2F" + "a" * 1020, 53111),
    ],
)
async def test_form_errors_are_twilio_json(client: httpx.AsyncClient, body: str, code: int) -> None:
    r = await client.post(
        "/v1/Things", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == code
    assert r.json()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert r.json()["status"] == 400


async def test_not_found_unknown_route_405_and_500(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/Things/RMx")
    assert r.status_code == 404 and r.json()["code"] == 20404 and "/Things/RMx" in r.json()["message"]
    r = await client.get("/v1/Nope")
    assert r.status_code == 404 and r.json()["code"] == 20404
    r = await client.delete("/v1/Things")
    assert r.status_code == 405 and r.json()["code"] == 20004
    assert r.headers["allow"] == "POST"
    r = await client.get("/v1/boom")
    assert r.status_code == 500 and r.json()["code"] == 20500
    assert "secret" not in r.text


def test_twilio_error_json() -> None:
    err = TwilioError(401, 20003, "Authenticate")
    assert err.to_json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_dates() -> None:
    dt = datetime(2015, 7, 30, 22, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert iso8601(dt) == "2015-07-30T20:00:00Z"
    assert rfc2822(dt) == "Thu, 30 Jul 2015 20:00:00 +0000"
    with pytest.raises(ValueError):
        iso8601(datetime(2015, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05+01:00", datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05 01:00", datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05-02:30", datetime(2026, 1, 2, 5, 34, 5, tzinfo=UTC)),
    ],
)
def test_parse_date(text: str, expected: datetime) -> None:
    assert parse_date(text, "DateCreatedAfter", 20001) == expected


def test_parse_date_rejects_garbage() -> None:
    with pytest.raises(TwilioError) as info:
        parse_date("yesterday", "DateCreatedAfter", 20001)
    assert info.value.status == 400


async def test_paging_walk_repeats_filters(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/v1/Items?Status=completed&PageSize=3", headers={"x-forwarded-host": "api.example.com"}
    )
    body = r.json()
    assert [i["n"] for i in body["items"]] == [0, 1, 2]
    meta = body["meta"]
    assert meta["key"] == "items" and meta["page"] == 0 and meta["page_size"] == 3
    assert meta["first_page_url"] == "http://api.example.com/v1/Items?Status=completed&PageSize=3&Page=0"
    assert meta["url"] == meta["first_page_url"]
    assert meta["previous_page_url"] is None
    seen = [i["n"] for i in body["items"]]
    next_url = meta["next_page_url"]
    pages = 1
    while next_url:
        assert next_url.startswith("http://api.example.com/v1/Items?Status=completed&PageSize=3&Page=")
        fwd = {"x-forwarded-host": "api.example.com"}
        body = (await client.get(next_url.removeprefix("http://api.example.com"), headers=fwd)).json()
        seen += [i["n"] for i in body["items"]]
        next_url = body["meta"]["next_page_url"]
        pages += 1
    assert seen == list(range(7)) and pages == 3
    assert body["meta"]["page"] == 2


@pytest.mark.parametrize("query", ["PageSize=0", "PageSize=101", "PageSize=x", "PageToken=garbage"])
async def test_paging_errors(client: httpx.AsyncClient, query: str) -> None:
    r = await client.get(f"/v1/Items?{query}")
    assert r.status_code == 400 and r.json()["code"] == 20001


def test_token_round_trip() -> None:
    key = ["2026-01-01T00:00:00Z", "RM" + "a" * 32]
    token = encode_token(key)
    assert token.startswith("PT") and decode_token(token) == key
