"""Synthetic Twilio-like recordings for media tests: solid-colour VP8 .mkv and sine-tone Opus .mka files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

# (Y, U, V) limited-range colours that survive lossy coding distinctly
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (81, 90, 240),
    "green": (145, 54, 34),
    "blue": (41, 240, 110),
    "white": (235, 128, 128),
    "yellow": (210, 16, 146),
    "magenta": (106, 202, 222),
}


def _vp8_encoder(codec: str, width: int, height: int, fps: int) -> Any:
    ctx: Any = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, 1000)
    ctx.framerate = Fraction(fps, 1)
    ctx.bit_rate = 400_000
    if codec == "libvpx":
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return ctx


def write_video(
    path: Path,
    pieces: list[tuple[float, float, str, int, int]],
    *,
    fps: int = 30,
    codec: str = "libvpx",
) -> Path:
    """A video track made of pieces (start s, end s, colour, width, height); timestamps follow the pieces, so
    gaps between pieces are gaps in the file. A piece of another size is encoded by a fresh encoder into the
    same track: a mid-track resolution change, as simulcast recordings have."""
    with av.open(str(path), "w", format="matroska") as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = pieces[0][3], pieces[0][4], "yuv420p"
        stream.time_base = Fraction(1, 1000)
        encoder: Any = None
        size = None
        for start, end, colour, width, height in pieces:
            if (width, height) != size:
                if encoder is not None:
                    for packet in encoder.encode(None):
                        packet.stream = stream
                        container.mux(packet)
                encoder, size = _vp8_encoder(codec, width, height, fps), (width, height)
            y, u, v = COLOURS[colour]
            frame_data = np.empty((height * 3 // 2, width), np.uint8)
            frame_data[:height] = y
            chroma = frame_data[height:].reshape(-1)
            chroma[: chroma.size // 2] = u
            chroma[chroma.size // 2 :] = v
            for i in range(round((end - start) * fps)):
                frame: Any = av.VideoFrame.from_ndarray(frame_data, format="yuv420p")
                frame.pts = round((start + i / fps) * 1000)
                frame.time_base = Fraction(1, 1000)
                for packet in encoder.encode(frame):
                    packet.stream = stream
                    container.mux(packet)
        if encoder is not None:
            for packet in encoder.encode(None):
                packet.stream = stream
                container.mux(packet)
    return path


def write_audio(path: Path, pieces: list[tuple[float, float, float]], *, amplitude: float = 0.2) -> Path:
    """An Opus track of sine tones (start s, end s, Hz); gaps between pieces are timestamp gaps."""
    with av.open(str(path), "w", format="matroska") as container:
        stream: Any = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        for start, end, hz in pieces:
            n = round((end - start) * 48000)
            t = np.arange(n) / 48000
            samples = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)
            for offset in range(0, n, 960):
                block = samples[offset : offset + 960]
                frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
                frame.sample_rate = 48000
                frame.pts = round(start * 48000) + offset
                frame.time_base = Fraction(1, 48000)
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
