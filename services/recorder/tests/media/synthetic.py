"""Synthetic media for recorder tests and the benchmark: frame-numbered video, a tone, and RTP streams.

Each video frame shows its own number as a 10-bit code of black/white bars in the top band over a solid
background colour, so a decoded recording tells exactly which frames it holds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from services.recorder.depacketize import Codec
from services.recorder.packetize import payloads_for
from services.recorder.rtp import build_rtp

BG_RGB = (30, 59, 200)
BITS = 10
BAND_ROWS = 80
PAYLOAD_TYPES = {Codec.VP8: 97, Codec.H264: 102, Codec.OPUS: 111}


@dataclass(frozen=True)
class EncodedFrame:
    index: int
    data: bytes
    keyframe: bool


def make_picture(
    n: int, width: int, height: int, rng: np.random.Generator | None = None
) -> npt.NDArray[np.uint8]:
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BG_RGB
    bar = width // BITS
    for bit in range(BITS):
        on = (n >> (BITS - 1 - bit)) & 1
        img[:BAND_ROWS, bit * bar : (bit + 1) * bar] = 255 if on else 0
    if rng is not None:  # sensor-like noise below the band makes the encoder spend real bits
        noise = rng.integers(0, 48, size=(height - BAND_ROWS, width, 1), dtype=np.uint8)
        img[BAND_ROWS:] = np.clip(img[BAND_ROWS:].astype(np.int16) + noise - 24, 0, 255).astype(np.uint8)
    return img


def read_frame_number(rgb: npt.NDArray[Any]) -> int:
    width = rgb.shape[1]
    bar = width // BITS
    n = 0
    for bit in range(BITS):
        luma = rgb[BAND_ROWS // 2, bit * bar + bar // 2].mean()
        n = (n << 1) | int(luma > 128)
    return n


def encode_video(
    codec: Codec,
    count: int,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    forced_keyframes: frozenset[int] = frozenset(),
    gop: int = 60,
    bitrate: int = 400_000,
    noise: bool = False,
) -> list[EncodedFrame]:
    """Encode ``count`` numbered frames with libvpx (VP8) or libx264 (baseline); keyframes every ``gop``."""
    name = "libvpx" if codec is Codec.VP8 else "libx264"
    ctx = cast(VideoCodecContext, av.CodecContext.create(name, "w"))
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.gop_size = gop
    ctx.bit_rate = bitrate
    if codec is Codec.VP8:
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    else:
        ctx.options = {
            "profile": "baseline",
            "preset": "ultrafast",
            "tune": "zerolatency",
            "forced-idr": "1",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
    rng = np.random.default_rng(1) if noise else None
    out: list[EncodedFrame] = []
    for n in range(count):
        frame = av.VideoFrame.from_ndarray(make_picture(n, width, height, rng), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = n
        if n in forced_keyframes:
            frame.pict_type = PictureType.I
        for packet in ctx.encode(frame):
            out.append(EncodedFrame(len(out), bytes(packet), packet.is_keyframe))
    for packet in ctx.encode(None):
        out.append(EncodedFrame(len(out), bytes(packet), packet.is_keyframe))
    assert len(out) == count, "encoder must be one-in-one-out (no lookahead)"
    return out


def encode_tone(seconds: float, freq: float = 440.0) -> list[bytes]:
    """20 ms libopus packets of a mono sine tone."""
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = 48000, "mono", "s16"
    ctx.bit_rate = 32000
    ctx.time_base = Fraction(1, 48000)
    out: list[bytes] = []
    total = int(seconds * 50)
    for i in range(total):
        t = (np.arange(960) + i * 960) / 48000
        samples = (np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i * 960
        out.extend(bytes(p) for p in ctx.encode(frame))
    out.extend(bytes(p) for p in ctx.encode(None))
    return out[:total]


@dataclass(frozen=True)
class RtpDatagram:
    frame: int
    media_time: float
    data: bytes


def rtp_stream(
    codec: Codec,
    frames: list[bytes],
    *,
    ssrc: int,
    first_seq: int = 65_000,
    first_ts: int = 0xFFFF_0000,
    frame_ticks: int | None = None,
) -> list[RtpDatagram]:
    """Packetize frames into RTP; sequence numbers and timestamps start near their wrap on purpose."""
    ticks = frame_ticks or (960 if codec is Codec.OPUS else 3000)
    pt = PAYLOAD_TYPES[codec]
    out: list[RtpDatagram] = []
    seq = first_seq
    for n, frame in enumerate(frames):
        payloads = payloads_for(codec, frame, n)
        ts = (first_ts + n * ticks) & 0xFFFFFFFF
        for k, payload in enumerate(payloads):
            marker = k == len(payloads) - 1
            out.append(
                RtpDatagram(n, n * ticks / codec.clock_rate, build_rtp(pt, seq, ts, ssrc, payload, marker))
            )
            seq = (seq + 1) & 0xFFFF
    return out


def shuffle_locally(datagrams: list[RtpDatagram], every: int, seed: int = 3) -> list[RtpDatagram]:
    """Swap a pair of neighbouring packets every ``every`` packets (network-like reordering)."""
    rng = random.Random(seed)
    out = list(datagrams)
    for i in range(every, len(out) - 3, every):
        j = i + rng.randint(1, 3)
        out[i], out[j] = out[j], out[i]
    return out
