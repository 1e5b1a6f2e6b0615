"""JanusClient against a real Janus: rooms, a WHIP-style publisher, RTP forwarding, a WHEP-style
subscriber, kick, events (long poll and event handler) and session recovery."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtp import RtpPacket

from libs.events.sids import ParticipantSid, RoomSid
from libs.janus.client import ForwardStream, JanusClient, JanusMessage, StreamToggle, SubscribeStream
from libs.janus.errors import JanusError
from libs.janus.events import (
    MediaReceiving,
    ParticipantJoined,
    ParticipantLeft,
    RtpForwardStarted,
    StreamsPublished,
    WebrtcUp,
)
from libs.testing.scratch_janus import ScratchJanus
from services.room.domain import RoomRequest, build_room_spec, janus_codecs
from services.room.sdp import parse_sdp
from services.room.tests.integration.conftest import JanusTarget
from services.room.tracks import name_tracks, offered_tracks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PEER_SCRIPT = Path(__file__).resolve().parents[4] / "libs" / "testing" / "webrtc_peer.py"
REPO = Path(__file__).resolve().parents[4]


class Peer:
    """The aiortc script running inside the media netns, driven through JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, target: JanusTarget, mode: str, seconds: float) -> Peer:
        process = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            target.netns,
            sys.executable,
            str(PEER_SCRIPT),
            mode,
            target.peer_ip,
            str(seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        return cls(process)

    async def read(self, wait: float = 30.0) -> dict[str, object]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), wait)
        assert line, "peer exited without output"
        loaded = json.loads(line)
        assert isinstance(loaded, dict)
        return loaded

    async def wait_tick(
        self, predicate: Callable[[dict[str, int]], bool], *, skip: int = 0
    ) -> dict[str, int]:
        """Subscriber progress: the first tick (after skipping `skip`) that satisfies `predicate`."""
        seen = 0
        while True:
            line = await self.read(wait=15)
            assert line.get("tick"), f"peer finished before the expected progress: {line}"
            tick = {k: v for k, v in line.items() if isinstance(v, int) and not isinstance(v, bool)}
            seen += 1
            if seen > skip and predicate(tick):
                return tick

    async def send(self, payload: dict[str, object]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(payload) + "\n").encode())
        await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


class RtpSink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.addr: tuple[str, int] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.addr = addr
        if len(data) >= 12 and data[0] >> 6 == 2 and not 200 <= data[1] <= 206:
            self.packets.append(RtpPacket.parse(data))


