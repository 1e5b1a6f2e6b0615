"""Access Tokens minted by the official helper library verify; every refusal has Twilio's code."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant
from twilio.jwt.access_token.grants import VideoGrant as TwilioVideoGrant

from libs.auth.access_token import verify_access_token
from libs.auth.errors import AccessTokenError
from libs.events.sids import AccountSid, ApiKeySid

ACCOUNT = AccountSid.new()
KEY = ApiKeySid.new()
SECRET = "s" * 32


async def lookup(sid: ApiKeySid) -> tuple[AccountSid, str] | None:
    return (ACCOUNT, SECRET) if sid == KEY else None


def _mint(
    *,
    room: str | None = "standup",
    identity: str | None = "alice",
    ttl: int = 3600,
    key: str = KEY,
    account: str = ACCOUNT,
    secret: str = SECRET,
    nbf: int | None = None,
    video: bool = True,
) -> str:
    token = AccessToken(account, key, secret, identity=identity, ttl=ttl, **({"nbf": nbf} if nbf else {}))
    token.add_grant(TwilioVideoGrant(room=room) if video else ChatGrant(service_sid="IS" + "0" * 32))
    value = token.to_jwt()
    return value if isinstance(value, str) else value.decode()


def _now() -> datetime:
    return datetime.now(UTC)


async def test_official_token_accepted() -> None:
    grant = await verify_access_token(_mint(), lookup, _now())
    assert grant.identity == "alice" and grant.room == "standup"
    assert grant.account_sid == ACCOUNT and grant.api_key_sid == KEY
    assert abs((grant.expires_at - _now()).total_seconds() - 3600) < 5


async def test_any_room_grant() -> None:
    grant = await verify_access_token(_mint(room=None), lookup, _now())
    assert grant.room is None


@pytest.mark.parametrize(
    ("token_kwargs", "at", "code"),
    [
        ({}, timedelta(hours=2), 20104),
        ({"nbf": int(time.time()) + 600}, timedelta(0), 20105),
        ({"ttl": 25 * 3600}, timedelta(0), 20157),
        ({"key": ApiKeySid.new()}, timedelta(0), 20103),
        ({"account": AccountSid.new()}, timedelta(0), 20103),
        ({"secret": "x" * 32}, timedelta(0), 20107),
        ({"identity": None}, timedelta(0), 20106),
        ({"video": False}, timedelta(0), 20106),
    ],
)
async def test_refusals(token_kwargs: dict[str, object], at: timedelta, code: int) -> None:
    with pytest.raises(AccessTokenError) as info:
        await verify_access_token(_mint(**token_kwargs), lookup, _now() + at)  # type: ignore[arg-type]
    assert info.value.code == code


async def test_malformed_and_bad_header() -> None:
    with pytest.raises(AccessTokenError) as info:
        await verify_access_token("not-a-jwt", lookup, _now())
    assert info.value.code == 20101
    none_alg = jwt.encode({"iss": KEY, "sub": ACCOUNT}, "", algorithm="none")
    with pytest.raises(AccessTokenError) as info:
        await verify_access_token(none_alg, lookup, _now())
    assert info.value.code == 20102
    good = _mint()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS512"}).encode()).decode().rstrip("=")
    with pytest.raises(AccessTokenError) as info:
        await verify_access_token(header + good[good.index(".") :], lookup, _now())
    assert info.value.code == 20102
