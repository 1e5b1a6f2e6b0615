"""Synthetic Twilio-like recordings for media tests: solid-colour VP8 .mkv and sine-tone Opus .mka files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

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


def write_video(
    path: Path,
    pieces: list[tuple[float, float, str, int, int]],
    *,
    fps: int = 30,
    codec: str = "libvpx",
) -> Path:
    """A video track made of pieces (start s, end s, colour, width, height); timestamps follow the pieces, so
    gaps between pieces are gaps in the file and a size change is a mid-track resolution change."""
    with av.open(str(path), "w", format="matroska") as container:
        first_w, first_h = pieces[0][3], pieces[0][4]
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = first_w, first_h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = (
            {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"} if codec == "libvpx" else {}
        )
        stream.bit_rate = 400_000
        for start, end, colour, width, height in pieces:
            y, u, v = COLOURS[colour]
            frame_data = np.empty((height * 3 // 2, width), np.uint8)
            frame_data[:height] = y
            chroma = frame_data[height:].reshape(-1)
            chroma[: chroma.size // 2] = u
            chroma[chroma.size // 2 :] = v
            for i in range(round((end - start) * fps)):
                frame = av.VideoFrame.from_ndarray(frame_data, format="yuv420p")
                frame.pts = round((start + i / fps) * 1000)
                frame.time_base = Fraction(1, 1000)
                if (width, height) != (stream.codec_context.width, stream.codec_context.height):
                    frame = frame.reformat(
                        width=stream.codec_context.width, height=stream.codec_context.height
                    )
                    frame.pts = round((start + i / fps) * 1000)
                    frame.time_base = Fraction(1, 1000)
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_audio(path: Path, pieces: list[tuple[float, float, float]], *, amplitude: float = 0.2) -> Path:
    """An Opus track of sine tones (start s, end s, Hz); gaps between pieces are timestamp gaps."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libopus", rate=48000)
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
