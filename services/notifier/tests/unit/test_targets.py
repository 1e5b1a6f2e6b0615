"""SSRF classification table and target resolution."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from services.notifier.targets import (
    Resolver,
    TargetPolicy,
    TargetRefused,
    TargetUnresolved,
    classify_address,
    parse_cidrs,
    parse_target,
    resolve_target,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-global"),
        ("198.18.0.1", "private"),
        ("2002:7f00:1::1", "reserved"),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_classification_table(address: str, reason: str | None) -> None:
    assert classify_address(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://x",
        "http://",
        "https://user:pw@example.com/",
        "x",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        parse_target(url)


def test_parse_target_default_ports() -> None:
    assert parse_target("https://Example.COM/cb").port == 443
    assert parse_target("http://example.com/cb").port == 80
    assert parse_target("http://example.com:8080/cb").host == "example.com"


def _resolver(answers: dict[str, Sequence[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    return resolve


async def test_hostname_resolving_to_loopback_is_refused() -> None:
    resolver = _resolver({"evil.example": ["127.0.0.1"]})
    with pytest.raises(TargetRefused, match="loopback"):
        await resolve_target("http://evil.example/cb", TargetPolicy(), resolver)


async def test_literal_loopback_refused_unless_allowed() -> None:
    with pytest.raises(TargetRefused, match="loopback"):
        await resolve_target("http://127.0.0.1:9/cb", TargetPolicy())
    allowed = await resolve_target("http://127.0.0.1:9/cb", TargetPolicy(allow_private=True))
    assert allowed.addresses == (ipaddress.ip_address("127.0.0.1"),)


async def test_allowed_cidrs_open_only_their_range() -> None:
    policy = TargetPolicy(allowed_cidrs=parse_cidrs(["10.20.0.0/16"]))
    ok = await resolve_target("http://10.20.3.4/cb", policy)
    assert [str(a) for a in ok.addresses] == ["10.20.3.4"]
    with pytest.raises(TargetRefused, match="private"):
        await resolve_target("http://10.21.0.1/cb", policy)


async def test_only_checked_addresses_are_kept() -> None:
    resolver = _resolver({"mixed.example": ["10.0.0.5", "93.184.216.34", "93.184.216.34"]})
    resolved = await resolve_target("https://mixed.example/cb", TargetPolicy(), resolver)
    assert [str(a) for a in resolved.addresses] == ["93.184.216.34"]


async def test_unresolvable_host_is_not_a_refusal() -> None:
    with pytest.raises(TargetUnresolved, match="resolve"):
        await resolve_target("https://nowhere.example/cb", TargetPolicy(), _resolver({}))
