"""The whole product, as a Twilio customer uses it: a Composition Hook is defined, a WebRTC participant
publishes camera and microphone into a room over WHIP, the room is completed through REST, its tracks are
recorded, and the hook composes the room by itself. Checked through the official twilio client, the signed
callbacks, and the decoded composition (the publisher's colour and its 440 Hz tone)."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from libs.testing.callbacks import Received, serve_receiver
from tests.e2e.conftest import new_tenant
from tests.e2e.peers import COLOUR_RGB, NETNS_ADDR, TONE_HZ, Peer, poll, token

pytestmark = pytest.mark.e2e

PUBLISHER_IP = "10.77.0.71"
PUBLISH_SECONDS = 8.0


@pytest.fixture
def publisher_address() -> Iterator[str]:
    subprocess.run([str(NETNS_ADDR), "ADD", PUBLISHER_IP], check=True, capture_output=True)
    yield PUBLISHER_IP
    subprocess.run([str(NETNS_ADDR), "DEL", PUBLISHER_IP], check=False, capture_output=True)


def _events(calls: list[Received]) -> list[str]:
    return [c.form["StatusCallbackEvent"] for c in calls]


def _decode(path: Path) -> tuple[list[float], float, float]:
    """(mean RGB of the middle video frame's centre, dominant audio frequency in Hz, video seconds)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        rate = container.streams.video[0].average_rate or 30
    with av.open(str(path)) as container:
        samples = np.concatenate(
            [f.to_ndarray().astype(np.float64).mean(axis=0) for f in container.decode(audio=0)]
        )
        sample_rate = container.streams.audio[0].rate
    middle = frames[len(frames) // 2]
    h, w, _ = middle.shape
    centre = middle[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).mean(axis=0)
    spectrum = np.abs(np.fft.rfft(samples[len(samples) // 4 : 3 * len(samples) // 4]))
    freqs = np.fft.rfftfreq(len(samples[len(samples) // 4 : 3 * len(samples) // 4]), 1 / sample_rate)
    return [float(v) for v in centre], float(freqs[int(np.argmax(spectrum))]), len(frames) / float(rate)


async def test_a_hook_composes_a_recorded_webrtc_room(
    devstack: dict[str, str], publisher_address: str
) -> None:
    tenant = new_tenant(devstack["MIXDOWN_URL"], f"flow-{uuid.uuid4().hex[:6]}")
    client = tenant.client()
    name = f"flow-{uuid.uuid4().hex[:8]}"
    async with serve_receiver() as receiver, httpx.AsyncClient(base_url=tenant.base_url, timeout=30) as http:
        receiver.on("/room-events")
        receiver.on("/hook-events")
        hook = client.video.v1.composition_hooks.create(
            friendly_name="everything",
            video_layout={"grid": {"video_sources": ["*"]}},
            audio_sources=["*"],
            format="mp4",
            status_callback=receiver.url("/hook-events"),
        )
        room = client.video.v1.rooms.create(
            unique_name=name,
            record_participants_on_connect=True,
            status_callback=receiver.url("/room-events"),
        )
        assert room.record_participants_on_connect is True

        publisher = await Peer.start("publish", publisher_address, PUBLISH_SECONDS + 30)
        try:
            offer = (await publisher.until(lambda line: "offer" in line))["offer"]
            whip = await http.post(
                f"/whip/{name}?audio_track_name=mic&video_track_name=cam",
                content=offer,
                headers={
                    "Content-Type": "application/sdp",
                    "Authorization": f"Bearer {token(tenant, 'ann', name)}",
                },
            )
            assert whip.status_code == 201, whip.text
            await publisher.send({"answer": whip.text})

            def recording_started() -> bool:
                return _events(receiver.at("/room-events")).count("recording-started") == 2

            await poll(recording_started, 30, "recording-started for both tracks")
            await asyncio.sleep(PUBLISH_SECONDS)
            completed = client.video.v1.rooms(room.sid).update(status="completed")
            assert completed.status == "completed"
        finally:
            await publisher.stop()

        # Both tracks become Recordings, announced by signed recording-completed callbacks.
        def recordings_done() -> bool:
            return _events(receiver.at("/room-events")).count("recording-completed") == 2

        await poll(recordings_done, 60, "recording-completed for both tracks")
        recordings = client.video.v1.rooms(room.sid).recordings.list()
        assert sorted((r.type, r.container_format, r.codec) for r in recordings) == [
            ("audio", "mka", "OPUS"),
            ("video", "mkv", "VP8"),
        ]
        assert all(r.status == "completed" and r.duration >= PUBLISH_SECONDS - 2 for r in recordings)

        # The hook composed the room without being asked.
        def composition_available() -> bool:
            return "composition-available" in _events(receiver.at("/hook-events"))

        await poll(composition_available, 180, "the hook's composition-available callback")
        hook_calls = receiver.at("/hook-events")
        events = _events(hook_calls)
        assert events[0] == "composition-enqueued"
        assert events.index("composition-started") < events.index("composition-available")
        assert events[-1] == "composition-available"
        validator = RequestValidator(tenant.auth_token)
        for call in [*hook_calls, *receiver.at("/room-events")]:
            assert validator.validate(call.url, call.form, call.headers["x-twilio-signature"]), call.form
        available = hook_calls[-1].form
        assert available["RoomSid"] == room.sid
        sid = available["CompositionSid"]

        composition = client.video.v1.compositions(sid).fetch()
        assert composition.status == "completed"
        assert composition.room_sid == room.sid
        assert composition.format == "mp4"
        assert composition.duration >= PUBLISH_SECONDS - 2
        assert [c.sid for c in client.video.v1.compositions.list(room_sid=room.sid)] == [sid]
        assert hook.sid == available.get("CompositionHookSid", hook.sid)

        media = await http.get(f"/v1/Compositions/{sid}/Media", auth=(tenant.api_key, tenant.api_secret))
        assert media.status_code == 302
        download = await http.get(media.json()["redirect_to"])
        assert download.status_code == 200
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{sid}.mp4"
            path.write_bytes(download.content)
            colour, tone_hz, video_s = _decode(path)
        for got, want in zip(colour, COLOUR_RGB, strict=True):
            assert abs(got - want) < 30, colour
        assert abs(tone_hz - TONE_HZ) < 5, tone_hz
        assert video_s >= PUBLISH_SECONDS - 2
