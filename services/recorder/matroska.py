"""Matroska muxing of already-encoded frames with PyAV (no transcoding): VP8/H.264 → .mkv, Opus → .mka.

Two PyAV details matter (both measured): an Opus stream made with ``add_mux_stream`` carries no OpusHead and
Channels=0, so the Opus stream is created from the libopus encoder (never fed) only to get a correct
CodecPrivate; and the Matroska muxer rewrites ``stream.time_base`` to 1/1000 after the header, so every packet
carries our own fixed ``time_base`` (1/clock_rate). H.264's avcC is built by the muxer from the first
keyframe, which the depacketizer guarantees carries SPS and PPS. Writing to a seekable local file gives
Duration and Cues.
"""

from __future__ import annotations

from fractions import Fraction
from types import TracebackType

import av
from av.stream import Stream

from services.recorder.depacketize import Codec

_MUX_CODEC = {Codec.VP8: "vp8", Codec.H264: "h264"}


def container_format(codec: Codec) -> str:
    """Twilio's ``container_format`` (and our file extension) for a codec."""
    return "mka" if codec is Codec.OPUS else "mkv"


def content_type(codec: Codec) -> str:
    return "audio/x-matroska" if codec is Codec.OPUS else "video/x-matroska"


class MatroskaWriter:
    """One-track Matroska file writer; use as a context manager or call ``close()``."""

    def __init__(self, path: str, codec: Codec, *, width: int = 0, height: int = 0) -> None:
        self._codec = codec
        self._time_base = Fraction(1, codec.clock_rate)
        self._container = av.open(path, mode="w", format="matroska")
        self._stream: Stream
        if codec is Codec.OPUS:
            # Only for the OpusHead CodecPrivate: packets are muxed byte for byte, the encoder stays unused.
            self._stream = self._container.add_stream("libopus", rate=48000, layout="stereo")
        else:
            self._stream = self._container.add_mux_stream(_MUX_CODEC[codec], width=width, height=height)
        self.packets = 0

    def write(self, pts: int, data: bytes, keyframe: bool, duration: int) -> None:
        """Mux one frame; ``pts`` and ``duration`` are in 1/clock_rate units and must increase."""
        packet = av.Packet(data)
        packet.pts = pts
        packet.dts = pts
        packet.duration = duration
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        packet.stream = self._stream
        self._container.mux(packet)
        self.packets += 1

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> MatroskaWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
