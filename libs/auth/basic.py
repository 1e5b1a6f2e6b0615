"""HTTP Basic authentication for the REST API: ``AccountSid:AuthToken`` or ``ApiKeySid:ApiKeySecret``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from libs.auth.sealing import verify_secret
from libs.auth.store import Credential
from libs.events.sids import AccountSid, ApiKeySid, parse_sid
from libs.twilio.errors import unauthorized


class Principal(BaseModel):
    """Who is calling: the account, and the credential used (the account SID itself or an API key SID)."""

    model_config = ConfigDict(frozen=True)

    account_sid: AccountSid
    credential_sid: AccountSid | ApiKeySid


class CredentialSource(Protocol):
    """The part of IdentityStore the authenticator needs (a fake in unit tests)."""

    async def credential(self, sid: AccountSid | ApiKeySid) -> Credential | None: ...


def parse_basic(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) of a ``Basic`` header, or None when absent or malformed."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


class BasicAuthenticator:
    """Checks Basic credentials against the slow hashes; successes are cached ``cache_ttl_s`` seconds.

    The cache is keyed by a SHA-256 of the whole header, so it never holds the secret itself.
    """

    def __init__(
        self,
        store: CredentialSource,
        cache_ttl_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_cache_entries: int = 10_000,
    ) -> None:
        self._store = store
        self._ttl = cache_ttl_s
        self._clock = clock
        self._max = max_cache_entries
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self._inflight: dict[bytes, asyncio.Future[Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller's Principal. Raises TwilioError 401 / 20003 for missing or wrong credentials."""
        parsed = parse_basic(authorization)
        if parsed is None or authorization is None:
            raise unauthorized()
        cache_key = hashlib.sha256(authorization.strip().encode()).digest()
        now = self._clock()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        # Single flight: concurrent requests with the same new header share one slow hash check.
        pending = self._inflight.get(cache_key)
        if pending is not None:
            return await asyncio.shield(pending)
        task = asyncio.ensure_future(self._verify(parsed))
        self._inflight[cache_key] = task
        try:
            principal = await asyncio.shield(task)
        finally:
            if task.done():
                self._inflight.pop(cache_key, None)
            else:
                task.add_done_callback(lambda _: self._inflight.pop(cache_key, None))
        self._remember(cache_key, principal, now)
        return principal

    async def _verify(self, parsed: tuple[str, str]) -> Principal:
        user, password = parsed
        sid = parse_sid(user)
        if not isinstance(sid, AccountSid | ApiKeySid):
            raise unauthorized()
        credential = await self._store.credential(sid)
        if credential is None or credential.account_status != "active":
            raise unauthorized()
        if not await asyncio.to_thread(verify_secret, password, credential.secret_hash):
            raise unauthorized()
        return Principal(account_sid=credential.account_sid, credential_sid=sid)

    def _remember(self, key: bytes, principal: Principal, now: float) -> None:
        if len(self._cache) >= self._max:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= self._max:
                self._cache.clear()
        self._cache[key] = (now + self._ttl, principal)

    def forget(self) -> None:
        """Drop the cache (after revoking a key, for instance)."""
        self._cache.clear()


async def request_principal(request: Request) -> Principal:
    """The Principal that ``require_basic_auth`` stored on the request (FastAPI dependency for routes)."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise unauthorized()
    return principal


def principal_dependency(auth: BasicAuthenticator) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: ``principal: Principal = Depends(principal_dependency(auth))``."""

    async def dependency(request: Request) -> Principal:
        return await auth.authenticate(request.headers.get("authorization"))

    return dependency
