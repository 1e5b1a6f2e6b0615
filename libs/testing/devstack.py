"""Ensure the local devstack runs (for integration/e2e tests) and read its environment files.

`ensure_devstack()` is idempotent and cheap when the stack is healthy: it asks
`deploy/devstack/devstack status --check` and only runs `up` when something is down.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEVSTACK = REPO / "deploy" / "devstack" / "devstack"
VAR = Path(os.environ.get("MIXDOWN_VAR_DIR", str(REPO / "var")))
ENV_FILES = (VAR / "devstack.env", VAR / "dev.env")
UP_TIMEOUT_S = 3600.0

_ENV_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


class DevstackUnavailable(RuntimeError):
    """`devstack up` failed; the message carries the tail of its output."""


def _devstack(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed script of this repository
        [sys.executable, str(DEVSTACK), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def is_healthy() -> bool:
    """True when every component the devstack knows about (and that exists) is healthy."""
    return _devstack("status", "--check", "--quiet", timeout=60).returncode == 0


def ensure_devstack() -> dict[str, str]:
    """Start the devstack unless it is already healthy; return load_env(). Raises DevstackUnavailable."""
    if not is_healthy():
        result = _devstack("up", timeout=UP_TIMEOUT_S)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip()[-3000:]
            raise DevstackUnavailable(f"deploy/devstack/devstack up failed ({result.returncode}):\n{tail}")
    return load_env()


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines; comments and blank lines are ignored, values are taken verbatim."""
    return {m.group(1): m.group(2) for line in text.splitlines() if (m := _ENV_LINE.match(line.strip()))}


def load_env() -> dict[str, str]:
    """var/devstack.env overlaid with var/dev.env (missing files contribute nothing)."""
    values: dict[str, str] = {}
    for path in ENV_FILES:
        if path.exists():
            values.update(parse_env_file(path.read_text()))
    return values
