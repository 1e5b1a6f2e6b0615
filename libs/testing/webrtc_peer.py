"""A scripted aiortc WebRTC peer, run inside the media netns by the integration tests.

    ip netns exec <ns> .venv/bin/python webrtc_peer.py publish|subscribe <local address> <seconds>

publish:   prints {"offer": sdp}, reads {"answer": sdp}, then sends a synthetic 440 Hz tone and a
           solid-colour 320x240 video for <seconds>, and prints {"connection": state, ...}.
subscribe: reads {"offer": sdp}, prints {"answer": sdp}, receives for <seconds> (printing
           {"tick": true, "video_frames", "audio_frames"} every 0.25 s), then prints what it decoded:
           {"video_frames", "audio_frames", "mean_rgb", "connection"}.
No STUN server; ICE host candidates are pinned to <local address> (it must sit on the Janus ICE
interface).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import sys
import time

import aioice.ice
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

COLOUR_RGB = (200, 40, 60)
SAMPLE_RATE = 48_000
SAMPLES = 960  # 20 ms


class ToneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(SAMPLES) + self._pts) / SAMPLE_RATE
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pts += SAMPLES
        return frame


class ColourTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._start: float | None = None
        image = np.zeros((240, 320, 3), dtype=np.uint8)
        image[:, :] = COLOUR_RGB
        self._image = image

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._count / 30 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = self._count * 3000
        frame.time_base = fractions.Fraction(1, 90_000)
        self._count += 1
        return frame


def emit(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def read_json() -> dict[str, object]:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    loaded = json.loads(line)
    assert isinstance(loaded, dict)
    return loaded


async def publish(pc: RTCPeerConnection, seconds: float) -> None:
    pc.addTransceiver(ToneTrack(), direction="sendonly")
    pc.addTransceiver(ColourTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    emit({"offer": pc.localDescription.sdp})
    answer = await read_json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=str(answer["answer"]), type="answer"))
    await asyncio.sleep(seconds)
    emit({"connection": pc.connectionState})


async def subscribe(pc: RTCPeerConnection, seconds: float) -> None:
    counts = {"video": 0, "audio": 0}
    colours: list[list[float]] = []
    tasks: list[asyncio.Task[None]] = []

    async def consume(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                counts[track.kind] += 1
                if isinstance(frame, av.VideoFrame) and counts["video"] % 10 == 0:
                    rgb = frame.to_ndarray(format="rgb24")
                    colours.append([float(v) for v in rgb.reshape(-1, 3).mean(axis=0)])

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tasks.append(asyncio.ensure_future(consume(track)))

    offer = await read_json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=str(offer["offer"]), type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    emit({"answer": pc.localDescription.sdp})
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        emit({"tick": True, "video_frames": counts["video"], "audio_frames": counts["audio"]})
    mean = [sum(c[i] for c in colours) / len(colours) for i in range(3)] if colours else None
    emit(
        {
            "connection": pc.connectionState,
            "video_frames": counts["video"],
            "audio_frames": counts["audio"],
            "mean_rgb": mean,
        }
    )
    for task in tasks:
        task.cancel()


async def main() -> None:
    mode, address, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        if mode == "publish":
            await publish(pc, seconds)
        else:
            await subscribe(pc, seconds)
    finally:
        await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
