"""Background processes: spawn in their own session, PID files in var/run, logs in var/log, stop by PID.

A PID file holds "<pid> <start time in clock ticks>", so a recycled PID is never mistaken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .layout import LOGS, RUN

# Children spawned by this process: kept so they are reaped (no zombies, no ResourceWarning) when a
# long-lived caller (a test session) stops them; the devstack CLI itself exits and leaves them to init.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Running:
    pid: int
    started: int


def pid_file(name: str) -> Path:
    return RUN / f"{name}.pid"


def log_file(name: str) -> Path:
    return LOGS / f"{name}.log"


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may contain spaces, so split after its ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def running(name: str) -> Running | None:
    """The live process recorded for name, or None (and the stale PID file is removed)."""
    path = pid_file(name)
    try:
        pid_text, started_text = path.read_text().split()
        recorded = Running(int(pid_text), int(started_text))
    except (OSError, ValueError):
        return None
    if _start_ticks(recorded.pid) != recorded.started:
        path.unlink(missing_ok=True)
        return None
    return recorded


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    user: str | None = None,
) -> Running:
    """Start argv detached (new session), stdout+stderr appended to var/log/<name>.log."""
    RUN.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    with log_file(name).open("ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} devstack start {name}\n".encode())
        log.flush()
        proc = subprocess.Popen(  # noqa: S603 - argv built by the devstack
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )
    _CHILDREN[proc.pid] = proc
    started = _start_ticks(proc.pid)
    if started is None:
        raise RuntimeError(f"{name} exited immediately; see {log_file(name)}")
    record = Running(proc.pid, started)
    pid_file(name).write_text(f"{record.pid} {record.started}\n")
    return record


def stop(name: str, *, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> bool:
    """Stop the recorded process group gracefully (sig), then SIGKILL after timeout. True if it ran."""
    record = running(name)
    if record is None:
        pid_file(name).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _start_ticks(record.pid) != record.started:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, signal.SIGKILL)
        while _start_ticks(record.pid) == record.started:
            time.sleep(0.05)
    child = _CHILDREN.pop(record.pid, None)
    if child is not None:
        child.wait()
    pid_file(name).unlink(missing_ok=True)
    return True
