"""The ``identity`` schema: accounts and API keys (this module owns its SQL)."""

from __future__ import annotations

import asyncio
import secrets
import string
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict

from libs.auth.errors import UnknownAccount
from libs.auth.sealing import hash_secret, seal, unseal
from libs.db.migrate import migrate
from libs.events.sids import AccountSid, ApiKeySid

SCHEMA = "identity"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_ACCOUNT_SETTINGS: dict[str, Any] = {"ad_hoc_rooms_enabled": True}

_SECRET_ALPHABET = string.ascii_letters + string.digits

AccountStatus = Literal["active", "suspended", "closed"]


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    sid: AccountSid
    friendly_name: str
    status: AccountStatus
    settings: dict[str, Any]
    date_created: datetime
    date_updated: datetime


class ApiKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    sid: ApiKeySid
    account_sid: AccountSid
    friendly_name: str
    date_created: datetime


class Credential(BaseModel):
    """What a Basic-auth check needs: the owning account, its status and the secret's slow hash."""

    model_config = ConfigDict(frozen=True)

    account_sid: AccountSid
    account_status: AccountStatus
    secret_hash: str


async def migrate_identity(pool: asyncpg.Pool) -> list[str]:
    """Apply the identity schema's migrations (``mixdown migrate``)."""
    return await migrate(pool, SCHEMA, MIGRATIONS_DIR)


def new_auth_token() -> str:
    """32 lower-case hex characters, like Twilio auth tokens."""
    return secrets.token_hex(16)


def new_key_secret() -> str:
    """32 alphanumeric characters, like Twilio API key secrets."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(32))


def _account(row: asyncpg.Record) -> Account:
    return Account(
        sid=AccountSid(row["sid"]),
        friendly_name=row["friendly_name"],
        status=row["status"],
        settings={**DEFAULT_ACCOUNT_SETTINGS, **(row["settings"] or {})},
        date_created=row["date_created"],
        date_updated=row["date_updated"],
    )


class IdentityStore:
    """Reads and writes accounts and API keys. Secrets leave this class only as plaintext return values."""

    def __init__(self, pool: asyncpg.Pool, master_key: bytes) -> None:
        self._pool = pool
        self._master_key = master_key

    async def create_account(self, friendly_name: str) -> tuple[AccountSid, str]:
        """A new active account; returns its SID and auth token (shown once to the operator)."""
        sid = AccountSid.new()
        token = new_auth_token()
        token_hash = await asyncio.to_thread(hash_secret, token)
        await self._pool.execute(
            "INSERT INTO identity.accounts (sid, friendly_name, auth_token_sealed, auth_token_hash) "
            "VALUES ($1, $2, $3, $4)",
            sid,
            friendly_name,
            seal(self._master_key, token, sid),
            token_hash,
        )
        return sid, token

    async def create_api_key(self, account_sid: AccountSid, friendly_name: str) -> tuple[ApiKeySid, str]:
        """A new API key of ``account_sid``; returns its SID and secret. Raises UnknownAccount."""
        sid = ApiKeySid.new()
        secret = new_key_secret()
        secret_hash = await asyncio.to_thread(hash_secret, secret)
        try:
            await self._pool.execute(
                "INSERT INTO identity.api_keys (sid, account_sid, friendly_name, secret_sealed, secret_hash) "
                "VALUES ($1, $2, $3, $4, $5)",
                sid,
                account_sid,
                friendly_name,
                seal(self._master_key, secret, sid),
                secret_hash,
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise UnknownAccount(account_sid) from exc
        return sid, secret

    async def delete_api_key(self, key_sid: ApiKeySid) -> bool:
        """Remove a key; False when it did not exist."""
        status = await self._pool.execute("DELETE FROM identity.api_keys WHERE sid = $1", key_sid)
        return bool(status == "DELETE 1")

    async def auth_token(self, account_sid: AccountSid) -> str | None:
        """The plaintext auth token (to sign callbacks), or None for an unknown account."""
        sealed = await self._pool.fetchval(
            "SELECT auth_token_sealed FROM identity.accounts WHERE sid = $1", account_sid
        )
        return None if sealed is None else unseal(self._master_key, sealed, account_sid)

    async def api_key(self, key_sid: ApiKeySid) -> tuple[AccountSid, str] | None:
        """(account, plaintext secret) of an API key of an active account, or None."""
        row = await self._pool.fetchrow(
            "SELECT k.account_sid, k.secret_sealed FROM identity.api_keys k "
            "JOIN identity.accounts a ON a.sid = k.account_sid WHERE k.sid = $1 AND a.status = 'active'",
            key_sid,
        )
        if row is None:
            return None
        return AccountSid(row["account_sid"]), unseal(self._master_key, row["secret_sealed"], key_sid)

    async def credential(self, sid: AccountSid | ApiKeySid) -> Credential | None:
        """The hash to check a Basic-auth password against, for an account SID or an API key SID."""
        if isinstance(sid, ApiKeySid):
            row = await self._pool.fetchrow(
                "SELECT a.sid AS account_sid, a.status, k.secret_hash AS secret_hash "
                "FROM identity.api_keys k JOIN identity.accounts a ON a.sid = k.account_sid WHERE k.sid = $1",
                sid,
            )
        else:
            row = await self._pool.fetchrow(
                "SELECT sid AS account_sid, status, auth_token_hash AS secret_hash "
                "FROM identity.accounts WHERE sid = $1",
                sid,
            )
        if row is None:
            return None
        return Credential(
            account_sid=AccountSid(row["account_sid"]),
            account_status=row["status"],
            secret_hash=row["secret_hash"],
        )

    async def get_account(self, sid: AccountSid) -> Account | None:
        row = await self._pool.fetchrow("SELECT * FROM identity.accounts WHERE sid = $1", sid)
        return None if row is None else _account(row)

    async def list_accounts(self) -> list[Account]:
        rows = await self._pool.fetch("SELECT * FROM identity.accounts ORDER BY date_created, sid")
        return [_account(r) for r in rows]

    async def list_api_keys(self, account_sid: AccountSid) -> list[ApiKey]:
        rows = await self._pool.fetch(
            "SELECT sid, account_sid, friendly_name, date_created FROM identity.api_keys "
            "WHERE account_sid = $1 ORDER BY date_created, sid",
            account_sid,
        )
        return [
            ApiKey(
                sid=ApiKeySid(r["sid"]),
                account_sid=AccountSid(r["account_sid"]),
                friendly_name=r["friendly_name"],
                date_created=r["date_created"],
            )
            for r in rows
        ]

    async def set_account_setting(self, sid: AccountSid, name: str, value: Any) -> None:
        """Set one key of the account's settings JSON (``ad_hoc_rooms_enabled``…). Raises UnknownAccount."""
        status = await self._pool.execute(
            "UPDATE identity.accounts SET settings = settings || jsonb_build_object($2::text, $3::jsonb), "
            "date_updated = now() WHERE sid = $1",
            sid,
            name,
            value,
        )
        if status != "UPDATE 1":
            raise UnknownAccount(sid)

    async def set_account_status(self, sid: AccountSid, status: AccountStatus) -> None:
        """Suspend, close or re-activate an account. Raises UnknownAccount."""
        result = await self._pool.execute(
            "UPDATE identity.accounts SET status = $2, date_updated = now() WHERE sid = $1", sid, status
        )
        if result != "UPDATE 1":
            raise UnknownAccount(sid)
