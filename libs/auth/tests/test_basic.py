"""Basic auth: both credential forms, failures as Twilio 401 20003, caching."""

import asyncio
import base64

import pytest

from libs.auth.basic import BasicAuthenticator, Principal, parse_basic
from libs.auth.sealing import hash_secret
from libs.auth.store import Credential
from libs.events.sids import AccountSid, ApiKeySid
from libs.twilio.errors import TwilioError

ACCOUNT = AccountSid.new()
KEY = ApiKeySid.new()
SUSPENDED = AccountSid.new()


class FakeStore:
    def __init__(self) -> None:
        self.lookups = 0
        self.rows = {
            ACCOUNT: Credential(account_sid=ACCOUNT, account_status="active", secret_hash=hash_secret("tok")),
            KEY: Credential(account_sid=ACCOUNT, account_status="active", secret_hash=hash_secret("sec")),
            SUSPENDED: Credential(
                account_sid=SUSPENDED, account_status="suspended", secret_hash=hash_secret("t")
            ),
        }

    async def credential(self, sid: AccountSid | ApiKeySid) -> Credential | None:
        self.lookups += 1
        return self.rows.get(sid)


def _header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_account_and_key_forms() -> None:
    auth = BasicAuthenticator(FakeStore())
    assert await auth.authenticate(_header(ACCOUNT, "tok")) == Principal(
        account_sid=ACCOUNT, credential_sid=ACCOUNT
    )
    principal = await auth.authenticate(_header(KEY, "sec"))
    assert principal.account_sid == ACCOUNT and principal.credential_sid == KEY
    assert isinstance(principal.credential_sid, ApiKeySid)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        _header(ACCOUNT, "wrong"),
        _header(KEY, "tok"),
        _header("RM" + "0" * 32, "tok"),
        _header(AccountSid.new(), "tok"),
        _header(SUSPENDED, "t"),
    ],
)
async def test_rejections(header: str | None) -> None:
    with pytest.raises(TwilioError) as info:
        await BasicAuthenticator(FakeStore()).authenticate(header)
    assert info.value.status == 401 and info.value.code == 20003
    assert info.value.headers["WWW-Authenticate"].startswith("Basic")


async def test_success_is_cached_until_ttl() -> None:
    store, clock = FakeStore(), Clock()
    auth = BasicAuthenticator(store, cache_ttl_s=30, clock=clock)
    header = _header(ACCOUNT, "tok")
    await auth.authenticate(header)
    await auth.authenticate(header)
    assert store.lookups == 1
    clock.now += 31
    await auth.authenticate(header)
    assert store.lookups == 2
    with pytest.raises(TwilioError):
        await auth.authenticate(_header(ACCOUNT, "tok2"))


def test_parse_basic() -> None:
    assert parse_basic(_header("u", "p:with:colons")) == ("u", "p:with:colons")
    assert parse_basic("basic " + base64.b64encode(b"u:").decode()) == ("u", "")


async def test_concurrent_first_requests_share_one_check() -> None:
    store = FakeStore()
    auth = BasicAuthenticator(store)
    header = _header(KEY, "sec")
    results = await asyncio.gather(*(auth.authenticate(header) for _ in range(20)))
    assert {r.credential_sid for r in results} == {KEY}
    assert store.lookups == 1
    bad = await asyncio.gather(
        *(auth.authenticate(_header(KEY, "bad")) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, TwilioError) and r.code == 20003 for r in bad)
    assert store.lookups == 2
