"""End to end through real UDP: encoded VP8/H.264/Opus → RTP (reordered, with a gap) → TrackRecorder →
chunks in a store → finalize → decode the .mkv/.mka and check frames, colours, tone, duration, cues."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from services.recorder.chunks import chunk_prefix
from services.recorder.depacketize import Codec
from services.recorder.errors import EmptyRecordingError
from services.recorder.finalize import FinalizeResult, finalize, manifest_key
from services.recorder.receiver import DatagramReceiver, PortAllocator, attach
from services.recorder.rtcp import RTCP_PSFB, build_sender_report
from services.recorder.tests.media.synthetic import (
    BG_RGB,
    EncodedFrame,
    RtpDatagram,
    encode_tone,
    encode_video,
    read_frame_number,
    rtp_stream,
    shuffle_locally,
)
from services.recorder.tests.unit.memory_store import FlakyStore
from services.recorder.track_recorder import TrackRecorder, TrackRecorderConfig

pytestmark = [pytest.mark.media, pytest.mark.timeout(60)]

FRAMES = 135  # 4.5 s at 30 fps; keyframes at 0, 8 (forced), 68, 128
FIRST_SENT = 2  # the forwarder starts mid-GOP, like Janus's rtp_forward does
GAP_FRAME = 90  # one packet of this frame is lost: video resumes at the keyframe 128
EXPECTED_FRAMES = [*range(8, GAP_FRAME), *range(128, FRAMES)]
SPEED = 3.0
MATROSKA_CUES_ID = bytes.fromhex("1c53bb6b")
MATROSKA_DURATION_ID = bytes.fromhex("4489")


@pytest.fixture(scope="module")
def vp8_frames() -> list[EncodedFrame]:
    return encode_video(Codec.VP8, FRAMES, forced_keyframes=frozenset({8}))


@pytest.fixture(scope="module")
def h264_frames() -> list[EncodedFrame]:
    return encode_video(Codec.H264, FRAMES, forced_keyframes=frozenset({8}))


@pytest.fixture(scope="module")
def tone() -> list[bytes]:
    return encode_tone(4.5)


@pytest.fixture
def allocator() -> PortAllocator:
    return PortAllocator("127.0.0.1", 31000, 31999)


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mixdown-rec-test-") as d:
        yield Path(d)


class FakeJanus:
    """Sends RTP like rtp_forward and RTCP from its own socket; records the PLIs it gets back."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.plis: list[bytes] = []
        self._rtcp = DatagramReceiver(lambda data, addr: self.plis.append(data))

    async def start(self) -> None:
        self._rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtcp_sock.bind(("127.0.0.1", 0))
        self._transport = await attach(self._rtcp_sock, self._rtcp)

    def send_rtcp(self, data: bytes, port: int) -> None:
        assert self._transport is not None
        self._transport.sendto(data, ("127.0.0.1", port))

    async def play(self, datagrams: list[RtpDatagram], port: int, speed: float = SPEED) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for d in datagrams:
            delay = start + d.media_time / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.sock.sendto(d.data, ("127.0.0.1", port))

    def close(self) -> None:
        self._transport.close()
        self.sock.close()


def drop_one_packet_of(datagrams: list[RtpDatagram], frame: int) -> list[RtpDatagram]:
    idx = next(i for i, d in enumerate(datagrams) if d.frame == frame)
    return datagrams[:idx] + datagrams[idx + 1 :]


