"""The media network namespace: netns `mixdown`, veth mxd0 (host, 10.77.0.254) <-> mxd1 (netns, 10.77.0.1)."""

from __future__ import annotations

import subprocess

from .commands import as_root, run
from .layout import HOST_ADDR, HOST_IF, NETNS, NS_ADDR, NS_IF, RUN

CREATED_MARKER = RUN / "netns.created"


def _ok(argv: list[str]) -> bool:
    return subprocess.run(as_root(argv), capture_output=True, check=False).returncode == 0  # noqa: S603


def _has_addr(argv_prefix: list[str], iface: str, addr: str) -> bool:
    result = subprocess.run(  # noqa: S603
        as_root([*argv_prefix, "-o", "-4", "addr", "show", "dev", iface]),
        capture_output=True,
        text=True,
        check=False,
    )
    return f" {addr}/" in result.stdout


def exists() -> bool:
    result = subprocess.run(as_root(["ip", "netns", "list"]), capture_output=True, text=True, check=False)  # noqa: S603
    return any(line.split()[0] == NETNS for line in result.stdout.splitlines() if line.strip())


def problem() -> str | None:
    """None when the namespace and both veth ends are up with their addresses."""
    if not exists():
        return f"netns {NETNS} missing"
    if not _has_addr(["ip"], HOST_IF, HOST_ADDR):
        return f"{HOST_IF} lacks {HOST_ADDR}"
    if not _has_addr(["ip", "-n", NETNS], NS_IF, NS_ADDR):
        return f"{NS_IF} lacks {NS_ADDR} in netns {NETNS}"
    return None


def ensure() -> None:
    """Create what is missing; idempotent. Remembers that we created it so `down` removes it."""
    if problem() is None:
        return
    RUN.mkdir(parents=True, exist_ok=True)
    if not exists():
        run(as_root(["ip", "netns", "add", NETNS]))
        CREATED_MARKER.write_text("created by deploy/devstack/devstack\n")
    if not _ok(["ip", "link", "show", HOST_IF]):
        run(as_root(["ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NETNS]))
    if not _has_addr(["ip"], HOST_IF, HOST_ADDR):
        run(as_root(["ip", "addr", "add", f"{HOST_ADDR}/24", "dev", HOST_IF]))
    run(as_root(["ip", "link", "set", HOST_IF, "up"]))
    if not _has_addr(["ip", "-n", NETNS], NS_IF, NS_ADDR):
        run(as_root(["ip", "-n", NETNS, "addr", "add", f"{NS_ADDR}/24", "dev", NS_IF]))
    run(as_root(["ip", "-n", NETNS, "link", "set", NS_IF, "up"]))
    run(as_root(["ip", "-n", NETNS, "link", "set", "lo", "up"]))


def remove_if_created() -> bool:
    """Delete the namespace (and with it the veth pair) if this devstack created it."""
    if not CREATED_MARKER.exists():
        return False
    if exists():
        run(as_root(["ip", "netns", "del", NETNS]), check=False)
    run(as_root(["ip", "link", "del", HOST_IF]), check=False, quiet=True)
    CREATED_MARKER.unlink(missing_ok=True)
    return True
