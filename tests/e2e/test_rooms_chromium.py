"""Two Chromium pages (fake camera + microphone, inside the media netns) join one room through the demo page
/rooms-ui/ (WHIP publish, WHEP view). Driven over the DevTools protocol on a pipe (--remote-debugging-pipe),
so nothing listens on a port. REST must show both participants and their four tracks; each page must play
the other's video; closing a page disconnects its participant."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from tests.e2e.conftest import Tenant

pytestmark = pytest.mark.e2e

EDGE_IN_NETNS = "http://10.77.0.254:8080"
CHROMIUM = shutil.which("chromium")


class DevTools:
    """A blocking Chrome DevTools Protocol client over the debugging pipe (NUL-separated JSON)."""

    def __init__(self, to_browser: int, from_browser: int) -> None:
        self._out, self._in = to_browser, from_browser
        self._buffer = b""
        self._next = 0

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no DevTools message in time")
            ready, _, _ = select.select([self._in], [], [], remaining)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise EOFError("browser closed the pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        loaded: dict[str, Any] = json.loads(raw)
        return loaded

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        self._next += 1
        request: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session is not None:
            request["sessionId"] = session
        os.write(self._out, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + 20
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        return result.get("result", {}).get("value")


@pytest.fixture
def browser() -> Iterator[DevTools]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (the devstack installs it)")
    profile = tempfile.mkdtemp(prefix="mixdown-chromium-")
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    flags = [
        "--headless",
        "--no-sandbox",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}",
        f"--unsafely-treat-insecure-origin-as-secure={EDGE_IN_NETNS}",
        "--remote-debugging-pipe",
        "about:blank",
    ]
    # The browser reads commands on fd 3 and writes answers on fd 4.
    script = f'exec "$0" "$@" 3<&{to_r} 4>&{from_w}'
    process = subprocess.Popen(  # noqa: S603  # fixed argv
        ["ip", "netns", "exec", "mixdown", "bash", "-c", script, CHROMIUM, *flags],  # noqa: S607
        pass_fds=(to_r, from_w),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_r)
    os.close(from_w)
    try:
        yield DevTools(to_w, from_r)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        os.close(to_w)
        os.close(from_r)
        shutil.rmtree(profile, ignore_errors=True)


def _token(tenant: Tenant, identity: str, room: str) -> str:
    access = AccessToken(tenant.account_sid, tenant.api_key, tenant.api_secret, identity=identity, ttl=600)
    access.add_grant(VideoGrant(room=room))
    return str(access.to_jwt())


def _poll(check: Callable[[], Any], wait: float, what: str) -> Any:
    deadline = time.monotonic() + wait
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_two_browser_pages_join_see_each_other_and_leave(tenant: Tenant, browser: DevTools) -> None:
    client = tenant.client()
    name = f"browser-{uuid.uuid4().hex[:8]}"  # not created before: the first join creates it (ad hoc)
    pages: dict[str, tuple[str, str]] = {}
    for identity in ("anna", "ben"):
        url = f"{EDGE_IN_NETNS}/rooms-ui/#room={quote(name)}&token={_token(tenant, identity, name)}"
        target = browser.call("Target.createTarget", {"url": url})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        pages[identity] = (target, session)

    def connected() -> list[Any]:
        rooms = client.video.v1.rooms.list(unique_name=name)
        if not rooms:
            return []
        found = client.video.v1.rooms(rooms[0].sid).participants.list(status="connected")
        return found if len(found) == 2 else []

    participants = _poll(connected, 40, "both browser participants")
    room_sid = participants[0].room_sid
    assert {p.identity for p in participants} == {"anna", "ben"}

    def four_tracks() -> list[tuple[str, str, str]]:
        tracks = [
            (p.identity, t.kind, t.name)
            for p in participants
            for t in client.video.v1.rooms(room_sid).participants(p.sid).published_tracks.list()
        ]
        return sorted(tracks) if len(tracks) == 4 else []

    assert _poll(four_tracks, 20, "four published tracks") == [
        ("anna", "audio", "microphone"),
        ("anna", "video", "camera"),
        ("ben", "audio", "microphone"),
        ("ben", "video", "camera"),
    ]
    playing = "[...document.querySelectorAll('video.remote')].some(v => v.videoWidth > 0 && !v.paused)"
    for identity, (_, session) in pages.items():

        def plays(page: str = session) -> bool:
            return bool(browser.evaluate(page, playing))

        _poll(plays, 40, f"{identity}'s page playing the other's video")

    browser.call("Target.closeTarget", {"targetId": pages["anna"][0]})

    def anna_gone() -> bool:
        anna = client.video.v1.rooms(room_sid).participants("anna").fetch()
        return bool(anna.status == "disconnected")

    _poll(anna_gone, 45, "anna disconnected after her page closed")
    remaining = client.video.v1.rooms(room_sid).participants.list()
    assert [p.identity for p in remaining] == ["ben"]
    client.video.v1.rooms(room_sid).update(status="completed")
