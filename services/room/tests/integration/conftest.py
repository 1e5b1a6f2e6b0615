"""Fixtures for the room service's integration tests: a real Janus to talk to.

`ROOM_TEST_JANUS` picks it: `devstack` (start/use the devstack's Janus in netns `mixdown`),
`scratch` (a private Janus in a temporary `mxdtest-<hex>` netns, with an event sink), or `auto`
(default: the devstack's Janus when it already answers, else scratch). The devstack's event handler
posts to the room service, so event-handler assertions only run in scratch mode.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from libs.testing.devstack import REPO, ensure_devstack, load_env
from libs.testing.scratch_janus import ScratchJanus
from services.room.tests.integration.event_sink import EventSink


@dataclass(frozen=True)
class JanusTarget:
    url: str
    admin_key: str
    api_secret: str | None
    netns: str  # where WebRTC test peers run
    peer_ip: str  # their address, on the Janus ICE interface
    forward_host: str  # host-side address that receives rtp_forward traffic
    sink: EventSink | None  # Janus's event-handler POSTs (scratch mode only)


def _devstack_janus_answers() -> bool:
    """Is the devstack's Janus up? (The rest of the stack does not matter to these tests.)"""
    url = load_env().get("JANUS_URL")
    if url is None:
        return False
    try:
        return httpx.get(f"{url}/info", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def janus_target() -> Iterator[JanusTarget]:
    mode = os.environ.get("ROOM_TEST_JANUS", "auto")
    if mode == "devstack" or (mode == "auto" and _devstack_janus_answers()):
        env = ensure_devstack() if mode == "devstack" else load_env()
        peer_ip = f"10.77.0.{50 + secrets.randbelow(50)}"
        netns_addr = str(REPO / "deploy" / "devstack" / "netns-addr")
        subprocess.run([netns_addr, "ADD", peer_ip], check=True, capture_output=True)
        try:
            yield JanusTarget(
                url=env.get("JANUS_URL", "http://10.77.0.1:8088/janus"),
                admin_key=env["JANUS_ADMIN_KEY"],
                api_secret=env.get("JANUS_API_SECRET") or None,
                netns="mixdown",
                peer_ip=peer_ip,
                forward_host="10.77.0.254",
                sink=None,
            )
        finally:
            subprocess.run([netns_addr, "DEL", peer_ip], check=False, capture_output=True)
        return
    sink: EventSink | None = None
    janus: ScratchJanus | None = None
    try:
        # The sink binds the host-side veth address, so the netns comes first with a fixed port.
        port = 18_000 + secrets.randbelow(2000)
        janus = ScratchJanus.create(sink_port=port)
        sink = EventSink(janus.host_ip, port)
        sink.start()
        janus.start()
        yield JanusTarget(
            url=janus.url,
            admin_key=janus.admin_key,
            api_secret=None,
            netns=janus.netns,
            peer_ip=janus.peer_ip,
            forward_host=janus.host_ip,
            sink=sink,
        )
    finally:
        if sink is not None:
            sink.stop()
        if janus is not None:
            janus.stop()
