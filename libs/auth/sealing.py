"""Secrets at rest: AES-256-GCM sealing with the master key, and a slow salted hash for password checks.

Auth tokens and API key secrets must be recoverable in plaintext (callbacks are HMAC-signed with the auth
token; Access Tokens are verified with the key secret), so they are sealed rather than only hashed. The scrypt
hash is kept beside them so a Basic-auth check never needs the plaintext and a stolen database dump without
the master key yields neither.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.auth.errors import SealingError

_VERSION = "v1"
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(master_key: bytes, plaintext: str, context: str) -> str:
    """Encrypt ``plaintext``; ``context`` (e.g. the owning SID) is authenticated, so a sealed value cannot be
    moved to another row. Result: ``v1.<nonce+ciphertext, urlsafe base64>``."""
    if len(master_key) != 32:
        raise SealingError("master key must be 32 bytes")
    nonce = os.urandom(12)
    sealed = AESGCM(master_key).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{_VERSION}.{_b64(nonce + sealed)}"


def unseal(master_key: bytes, sealed: str, context: str) -> str:
    """The plaintext of ``seal``. Raises SealingError for a wrong key, context or tampered value."""
    version, _, body = sealed.partition(".")
    if version != _VERSION or not body:
        raise SealingError("unknown sealed format")
    try:
        raw = _unb64(body)
        return AESGCM(master_key).decrypt(raw[:12], raw[12:], context.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SealingError("cannot unseal value") from exc


def hash_secret(secret: str) -> str:
    """A salted scrypt hash: ``scrypt$n$r$p$salt$hash``. Deliberately slow (~tens of ms)."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """True when ``secret`` matches ``stored`` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(_unb64(digest))
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, _unb64(digest))
