"""IdentityStore against real PostgreSQL (the identity schema is shared, so every test makes its own rows)."""

import base64
import os
from collections.abc import AsyncIterator

import asyncpg
import pytest

from libs.auth.basic import BasicAuthenticator
from libs.auth.errors import UnknownAccount
from libs.auth.store import IdentityStore, migrate_identity
from libs.db.pool import create_pool
from libs.db.testing import integration_env
from libs.events.sids import AccountSid
from libs.twilio.errors import TwilioError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MASTER = os.urandom(32)


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(integration_env()["POSTGRES_DSN"])
    await migrate_identity(pool)
    yield pool
    await pool.close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_accounts_keys_and_secrets(pool: asyncpg.Pool) -> None:
    store = IdentityStore(pool, MASTER)
    account, token = await store.create_account("Test")
    assert len(token) == 32 and await store.auth_token(account) == token
    key, secret = await store.create_api_key(account, "k1")
    assert len(secret) == 32 and await store.api_key(key) == (account, secret)
    row = await pool.fetchrow("SELECT * FROM identity.accounts WHERE sid = $1", account)
    assert row is not None and token not in str(dict(row))
    key_row = await pool.fetchrow("SELECT * FROM identity.api_keys WHERE sid = $1", key)
    assert key_row is not None and secret not in str(dict(key_row))

    fetched = await store.get_account(account)
    assert (
        fetched is not None and fetched.friendly_name == "Test" and fetched.settings["ad_hoc_rooms_enabled"]
    )
    await store.set_account_setting(account, "ad_hoc_rooms_enabled", False)
    fetched = await store.get_account(account)
    assert fetched is not None and fetched.settings["ad_hoc_rooms_enabled"] is False
    assert [k.sid for k in await store.list_api_keys(account)] == [key]
    assert account in [a.sid for a in await store.list_accounts()]

    with pytest.raises(UnknownAccount):
        await store.create_api_key(AccountSid.new(), "nope")
    assert await store.auth_token(AccountSid.new()) is None

    # A store with another master key cannot read the secrets.
    with pytest.raises(Exception, match="unseal"):
        await IdentityStore(pool, os.urandom(32)).auth_token(account)

    auth = BasicAuthenticator(store)
    assert (await auth.authenticate(_basic(account, token))).account_sid == account
    assert (await auth.authenticate(_basic(key, secret))).credential_sid == key
    with pytest.raises(TwilioError):
        await auth.authenticate(_basic(key, token))

    await store.set_account_status(account, "suspended")
    auth.forget()
    with pytest.raises(TwilioError):
        await auth.authenticate(_basic(account, token))
    assert await store.api_key(key) is None
    assert await store.delete_api_key(key)
