"""A scripted aiortc WebRTC peer, run inside the media netns by the integration tests.

    ip netns exec <ns> .venv/bin/python webrtc_peer.py publish|subscribe <local address> <seconds> [R,G,B]

publish:   prints {"offer": sdp}, reads {"answer": sdp}, then sends a synthetic 440 Hz tone and a
           solid-colour 320x240 video (COLOUR_RGB, or R,G,B) for <seconds>, and prints
           {"connection": state, ...}.
subscribe: reads {"offer": sdp}, prints {"answer": sdp}, receives for <seconds> (printing
           {"tick": true, "video_frames", "audio_frames", "video": {mid: {"frames", "rgb"}}} every
           0.25 s; "rgb" is the mean colour of that track's latest sampled frame), then prints what it
           decoded: {"video_frames", "audio_frames", "mean_rgb", "connection"}. Every further
           {"offer": sdp} line (a renegotiation on the same PeerConnection) is answered with
           {"answer": sdp}.
No STUN server; ICE host candidates are pinned to <local address> (it must sit on the Janus ICE
interface).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import sys
import threading
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

    def __init__(self, colour: tuple[int, int, int] = COLOUR_RGB) -> None:
        super().__init__()
        self._count = 0
        self._start: float | None = None
        image = np.zeros((240, 320, 3), dtype=np.uint8)
        image[:, :] = colour
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


async def publish(pc: RTCPeerConnection, seconds: float, colour: tuple[int, int, int]) -> None:
    pc.addTransceiver(ToneTrack(), direction="sendonly")
    pc.addTransceiver(ColourTrack(colour), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    emit({"offer": pc.localDescription.sdp})
    answer = await read_json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=str(answer["answer"]), type="answer"))
    await asyncio.sleep(seconds)
    emit({"connection": pc.connectionState})


class Reception:
    """What a subscriber decoded: totals per kind, and per video m-line (mid) a count and latest colour."""

    def __init__(self) -> None:
        self.counts = {"video": 0, "audio": 0}
        self.colours: list[list[float]] = []
        self.video: dict[str, dict[str, object]] = {}

    async def consume(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None) or "?"
        per_track: dict[str, object] = {"frames": 0, "rgb": None}
        if track.kind == "video":
            self.video[mid] = per_track
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.counts[track.kind] += 1
                if isinstance(frame, av.VideoFrame):
                    frames = int(str(per_track["frames"])) + 1
                    per_track["frames"] = frames
                    if frames % 10 == 1:
                        rgb = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
                        per_track["rgb"] = [round(float(v), 1) for v in rgb]
                        self.colours.append([float(v) for v in rgb])

    def tick(self) -> dict[str, object]:
        return {
            "tick": True,
            "video_frames": self.counts["video"],
            "audio_frames": self.counts["audio"],
            "video": {mid: dict(v) for mid, v in self.video.items()},
        }


def stdin_lines() -> asyncio.Queue[str]:
    """Lines of stdin, read by a daemon thread (an executor thread would keep the process alive at exit)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


async def answer_offers(pc: RTCPeerConnection, answered: asyncio.Event) -> None:
    """Answer the first offer and every renegotiation offer that arrives on stdin."""
    lines = stdin_lines()
    while True:
        message = json.loads(await lines.get())
        if not isinstance(message, dict) or "offer" not in message:
            continue
        await pc.setRemoteDescription(RTCSessionDescription(sdp=str(message["offer"]), type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"answer": pc.localDescription.sdp})
        answered.set()


async def subscribe(pc: RTCPeerConnection, seconds: float) -> None:
    reception = Reception()
    tasks: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tasks.append(asyncio.ensure_future(reception.consume(pc, track)))

    answered = asyncio.Event()
    signalling = asyncio.ensure_future(answer_offers(pc, answered))
    await answered.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        emit(reception.tick())
    colours = reception.colours
    mean = [sum(c[i] for c in colours) / len(colours) for i in range(3)] if colours else None
    emit(
        {
            "connection": pc.connectionState,
            "video_frames": reception.counts["video"],
            "audio_frames": reception.counts["audio"],
            "mean_rgb": mean,
        }
    )
    signalling.cancel()
    for task in tasks:
        task.cancel()


async def main() -> None:
    mode, address, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    colour = COLOUR_RGB
    if len(sys.argv) > 4:
        r, g, b = (int(v) for v in sys.argv[4].split(","))
        colour = (r, g, b)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [address]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        if mode == "publish":
            await publish(pc, seconds, colour)
        else:
            await subscribe(pc, seconds)
    finally:
        await pc.close()


if __name__ == "__main__":
    asyncio.run(main())
