"""One HTTP attempt of a status callback: URL building, signing, SSRF-checked pinned connection.

The request goes to the address `targets.resolve_target` checked (the URL host is replaced by that IP; the
original host travels in the Host header and, for https, as TLS SNI and certificate name), so a DNS answer
cannot change between the check and the connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from services.notifier.targets import (
    IPAddress,
    ResolvedTarget,
    Resolver,
    TargetPolicy,
    TargetRefused,
    TargetUnresolved,
    resolve_target,
    system_resolver,
)

USER_AGENT = "Mixdown-Notifier/1"
SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

Signer = Callable[[str, Mapping[str, str], str], str]


@dataclass(frozen=True)
class CallbackRequest:
    """What to send: the configured URL, GET or POST, the callback parameters, and the idempotency token."""

    url: str
    method: str
    params: Mapping[str, str]
    idempotency_token: str


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one attempt. ``status`` is None when no HTTP response arrived (``error`` says why).

    ``refused`` marks an SSRF/URL refusal (permanent, no request was sent).
    """

    status: int | None
    error: str | None
    retry_after: str | None
    elapsed_s: float
    refused: bool = False


@dataclass(frozen=True)
class PreparedRequest:
    """The exact URL the receiver sees (signed), plus the body for POST."""

    url: str
    method: str
    form: tuple[tuple[str, str], ...]


def prepare(request: CallbackRequest) -> PreparedRequest:
    """Build the URL the receiver will see: for GET the parameters are appended to the query string.

    The URL is normalised the way httpx sends it (percent-encoding, no fragment), because the receiver signs
    what arrives on the wire.
    """
    method = request.method.upper()
    parts = urlsplit(request.url)
    items = tuple((k, v) for k, v in request.params.items())
    query = parts.query
    if method == "GET" and items:
        extra = urlencode(items)
        query = f"{query}&{extra}" if query else extra
    raw = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))
    wire = httpx.URL(raw)
    target = wire.raw_path.decode("ascii")
    url = f"{parts.scheme.lower()}://{parts.netloc}{target}"
    return PreparedRequest(url=url, method=method, form=items if method == "POST" else ())


def _pinned_url(url: str, address: IPAddress, port: int) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if address.version == 6 else str(address)
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, parts.query, ""))


def _host_header(url: str) -> str:
    netloc = urlsplit(url).netloc
    return netloc.rsplit("@", 1)[-1]


class CallbackSender:
    """Sends signed callbacks with a shared httpx client (no redirects, no env proxies)."""

    def __init__(
        self,
        *,
        policy: TargetPolicy,
        sign: Signer,
        timeout_s: float = 15.0,
        resolver: Resolver = system_resolver,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._policy = policy
        self._sign = sign
        self._timeout_s = timeout_s
        self._resolver = resolver
        self._client = client or httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
        )

    async def aclose(self) -> None:
        """Close the HTTP client and its pooled connections."""
        await self._client.aclose()

    async def resolve(self, url: str) -> ResolvedTarget:
        """The SSRF-checked target of a URL; raises TargetRefused."""
        return await resolve_target(url, self._policy, self._resolver)

    def signed_headers(self, prepared: PreparedRequest, auth_token: str, token: str) -> dict[str, str]:
        """Headers of a callback: signature over the exact URL (+ form for POST), agent, idempotency token."""
        signature = self._sign(prepared.url, dict(prepared.form), auth_token)
        headers = {
            "Host": _host_header(prepared.url),
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature,
            IDEMPOTENCY_HEADER: token,
            "Accept": "*/*",
        }
        if prepared.method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        return headers

    async def send(self, request: CallbackRequest, auth_token: str) -> AttemptResult:
        """Make one attempt. Never raises for network trouble: the result says what happened."""
        started = time.monotonic()
        try:
            resolved = await self.resolve(request.url)
        except TargetRefused as exc:
            return AttemptResult(None, exc.reason, None, time.monotonic() - started, refused=True)
        except TargetUnresolved:
            return AttemptResult(None, "host does not resolve", None, time.monotonic() - started)
        prepared = prepare(request)
        headers = self.signed_headers(prepared, auth_token, request.idempotency_token)
        body = urlencode(prepared.form).encode() if prepared.method == "POST" else None
        last_error = "no address"
        for address in resolved.addresses:
            extensions: dict[str, object] = {}
            if resolved.target.scheme == "https":
                extensions["sni_hostname"] = resolved.target.host
            pinned = _pinned_url(prepared.url, address, resolved.target.port)
            try:
                async with asyncio.timeout(self._timeout_s):
                    outgoing = self._client.build_request(
                        prepared.method, pinned, headers=headers, content=body, extensions=extensions
                    )
                    # Stream so a huge body is never read; only the status and headers matter.
                    response = await self._client.send(outgoing, stream=True)
                    await response.aclose()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = f"connect failed: {type(exc).__name__}"
                continue  # try the next checked address of the host
            except (TimeoutError, httpx.TimeoutException):
                return AttemptResult(None, "timeout", None, time.monotonic() - started)
            except httpx.HTTPError as exc:
                return AttemptResult(
                    None, f"http error: {type(exc).__name__}", None, time.monotonic() - started
                )
            error = None if 200 <= response.status_code < 300 else f"http status {response.status_code}"
            return AttemptResult(
                response.status_code, error, response.headers.get("retry-after"), time.monotonic() - started
            )
        return AttemptResult(None, last_error, None, time.monotonic() - started)
