"""Media peers for end-to-end tests: Twilio Access Tokens, and libs/testing/webrtc_peer.py (aiortc) running
inside the media netns, driven through JSON lines. The publisher sends a 440 Hz tone and a solid
COLOUR_RGB picture."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from tests.e2e.conftest import Tenant

REPO = Path(__file__).resolve().parents[2]
PEER_SCRIPT = REPO / "libs" / "testing" / "webrtc_peer.py"
NETNS_ADDR = REPO / "deploy" / "devstack" / "netns-addr"
COLOUR_RGB = (200, 40, 60)
TONE_HZ = 440


def token(tenant: Tenant, identity: str, room: str | None, ttl: int = 600) -> str:
    grant = VideoGrant(room=room) if room else VideoGrant()
    access = AccessToken(tenant.account_sid, tenant.api_key, tenant.api_secret, identity=identity, ttl=ttl)
    access.add_grant(grant)
    return str(access.to_jwt())


class Peer:
    """libs/testing/webrtc_peer.py inside netns `mixdown`, driven through JSON lines.

    A reader task collects every output line, so `latest()` is the newest progress report, not a stale
    buffered one.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.reader = asyncio.create_task(self._read_all())

    @classmethod
    async def start(cls, mode: str, address: str, seconds: float) -> Peer:
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", "mixdown", sys.executable, str(PEER_SCRIPT), mode, address, str(seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )  # fmt: skip
        return cls(process)

    async def _read_all(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(json.loads(line))
            self.arrived.set()

    def latest(self) -> dict[str, Any]:
        return self.lines[-1] if self.lines else {}

    async def until(self, predicate: Callable[[dict[str, Any]], bool], wait: float = 20.0) -> dict[str, Any]:
        """The first line (old or new) satisfying `predicate`."""
        deadline = time.monotonic() + wait
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if predicate(line):
                    return line
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.reader.done() and seen == len(self.lines)):
                raise AssertionError(f"peer never reached the expected state; last {self.latest()}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)

    async def send(self, payload: dict[str, object]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(payload) + "\n").encode())
        await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.reader.cancel()


async def poll(check: Callable[[], Any], wait: float, what: str) -> Any:
    """Call `check` until it returns something truthy (deadline `wait` s)."""
    deadline = time.monotonic() + wait
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
