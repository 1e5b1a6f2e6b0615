"""``X-Twilio-Signature``: HMAC-SHA1 over the URL plus the sorted form parameters, base64."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

Params = Mapping[str, str | Sequence[str]]


def _values(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    return sorted(value)


def compute_signature(url: str, params: Params, auth_token: str) -> str:
    """The signature Twilio sends for a callback to ``url`` with form ``params`` (empty for GET)."""
    payload = url + "".join(name + v for name in sorted(params) for v in _values(params[name]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port is not None or not parts.hostname:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    if parts.port != default:
        return url
    netloc = parts.netloc.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=netloc))


def validate_signature(url: str, params: Params, auth_token: str, signature: str) -> bool:
    """True when ``signature`` matches ``url`` with or without its explicit default port (constant time)."""
    candidates = {url, _with_port(url), _without_port(url)}
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(compute_signature(candidate, params, auth_token), signature)
    return ok
