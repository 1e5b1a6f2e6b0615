"""Running external commands: echoing them, failing with their output, optional privilege escalation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence


class DevstackError(RuntimeError):
    """A step of the devstack failed; the message says what and where to look."""


def say(message: str) -> None:
    """Print a progress line (stderr keeps stdout clean for `env`)."""
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def as_root(argv: Sequence[str]) -> list[str]:
    """Prefix argv with sudo when not root (netns, apt)."""
    if os.geteuid() == 0:
        return list(argv)
    if shutil.which("sudo") is None:
        raise DevstackError(f"needs root for: {' '.join(argv)} (run as root or install sudo)")
    return ["sudo", "-n", *argv]


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    check: bool = True,
    quiet: bool = False,
    user: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing output; raise DevstackError with its output on failure."""
    result = subprocess.run(  # noqa: S603 - argv lists built by the devstack itself
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        user=user,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise DevstackError(f"command failed ({result.returncode}): {' '.join(argv)}\n{output}")
    if not quiet and result.returncode != 0:
        say(f"(ignored) {' '.join(argv)} -> {result.returncode}")
    return result
