"""Verification of client Access Tokens (Twilio JWTs, HS256 signed with an API key secret)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from pydantic import BaseModel, ConfigDict

from libs.auth.errors import AccessTokenError
from libs.events.sids import AccountSid, ApiKeySid

MAX_LIFETIME = timedelta(hours=24)

SecretLookup = Callable[[ApiKeySid], Awaitable[tuple[AccountSid, str] | None]]


class VideoGrant(BaseModel):
    """What a valid token allows: ``identity`` may join ``room`` (any room when None)."""

    model_config = ConfigDict(frozen=True)

    identity: str
    room: str | None
    account_sid: AccountSid
    api_key_sid: ApiKeySid
    expires_at: datetime


def _segment(part: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _numeric(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AccessTokenError(20101, f"Invalid Access Token: {name} is not a number")
    return int(value)


async def verify_access_token(token: str, secret_for: SecretLookup, now: datetime) -> VideoGrant:
    """Verify ``token`` at time ``now``; the VideoGrant it carries, or AccessTokenError with Twilio's code.

    Codes: 20101 malformed, 20102 bad header, 20103 unknown issuer / subject mismatch, 20104 expired,
    20105 not yet valid, 20106 no identity or no video grant, 20107 bad signature, 20157 lifetime > 24 h.
    """
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise AccessTokenError(20101, "Invalid Access Token")
    try:
        header = _segment(parts[0])
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise AccessTokenError(20102, "Invalid Access Token header") from exc
    if header.get("alg") != "HS256" or header.get("typ", "JWT") != "JWT":
        raise AccessTokenError(20102, "Invalid Access Token header")
    try:
        claims = _segment(parts[1])
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise AccessTokenError(20101, "Invalid Access Token") from exc

    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not ApiKeySid.is_valid(issuer):
        raise AccessTokenError(20103, "Invalid Access Token issuer/subject")
    if not isinstance(subject, str) or not AccountSid.is_valid(subject):
        raise AccessTokenError(20103, "Invalid Access Token issuer/subject")
    key_sid, account_sid = ApiKeySid(issuer), AccountSid(subject)
    found = await secret_for(key_sid)
    if found is None or found[0] != account_sid:
        raise AccessTokenError(20103, "Invalid Access Token issuer/subject")
    try:
        jwt.decode(
            token,
            found[1],
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise AccessTokenError(20107, "Invalid Access Token signature") from exc
    except jwt.PyJWTError as exc:
        raise AccessTokenError(20101, "Invalid Access Token") from exc

    now_s = int(now.timestamp())
    exp, nbf = _numeric(claims, "exp"), _numeric(claims, "nbf")
    if exp is None:
        raise AccessTokenError(20101, "Invalid Access Token: no expiration")
    if now_s >= exp:
        raise AccessTokenError(20104, "Access Token expired or expiration date invalid")
    if nbf is not None and now_s < nbf:
        raise AccessTokenError(20105, "Access Token not yet valid")
    start = nbf if nbf is not None else (_numeric(claims, "iat") or now_s)
    if exp - start > MAX_LIFETIME.total_seconds():
        raise AccessTokenError(20157, "Expiration Time Exceeds Maximum Time Allowed")

    grants = claims.get("grants")
    if not isinstance(grants, dict):
        raise AccessTokenError(20106, "Invalid Access Token grants")
    identity = grants.get("identity")
    video = grants.get("video")
    if not isinstance(identity, str) or not identity or not isinstance(video, dict):
        raise AccessTokenError(20106, "Invalid Access Token grants")
    room = video.get("room")
    if room is not None and not isinstance(room, str):
        raise AccessTokenError(20106, "Invalid Access Token grants")
    return VideoGrant(
        identity=identity,
        room=room or None,
        account_sid=account_sid,
        api_key_sid=key_sid,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
