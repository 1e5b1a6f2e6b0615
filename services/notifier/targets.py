"""Callback target checks (SSRF guard): which URLs and addresses the notifier may call.

`classify_address` and `parse_target` are pure; `resolve_target` does the DNS lookup and returns the checked
addresses the caller must connect to (so there is no gap between the check and the connection).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses for which `is_global` is true yet that must never be called back.
_ALWAYS_BLOCKED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("2002::/16"),  # 6to4 can embed private IPv4 addresses
)


class TargetRefused(Exception):
    """The callback URL or its resolved address is not allowed; the delivery is dead (permanent)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TargetUnresolved(Exception):
    """The host name did not resolve now (DNS trouble may be temporary): the attempt is retried."""


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses callbacks may reach. `allow_private` lifts the block entirely (devstack)."""

    allow_private: bool = False
    allowed_cidrs: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True)
class Target:
    """A parsed callback URL: scheme, host as written (lower-cased), effective port."""

    scheme: str
    host: str
    port: int


@dataclass(frozen=True)
class ResolvedTarget:
    """A target together with the checked addresses to connect to, in resolver order."""

    target: Target
    addresses: tuple[IPAddress, ...]


def classify_address(address: IPAddress) -> str | None:
    """Why an address is refused (``loopback``, ``private``, ...), or None when it is publicly routable."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return classify_address(mapped)
    # Order matters: the most specific reason first (loopback is also "private" to `ipaddress`).
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-global"
    if any(address in net for net in _ALWAYS_BLOCKED if net.version == address.version):
        return "reserved"
    return None


def address_allowed(address: IPAddress, policy: TargetPolicy) -> str | None:
    """None when the policy allows the address, else the refusal reason."""
    if policy.allow_private:
        return None
    if any(address in net for net in policy.allowed_cidrs if net.version == address.version):
        return None
    return classify_address(address)


def parse_target(url: str) -> Target:
    """Parse and check a callback URL: http/https only, a host, no credentials in it.

    Raises TargetRefused for anything else.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("malformed url") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused("scheme not allowed")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("credentials in url")
    host = (parts.hostname or "").lower()
    if not host:
        raise TargetRefused("missing host")
    return Target(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80))


Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Resolve a host name with the system resolver (TCP addresses, IPv4 and IPv6)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve_target(
    url: str, policy: TargetPolicy, resolver: Resolver = system_resolver
) -> ResolvedTarget:
    """Parse the URL, resolve its host and keep only allowed addresses.

    Raises TargetRefused when the URL is not acceptable or no resolved address is allowed (the reason of the
    first refused address is reported), TargetUnresolved when the name does not resolve.
    """
    target = parse_target(url)
    literal = _literal_address(target.host)
    if literal is not None:
        candidates: list[IPAddress] = [literal]
    else:
        try:
            raw = await resolver(target.host, target.port)
        except OSError as exc:
            raise TargetUnresolved("host does not resolve") from exc
        candidates = []
        for text in raw:
            # Scoped IPv6 results carry "%iface"; a scoped address is link-local anyway.
            address = _literal_address(text.split("%", 1)[0])
            if address is not None and address not in candidates:
                candidates.append(address)
        if not candidates:
            raise TargetUnresolved("host does not resolve")
    allowed: list[IPAddress] = []
    first_reason: str | None = None
    for address in candidates:
        reason = address_allowed(address, policy)
        if reason is None:
            allowed.append(address)
        elif first_reason is None:
            first_reason = reason
    if not allowed:
        raise TargetRefused(f"address refused: {first_reason}")
    return ResolvedTarget(target=target, addresses=tuple(allowed))


def parse_cidrs(values: Sequence[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings (``10.0.0.0/8``, ``fd00::/8``, single addresses); raises ValueError on a bad one."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())
