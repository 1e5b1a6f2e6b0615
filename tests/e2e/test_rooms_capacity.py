"""How many publishing participants one Janus + one room-service process take on this machine.

The test joins N light publishers (Opus tone + 96x72 VP8 at 10 fps, all in ONE aiortc process inside the
media netns, so the clients stay cheap) into one room through WHIP, checks REST shows N participants with
2N tracks, and reports WHIP POST latency, join-to-first-media (the service's own histogram, fed by Janus's
media events) and the CPU share of Janus and of the room service while all N publish.

    ROOM_CAPACITY_PUBLISHERS=30 .venv/bin/pytest tests/e2e/test_rooms_capacity.py -m e2e -s

Run as a script (`python tests/e2e/test_rooms_capacity.py <n> <address> <seconds>`) it is that publisher
process: it prints one {"i", "offer"} line per peer, reads {"i", "answer"} lines, publishes for <seconds>
and prints {"connected": k}.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NETNS_ADDR = REPO / "deploy" / "devstack" / "netns-addr"
ADDRESS = "10.77.0.64"
SIZE = (96, 72)


async def _publishers(count: int, address: str, seconds: float) -> None:  # runs inside the netns
    import aioice.ice  # noqa: PLC0415  # script mode only
    import av  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from aiortc import (  # noqa: PLC0415
        MediaStreamTrack,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]  # pin ICE

    class Tone(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.pts = 0
            self.start = time.monotonic()

        async def recv(self) -> av.AudioFrame:
            await asyncio.sleep(max(0.0, self.start + self.pts / 48_000 - time.monotonic()))
            samples = np.zeros((1, 960), dtype=np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48_000, self.pts, fractions.Fraction(1, 48_000)
            self.pts += 960
            return frame

    class Tiny(MediaStreamTrack):
        kind = "video"

        def __init__(self, shade: int) -> None:
            super().__init__()
            self.count = 0
            self.start = time.monotonic()
            self.image = np.full((SIZE[1], SIZE[0], 3), shade, dtype=np.uint8)

        async def recv(self) -> av.VideoFrame:
            await asyncio.sleep(max(0.0, self.start + self.count / 10 - time.monotonic()))
            frame = av.VideoFrame.from_ndarray(self.image, format="rgb24")
            frame.pts, frame.time_base = self.count * 9000, fractions.Fraction(1, 90_000)
            self.count += 1
            return frame

    pcs = []
    for i in range(count):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(Tone(), direction="sendonly")
        pc.addTransceiver(Tiny(40 + i % 200), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        pcs.append(pc)
        print(json.dumps({"i": i, "offer": pc.localDescription.sdp}), flush=True)  # noqa: T201
    loop = asyncio.get_running_loop()
    for _ in range(count):
        line = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        await pcs[line["i"]].setRemoteDescription(RTCSessionDescription(sdp=line["answer"], type="answer"))
    await asyncio.sleep(seconds)
    print(json.dumps({"connected": sum(pc.connectionState == "connected" for pc in pcs)}), flush=True)  # noqa: T201
    for pc in pcs:
        with contextlib.suppress(Exception):
            await pc.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid(name: str) -> int:
    return int((REPO / "var" / "run" / f"{name}.pid").read_text().split()[0])


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.e2e
async def test_many_publishers_in_one_room(devstack: dict[str, str]) -> None:
    import httpx  # noqa: PLC0415
    from twilio.jwt.access_token import AccessToken  # noqa: PLC0415
    from twilio.jwt.access_token.grants import VideoGrant  # noqa: PLC0415

    from tests.e2e.conftest import new_tenant  # noqa: PLC0415

    count = int(os.environ.get("ROOM_CAPACITY_PUBLISHERS", "8"))
    tenant = new_tenant(devstack["MIXDOWN_URL"], f"capacity-{uuid.uuid4().hex[:6]}")
    client = tenant.client()
    name = f"capacity-{uuid.uuid4().hex[:8]}"
    room = client.video.v1.rooms.create(unique_name=name)
    subprocess.run([str(NETNS_ADDR), "ADD", ADDRESS], check=True, capture_output=True)  # noqa: ASYNC221
    peers = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", "mixdown", sys.executable, __file__, str(count), ADDRESS, "40",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert peers.stdin is not None and peers.stdout is not None
    metrics_url = "http://127.0.0.1:8101/metrics"
    try:
        async with httpx.AsyncClient(base_url=tenant.base_url, timeout=30) as http:
            before = (await http.get(metrics_url)).text
            posts: list[float] = []
            for _ in range(count):
                line = json.loads(await asyncio.wait_for(peers.stdout.readline(), 60))
                access = AccessToken(
                    tenant.account_sid, tenant.api_key, tenant.api_secret, identity=f"p{line['i']}"
                )
                access.add_grant(VideoGrant(room=name))
                started = time.monotonic()
                whip = await http.post(
                    f"/whip/{name}",
                    content=line["offer"],
                    headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {access.to_jwt()}"},
                )
                posts.append(time.monotonic() - started)
                assert whip.status_code == 201, whip.text
                peers.stdin.write((json.dumps({"i": line["i"], "answer": whip.text}) + "\n").encode())
                await peers.stdin.drain()

            deadline = time.monotonic() + 30
            while True:
                participants = client.video.v1.rooms(room.sid).participants.list()
                if len(participants) == count or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert len(participants) == count
            await asyncio.sleep(5)  # let every publisher reach steady state
            janus, service = _pid("janus"), _pid("room")
            cpu0 = (_cpu_seconds(janus), _cpu_seconds(service), time.monotonic())
            await asyncio.sleep(10)
            cpu1 = (_cpu_seconds(janus), _cpu_seconds(service), time.monotonic())
            after = (await http.get(metrics_url)).text
            tracks = sum(
                len(client.video.v1.rooms(room.sid).participants(p.sid).published_tracks.list())
                for p in participants
            )
            assert tracks == 2 * count
            media_n = _metric(after, "room_join_to_media_seconds_count") - _metric(
                before, "room_join_to_media_seconds_count"
            )
            media_sum = _metric(after, "room_join_to_media_seconds_sum") - _metric(
                before, "room_join_to_media_seconds_sum"
            )
            wall = cpu1[2] - cpu0[2]
            print(  # noqa: T201
                json.dumps(
                    {
                        "publishers": count,
                        "whip_post_ms_p50": round(statistics.median(posts) * 1000, 1),
                        "whip_post_ms_max": round(max(posts) * 1000, 1),
                        "join_to_media_ms_mean": round(media_sum / media_n * 1000, 1) if media_n else None,
                        "joins_with_media": media_n,
                        "janus_cpu_pct": round((cpu1[0] - cpu0[0]) / wall * 100, 1),
                        "room_service_cpu_pct": round((cpu1[1] - cpu0[1]) / wall * 100, 1),
                    }
                )
            )
            assert media_n == count, "some publisher never delivered media to Janus"
    finally:
        client.video.v1.rooms(room.sid).update(status="completed")
        if peers.returncode is None:
            peers.terminate()
            await peers.wait()
        subprocess.run([str(NETNS_ADDR), "DEL", ADDRESS], check=False, capture_output=True)  # noqa: ASYNC221


if __name__ == "__main__":
    asyncio.run(_publishers(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