def decode_video(path: Path) -> tuple[list[int], list[float], np.ndarray, float]:
    numbers, times = [], []
    bg = np.zeros(3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(container.duration or 0) / 1e6
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            numbers.append(read_frame_number(rgb))
            times.append(float(frame.time or 0))
            bg = rgb[-40:, :, :].reshape(-1, 3).mean(axis=0)
    return numbers, times, bg, duration


def first_frame_after_seek(path: Path, seconds: float) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        container.seek(int(seconds * av.time_base))
        frame = next(container.decode(stream))
        return read_frame_number(frame.to_ndarray(format="rgb24"))


def ffprobe_duration(path: Path) -> float | None:
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    out = subprocess.run(
        [exe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def ffmpeg_decode_errors(path: Path) -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        return ""
    out = subprocess.run(
        [exe, "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True
    )
    return out.stderr.strip()


async def export(store: FlakyStore, result: FinalizeResult, workdir: Path) -> Path:
    path = workdir / result.key.replace("/", "_")
    path.write_bytes(store.read(result.key))
    return path


def check_video_file(path: Path, result: FinalizeResult, codec: Codec) -> None:
    numbers, times, bg, duration = decode_video(path)
    assert numbers == EXPECTED_FRAMES, "frames missing or reordered after the first keyframe"
    # Timestamps come from RTP: the gap left by the dropped frames is preserved.
    assert times == pytest.approx([(n - 8) / 30 for n in numbers], abs=0.002)
    assert np.abs(bg - np.array(BG_RGB)).max() < 20
    expected = (FRAMES - 8) / 30
    assert duration == pytest.approx(expected, abs=0.1)
    assert result.duration_ms / 1000 == pytest.approx(expected, abs=0.1)
    assert (result.width, result.height, result.codec) == (320, 240, codec.value)
    assert result.frames == len(EXPECTED_FRAMES)
    assert result.keyframes == 3
    data = path.read_bytes()
    assert MATROSKA_CUES_ID in data and MATROSKA_DURATION_ID in data
    # Seeking to the middle lands on the keyframe at or before it (68 is at 2.0 s).
    assert first_frame_after_seek(path, 2.1) == 68
    probed = ffprobe_duration(path)
    if probed is not None:
        assert probed == pytest.approx(expected, abs=0.1)
    assert ffmpeg_decode_errors(path) == ""


async def test_vp8_and_opus_recorded_through_udp(
    vp8_frames: list[EncodedFrame], tone: list[bytes], allocator: PortAllocator, workdir: Path
) -> None:
    store = FlakyStore()
    config = TrackRecorderConfig(chunk_seconds=1.5, tick_seconds=0.05, pli_retry=0.2)
    v_rtp, v_rtcp = allocator.allocate(2)
    (a_rtp,) = allocator.allocate(1)
    video = TrackRecorder(Codec.VP8, store, "rec/RTvideo", v_rtp, v_rtcp, config)
    audio = TrackRecorder(Codec.OPUS, store, "rec/RTaudio", a_rtp, None, config)
    await video.start()
    await audio.start()
    janus = FakeJanus()
    await janus.start()
    assert video.rtcp_port is not None
    janus.send_rtcp(build_sender_report(0x5EED, 0xE000000000000000, 0xFFFF0000, 0, 0), video.rtcp_port)

    v_dgrams = rtp_stream(Codec.VP8, [f.data for f in vp8_frames], ssrc=0x5EED)
    v_dgrams = [d for d in v_dgrams if d.frame >= FIRST_SENT]
    v_dgrams = shuffle_locally(drop_one_packet_of(v_dgrams, GAP_FRAME), every=7)
    a_dgrams = rtp_stream(Codec.OPUS, tone, ssrc=0xA0D10)
    a_dgrams = shuffle_locally([d for d in a_dgrams if not 100 <= d.frame < 105], every=5)
    await asyncio.gather(janus.play(v_dgrams, video.rtp_port), janus.play(a_dgrams, audio.rtp_port))
    # An SR after the stream: RTP ts of frame 134 ↔ an NTP time, kept as sidecar metadata.
    janus.send_rtcp(
        build_sender_report(0x5EED, 0xE000000500000000, (0xFFFF0000 + 134 * 3000) & 0xFFFFFFFF, 0, 0),
        video.rtcp_port,
    )
    await asyncio.sleep(0.2)
    v_stats = await video.stop()
    a_stats = await audio.stop()
    janus.close()

    assert v_stats.packets == len(v_dgrams)
    assert v_stats.lost == 1 and v_stats.reordered > 0
    assert v_stats.keyframes == 3 and v_stats.frames == len(EXPECTED_FRAMES)
    assert v_stats.plis_sent >= 1 and v_stats.sender_reports == 1
    assert janus.plis and janus.plis[0][1] == RTCP_PSFB and janus.plis[0][0] & 0x1F == 1
    assert int.from_bytes(janus.plis[0][8:12], "big") == 0x5EED
    assert (a_stats.lost, a_stats.frames) == (5, len(tone) - 5)
    assert v_stats.chunks >= 3  # cut every 1.5 s of media

    v_result = await finalize(store, "rec/RTvideo")
    assert v_result.sender_report_ntp == 0xE000000500000000
    assert v_result.sender_report_pts == (134 - 8) * 3000
    assert v_result.container_format == "mkv" and v_result.key == "rec/RTvideo/media.mkv"
    info = await store.stat(v_result.key)
    assert info is not None and info.content_type == "video/x-matroska"
    assert info.size == v_result.size_bytes
    assert await store.keys(chunk_prefix("rec/RTvideo")) == []
    check_video_file(await export(store, v_result, workdir), v_result, Codec.VP8)

    a_result = await finalize(store, "rec/RTaudio")
    a_path = await export(store, a_result, workdir)
    assert a_result.container_format == "mka" and a_result.codec == "OPUS"
    assert a_result.duration_ms / 1000 == pytest.approx(4.5, abs=0.1)
    with av.open(str(a_path)) as container:
        stream = container.streams.audio[0]
        extradata = stream.codec_context.extradata
        assert extradata is not None and extradata[:8] == b"OpusHead"
        assert stream.codec_context.channels == 2
        assert float(container.duration or 0) / 1e6 == pytest.approx(4.5, abs=0.1)
        pcm = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    peak_hz = np.argmax(spectrum) * 48000 / len(pcm)
    assert peak_hz == pytest.approx(440, abs=3)
    assert ffmpeg_decode_errors(a_path) == ""

    # Idempotent: a second run (e.g. after a crash between upload and chunk deletion) returns the same result.
    assert await finalize(store, "rec/RTvideo") == v_result
    assert manifest_key("rec/RTvideo") in await store.keys()


async def test_h264_recorded_through_udp(
    h264_frames: list[EncodedFrame], allocator: PortAllocator, workdir: Path
) -> None:
    store = FlakyStore()
    config = TrackRecorderConfig(chunk_seconds=1.5, tick_seconds=0.05)
    rtp_sock, rtcp_sock = allocator.allocate(2)
    video = TrackRecorder(Codec.H264, store, "rec/RTh264", rtp_sock, rtcp_sock, config)
    await video.start()
    janus = FakeJanus()
    await janus.start()
    dgrams = rtp_stream(Codec.H264, [f.data for f in h264_frames], ssrc=0x264)
    dgrams = [d for d in dgrams if d.frame >= FIRST_SENT]
    await janus.play(shuffle_locally(drop_one_packet_of(dgrams, GAP_FRAME), every=5), video.rtp_port)
    await asyncio.sleep(0.2)
    stats = await video.stop()
    janus.close()
    assert stats.lost == 1
    result = await finalize(store, "rec/RTh264")
    path = await export(store, result, workdir)
    with av.open(str(path)) as container:
        extradata = container.streams.video[0].codec_context.extradata
        assert extradata is not None and extradata[0] == 1  # avcC, not Annex-B
    check_video_file(path, result, Codec.H264)


async def test_nothing_received_is_an_empty_recording(allocator: PortAllocator) -> None:
    store = FlakyStore()
    (sock,) = allocator.allocate(1)
    rec = TrackRecorder(Codec.OPUS, store, "rec/RTempty", sock)
    await rec.start()
    stats = await rec.stop()
    assert stats.packets == 0 and stats.chunks == 0
    with pytest.raises(EmptyRecordingError):
        await finalize(store, "rec/RTempty")


async def test_video_without_keyframe_is_empty(
    vp8_frames: list[EncodedFrame], allocator: PortAllocator
) -> None:
    store = FlakyStore()
    (sock,) = allocator.allocate(1)
    rec = TrackRecorder(Codec.VP8, store, "rec/RTnokey", sock)
    await rec.start()
    janus = FakeJanus()
    await janus.start()
    dgrams = [d for d in rtp_stream(Codec.VP8, [f.data for f in vp8_frames], ssrc=1) if 10 <= d.frame < 40]
    await janus.play(dgrams, rec.rtp_port, speed=20)
    await asyncio.sleep(0.1)
    stats = await rec.stop()
    janus.close()
    assert stats.frames == 0 and stats.dropped_frames == 30
    with pytest.raises(EmptyRecordingError):
        await finalize(store, "rec/RTnokey")


async def test_resolution_change_mid_stream(allocator: PortAllocator, workdir: Path) -> None:
    small = encode_video(Codec.VP8, 30, width=320, height=240)
    large = encode_video(Codec.VP8, 30, width=640, height=360)  # a new encoder starts with a keyframe
    store = FlakyStore()
    (sock,) = allocator.allocate(1)
    rec = TrackRecorder(Codec.VP8, store, "rec/RTresize", sock)
    await rec.start()
    janus = FakeJanus()
    await janus.start()
    await janus.play(rtp_stream(Codec.VP8, [f.data for f in small + large], ssrc=5), rec.rtp_port, speed=10)
    await asyncio.sleep(0.1)
    stats = await rec.stop()
    janus.close()
    assert (stats.width, stats.height) == (640, 360)
    result = await finalize(store, "rec/RTresize")
    assert result.resolution_changes == 1
    assert (result.width, result.height) == (640, 360)
    path = await export(store, result, workdir)
    sizes = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (
            320,
            240,
        )  # track header: first size
        for frame in container.decode(stream):
            sizes.append((frame.width, frame.height))
    assert sizes == [(320, 240)] * 30 + [(640, 360)] * 30


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def wait_for(predicate: Callable[[], bool], seconds: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_pli_when_no_keyframe_for_interval(
    vp8_frames: list[EncodedFrame], allocator: PortAllocator
) -> None:
    clock = FakeClock()
    config = TrackRecorderConfig(tick_seconds=0.01, keyframe_interval=10.0, pli_retry=1.0)
    rtp_sock, rtcp_sock = allocator.allocate(2)
    rec = TrackRecorder(Codec.VP8, FlakyStore(), "rec/RTpli", rtp_sock, rtcp_sock, config, clock=clock)
    await rec.start()
    janus = FakeJanus()
    await janus.start()
    assert rec.rtcp_port is not None
    janus.send_rtcp(build_sender_report(7, 0, 0, 0, 0), rec.rtcp_port)  # Janus's RTCP address is learned
    dgrams = [d for d in rtp_stream(Codec.VP8, [f.data for f in vp8_frames], ssrc=7) if d.frame < 30]
    await janus.play(dgrams, rec.rtp_port, speed=30)
    await wait_for(lambda: rec.stats().frames == 30)  # keyframes at 0 and 8
    await asyncio.sleep(0.05)
    before = len(janus.plis)  # 0 or 1: a PLI may go out before the first keyframe completes
    clock.now += 9.0
    await asyncio.sleep(0.05)
    assert len(janus.plis) == before, "no PLI while keyframes are recent"
    clock.now += 1.5  # 10.5 s without a keyframe
    await wait_for(lambda: len(janus.plis) == before + 1)
    await asyncio.sleep(0.05)
    assert len(janus.plis) == before + 1, "rate-limited to one per pli_retry"
    clock.now += 1.1
    await wait_for(lambda: len(janus.plis) == before + 2)
    pli = janus.plis[-1]
    assert (pli[0], pli[1], int.from_bytes(pli[8:12], "big")) == (0x81, RTCP_PSFB, 7)
    await rec.stop()
    janus.close()