async def listen_udp(host: str) -> tuple[asyncio.DatagramTransport, RtpSink, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    transport, sink = await asyncio.get_running_loop().create_datagram_endpoint(RtpSink, sock=sock)
    return transport, sink, sock.getsockname()[1]


def vp8_keyframe(packet: RtpPacket) -> bool:
    descriptor, payload = VpxPayloadDescriptor.parse(packet.payload)
    return bool(
        descriptor.partition_start and descriptor.partition_id == 0 and payload and payload[0] & 1 == 0
    )


async def until(predicate: object, wait: float, what: str) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def janus(janus_target: JanusTarget) -> AsyncIterator[JanusClient]:
    async with JanusClient(
        janus_target.url, admin_key=janus_target.admin_key, api_secret=janus_target.api_secret
    ) as client:
        yield client


async def test_room_admin_requests(janus: JanusClient) -> None:
    room = RoomSid.new()
    secret = secrets.token_hex(8)
    assert not await janus.exists(room)
    await janus.create_room(
        room, publishers=50, videocodec="vp8,h264", audiocodec="opus", bitrate=1_000_000, secret=secret
    )
    assert await janus.exists(room)
    assert await janus.list_participants(room) == []
    assert await janus.list_forwarders(room, secret=secret) == {}
    with pytest.raises(JanusError) as caught:
        await janus.create_room(room, publishers=50, secret=secret)
    assert caught.value.code == 427
    with pytest.raises(JanusError) as caught:
        await janus.destroy_room(room, secret="wrong")
    assert caught.value.code == 433  # unauthorized
    await janus.destroy_room(room, secret=secret)
    assert not await janus.exists(room)
    with pytest.raises(JanusError) as caught:
        await janus.list_participants(room)
    assert caught.value.code == 426


async def test_publish_forward_subscribe_kick(janus: JanusClient, janus_target: JanusTarget) -> None:
    room, participant = RoomSid.new(), ParticipantSid.new()
    secret = secrets.token_hex(8)
    await janus.create_room(room, publishers=10, videocodec="vp8", secret=secret)
    publisher_peer = await Peer.start(janus_target, "publish", seconds=25)
    subscriber_peer: Peer | None = None
    transport_v = transport_a = None
    try:
        offer = str((await publisher_peer.read())["offer"])
        offered = offered_tracks(parse_sdp(offer))
        assert [t.kind for t in offered] == ["audio", "video"]
        named = name_tracks(offered, {"video_track_name": "camera"}, (), lambda: "unused")
        assert named[0][1] == offered[0].msid_track  # aiortc's MediaStreamTrack id
        assert named[1][1] == "camera"

        handle = await janus.publisher()
        joined = await handle.join(room, participant_id=participant, display="alice")
        assert joined.participant_id == participant
        published = await handle.publish(offer, descriptions=[(t.mid, name) for t, name in named])
        assert [(s.type, s.mid, s.codec) for s in published.streams] == [
            ("audio", "0", "opus"),
            ("video", "1", "vp8"),
        ]
        answer = parse_sdp(published.answer_sdp)
        assert [m.direction for m in answer.media] == ["recvonly", "recvonly"]
        await publisher_peer.send({"answer": published.answer_sdp})

        def is_webrtcup(message: JanusMessage) -> bool:
            return message.janus == "webrtcup"

        await handle.wait_event(is_webrtcup, wait=15)
        assert [(p.id, p.display, p.publisher) for p in await janus.list_participants(room)] == [
            (participant, "alice", True)
        ]

        # RTP forwarding of both streams to the host side; RTCP on video so Janus accepts PLIs.
        transport_v, video, video_port = await listen_udp(janus_target.forward_host)
        transport_a, audio, audio_port = await listen_udp(janus_target.forward_host)
        forwarders = await janus.rtp_forward(
            room,
            participant,
            janus_target.forward_host,
            [ForwardStream("1", video_port, video_port + 1), ForwardStream("0", audio_port)],
            secret=secret,
        )
        assert sorted((f.type, f.port) for f in forwarders) == [("audio", audio_port), ("video", video_port)]
        await handle.configure(keyframe=True)
        await until(lambda: len(video.packets) >= 30 and len(audio.packets) >= 25, 10, "forwarded RTP")
        await until(lambda: any(vp8_keyframe(p) for p in video.packets), 10, "a VP8 keyframe after configure")
        assert {p.payload_type for p in audio.packets} == {answer.media[0].codecs[0].payload_type}
        assert {p.payload_type for p in video.packets} == {answer.media[1].codecs[0].payload_type}
        listed = await janus.list_forwarders(room, secret=secret)
        assert sorted(f.port or 0 for f in listed[participant]) == sorted([audio_port, video_port])
        for forwarder in forwarders:
            await janus.stop_rtp_forward(room, participant, forwarder.stream_id, secret=secret)
        assert (await janus.list_forwarders(room, secret=secret)).get(participant, []) == []

        # WHEP-style viewer: Janus offers, the client answers.
        subscriber_peer = await Peer.start(janus_target, "subscribe", seconds=9)
        viewer = await janus.subscriber()
        subscription = await viewer.join(room, [SubscribeStream(participant)])
        assert sorted((s.type, s.feed_id) for s in subscription.streams) == [
            ("audio", participant),
            ("video", participant),
        ]
        assert all(m.direction == "sendonly" for m in parse_sdp(subscription.offer_sdp).media)
        await subscriber_peer.send({"offer": subscription.offer_sdp})
        viewer_answer = str((await subscriber_peer.read())["answer"])
        await viewer.start(viewer_answer)
        # Subscribe rules: pausing the video stream stops its frames while audio keeps flowing;
        # resuming brings video back, all without renegotiation.
        video_mid = next(s.mid for s in subscription.streams if s.type == "video")
        tick = await subscriber_peer.wait_tick(lambda t: t["video_frames"] >= 15)
        await viewer.configure([StreamToggle(video_mid, False)])
        paused = await subscriber_peer.wait_tick(lambda t: True, skip=4)  # 1 s for in-flight frames
        later = await subscriber_peer.wait_tick(lambda t: True, skip=4)
        assert later["video_frames"] - paused["video_frames"] <= 2, (paused, later)
        assert later["audio_frames"] - paused["audio_frames"] >= 30, (paused, later)
        await viewer.configure([StreamToggle(video_mid, True)])
        await subscriber_peer.wait_tick(lambda t: t["video_frames"] >= later["video_frames"] + 15)
        assert tick["video_frames"] >= 15
        with pytest.raises(JanusError) as caught:
            await viewer.configure([StreamToggle("no-such-mid", False)])
        assert caught.value.code == 428
        report = await subscriber_peer.read(wait=30)
        while report.get("tick"):
            report = await subscriber_peer.read(wait=30)
        assert report["connection"] == "connected"
        assert isinstance(report["video_frames"], int) and report["video_frames"] >= 30
        assert isinstance(report["audio_frames"], int) and report["audio_frames"] >= 50
        mean = report["mean_rgb"]
        assert isinstance(mean, list)
        assert all(abs(got - want) < 20 for got, want in zip(mean, (200, 40, 60), strict=True)), mean
        await viewer.leave()
        await viewer.detach()

        # Kick drops the participant.
        await janus.kick(room, participant, secret=secret)
        for _ in range(40):
            if not await janus.list_participants(room):
                break
            await asyncio.sleep(0.1)
        assert await janus.list_participants(room) == []

        sink = janus_target.sink
        if sink is not None:  # the event handler saw the whole story
            await sink.wait_for(
                lambda e: isinstance(e, ParticipantJoined) and e.participant_id == participant
            )
            published_event = await sink.wait_for(
                lambda e: isinstance(e, StreamsPublished) and e.participant_id == participant
            )
            assert isinstance(published_event, StreamsPublished)
            assert [(s.type, s.mid, s.codec) for s in published_event.streams] == [
                ("audio", "0", "opus"),
                ("video", "1", "vp8"),
            ]
            assert published_event.room == room
            await sink.wait_for(lambda e: isinstance(e, WebrtcUp) and e.meta.handle_id == handle.handle_id)
            await sink.wait_for(lambda e: isinstance(e, MediaReceiving) and e.receiving)
            forward = await sink.wait_for(lambda e: isinstance(e, RtpForwardStarted) and e.port == video_port)
            assert isinstance(forward, RtpForwardStarted)
            assert (forward.room, forward.publisher_id, forward.media) == (room, participant, "video")
            left = await sink.wait_for(
                lambda e: isinstance(e, ParticipantLeft) and e.participant_id == participant
            )
            assert isinstance(left, ParticipantLeft)
            assert (left.room, left.kicked) == (room, True)
        await handle.detach()
    finally:
        for transport in (transport_v, transport_a):
            if transport is not None:
                transport.close()
        await publisher_peer.stop()
        if subscriber_peer is not None:
            await subscriber_peer.stop()
        await janus.destroy_room(room, secret=secret)


async def test_h264_room_negotiates_h264(janus: JanusClient, janus_target: JanusTarget) -> None:
    spec = build_room_spec(RoomRequest(video_codecs=["H264"]))
    videocodec, audiocodec = janus_codecs(spec)
    room, participant = RoomSid.new(), ParticipantSid.new()
    await janus.create_room(
        room, publishers=spec.max_participants, videocodec=videocodec, audiocodec=audiocodec, secret="s"
    )
    peer = await Peer.start(janus_target, "publish", seconds=3)
    try:
        offer = str((await peer.read())["offer"])
        handle = await janus.publisher()
        await handle.join(room, participant_id=participant)
        published = await handle.publish(offer)
        assert [(s.type, s.codec) for s in published.streams] == [("audio", "opus"), ("video", "h264")]
        assert parse_sdp(published.answer_sdp).media[1].codec_names() == ("H264",)
        await handle.detach()
    finally:
        await peer.stop()
        await janus.destroy_room(room, secret="s")


async def test_session_recovery_against_real_janus(janus_target: JanusTarget) -> None:
    lost: list[int] = []

    async def on_lost(session: int) -> None:
        lost.append(session)

    async with JanusClient(
        janus_target.url,
        admin_key=janus_target.admin_key,
        api_secret=janus_target.api_secret,
        on_session_lost=on_lost,
    ) as client:
        first = client.session_id
        assert first is not None
        # Destroy the session behind the client's back, as a Janus session timeout would.
        async with httpx.AsyncClient() as http:
            answer = (
                await http.post(f"{janus_target.url}/{first}", json={"janus": "destroy", "transaction": "x"})
            ).json()
        assert answer["janus"] == "success"
        room = RoomSid.new()
        await client.create_room(room, publishers=1, secret="s")
        assert client.session_id not in (None, first)
        assert lost == [first]
        assert await client.exists(room)
        await client.destroy_room(room, secret="s")


@pytest.fixture
def private_janus() -> Iterator[ScratchJanus]:
    """A Janus of this test alone (it gets restarted)."""
    janus = ScratchJanus.create(sink_port=9)
    try:
        janus.start()
        yield janus
    finally:
        janus.stop()


async def test_janus_restart_is_survived(private_janus: ScratchJanus) -> None:
    lost: list[int] = []
    replaced = asyncio.Event()

    async def on_lost(session: int) -> None:
        lost.append(session)
        replaced.set()

    async with JanusClient(
        private_janus.url, admin_key=private_janus.admin_key, on_session_lost=on_lost
    ) as client:
        first = client.session_id
        assert first is not None
        publisher = await client.publisher()
        room = RoomSid.new()
        await client.create_room(room, publishers=1, secret="s")
        await asyncio.to_thread(private_janus.restart)
        # The long poll notices: a new session replaces the old one, and the hook reports the loss.
        await asyncio.wait_for(replaced.wait(), 20)
        assert lost == [first]
        assert client.session_id not in (None, first)
        assert publisher.lost
        # Janus forgot its rooms; the client works on the new session.
        assert not await client.exists(room)
        await client.create_room(room, publishers=1, secret="s")
        assert await client.exists(room)
