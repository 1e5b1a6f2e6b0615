"""One attempt: signature accepted by twilio's RequestValidator, pinned address, headers, failures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from libs.twilio.signature import compute_signature
from services.notifier.delivery import USER_AGENT, CallbackRequest, CallbackSender, prepare
from services.notifier.targets import TargetPolicy

TOKEN = "0123456789abcdef0123456789abcdef"
PARAMS = {
    "AccountSid": "AC" + "a" * 32,
    "RoomSid": "RM" + "b" * 32,
    "StatusCallbackEvent": "room-created",
    "RoomName": "daily stand-up & more/ünïcode",
    "Timestamp": "2026-01-01T00:00:00.000Z",
}


async def _resolve(host: str, port: int) -> Sequence[str]:
    answers = {"hooks.example.com": ["93.184.216.34", "93.184.216.35"]}
    if host not in answers:
        raise OSError("Name or service not known")
    return answers[host]


def _sender(handler: Callable[[httpx.Request], httpx.Response]) -> CallbackSender:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False)
    return CallbackSender(policy=TargetPolicy(), sign=compute_signature, resolver=_resolve, client=client)


def _seen_url(request: httpx.Request) -> str:
    """The URL as a receiver behind the original host name reconstructs it."""
    scheme = request.url.scheme
    return f"{scheme}://{request.headers['host']}{request.url.raw_path.decode()}"


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/cb?tenant=7&x=a%20b", "http://hooks.example.com:8080/"]
)
async def test_post_signature_validates_with_twilio_library(url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sender = _sender(handler)
    result = await sender.send(CallbackRequest(url, "POST", PARAMS, "ev-1"), TOKEN)
    assert result.status == 204
    assert result.error is None
    request = seen[0]
    assert request.method == "POST"
    assert request.url.host == "93.184.216.34"  # pinned to the checked address
    assert request.headers["host"] == url.split("/")[2]
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["i-twilio-idempotency-token"] == "ev-1"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = dict(parse_qsl(request.content.decode()))
    assert form == PARAMS
    validator = RequestValidator(TOKEN)
    assert validator.validate(_seen_url(request), form, request.headers["x-twilio-signature"])
    assert not RequestValidator("wrong" + TOKEN[5:]).validate(
        _seen_url(request), form, request.headers["x-twilio-signature"]
    )
    if url.startswith("https"):
        assert request.extensions["sni_hostname"] == "hooks.example.com"
    await sender.aclose()


async def test_get_puts_params_in_query_and_signs_full_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    sender = _sender(handler)
    result = await sender.send(
        CallbackRequest("https://hooks.example.com/cb?tenant=7", "GET", PARAMS, "ev-2"), TOKEN
    )
    assert result.status == 200
    request = seen[0]
    assert request.method == "GET"
    assert request.content == b""
    query = dict(parse_qsl(request.url.query.decode()))
    assert query == {"tenant": "7", **PARAMS}
    assert RequestValidator(TOKEN).validate(_seen_url(request), {}, request.headers["x-twilio-signature"])


def test_prepare_drops_fragment_and_keeps_query() -> None:
    prepared = prepare(CallbackRequest("https://h.example/a/b?q=1#frag", "POST", {"A": "1"}, "t"))
    assert prepared.url == "https://h.example/a/b?q=1"
    assert prepared.form == (("A", "1"),)


async def test_error_statuses_and_retry_after_are_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "17"})

    result = await _sender(handler).send(
        CallbackRequest("https://hooks.example.com/", "POST", PARAMS, "t"), TOKEN
    )
    assert result.status == 429
    assert result.retry_after == "17"
    assert result.error == "http status 429"


async def test_connect_error_falls_back_to_next_checked_address() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.host == "93.184.216.34":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    result = await _sender(handler).send(
        CallbackRequest("https://hooks.example.com/", "POST", PARAMS, "t"), TOKEN
    )
    assert result.status == 200
    assert hosts == ["93.184.216.34", "93.184.216.35"]


async def test_read_timeout_is_reported_without_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    result = await _sender(handler).send(
        CallbackRequest("https://hooks.example.com/", "POST", PARAMS, "t"), TOKEN
    )
    assert result.status is None
    assert result.error == "timeout"
    assert not result.refused


async def test_refused_target_sends_nothing() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    result = await _sender(handler).send(CallbackRequest("http://127.0.0.1:9/cb", "POST", PARAMS, "t"), TOKEN)
    assert result.refused
    assert result.error is not None and "loopback" in result.error
    assert calls == []


async def test_dns_failure_is_retryable_not_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    result = await _sender(handler).send(
        CallbackRequest("https://unknown.example/", "POST", PARAMS, "t"), TOKEN
    )
    assert result.status is None
    assert result.error == "host does not resolve"
    assert not result.refused
