"""What a composition is asked to do (CompositionJob), its inputs (SourceTrack) and its outcome
(CompositionResult). Validation happens in `CompositionJob.create`, so an invalid request never reaches the
media engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from libs.composition.spec import CODE_INVALID_LAYOUT
from libs.composition.spec import LayoutError as SpecError
from services.compositor.errors import LayoutError, from_spec_error
from services.compositor.layout import Resolution, VideoLayout, parse_layout, parse_resolution

Format = Literal["mp4", "webm"]
Kind = Literal["audio", "video"]
SUPPORTED_FPS = (24, 25, 30, 60)  # each divides 48000, so frame times are whole ticks


@dataclass(frozen=True, slots=True)
class EncoderOptions:
    """Output encoding knobs. `chunk_seconds` is the length of the time segments rendered in parallel (0: from
    the output's duration, see budget.chunk_seconds). Neither it nor the encoder's thread count depends on the
    number of worker processes or CPUs, so the output is byte-identical on every machine."""

    fps: int = 30
    preset: str = "veryfast"
    crf: int = 23
    chunk_seconds: int = 0
    max_hold_ms: int = 2000  # a source frame stays on screen at most this long without a successor
    # threads per chunk encoder / per source decoder (0 = FFmpeg's automatic count). One encoder thread: the
    # chunks already keep every core busy, and x264's frame threads would cost CPU, memory and determinism.
    encoder_threads: int = 1
    decoder_threads: int = 1  # each source already decodes on its own thread; frame threads only cost memory
    # swscale's bilinear widens its kernel when downscaling (anti-aliased): smoother tiles than area
    # averaging, which x264 encodes with ~10 % less CPU, and closer to ffmpeg's bicubic (PSNR 35.4 vs 35.1 dB)
    interpolation: str = "BILINEAR"


@dataclass(frozen=True, slots=True)
class CompositionJob:
    layout: VideoLayout
    resolution: Resolution
    audio_sources: tuple[str, ...] = ()
    audio_sources_excluded: tuple[str, ...] = ()
    format: Format = "webm"
    trim: bool = True
    encoder: EncoderOptions = field(default_factory=EncoderOptions)

    @classmethod
    def create(
        cls,
        *,
        video_layout: object = None,
        resolution: str = "640x480",
        audio_sources: list[str] | tuple[str, ...] = (),
        audio_sources_excluded: list[str] | tuple[str, ...] = (),
        format: str = "webm",  # Twilio's parameter name
        trim: bool = True,
        allow_hd: bool = False,
        encoder: EncoderOptions | None = None,
    ) -> CompositionJob:
        """Validate a request. Raises LayoutError (53640 layout/format, 53641 resolution)."""
        try:
            canvas = parse_resolution(resolution, allow_hd=allow_hd)
            layout = parse_layout(video_layout, canvas)
        except SpecError as exc:
            raise from_spec_error(exc) from exc
        if format not in ("mp4", "webm"):
            raise LayoutError(CODE_INVALID_LAYOUT, "Format must be mp4 or webm")
        if layout.is_empty and not audio_sources:
            raise LayoutError(CODE_INVALID_LAYOUT, "either VideoLayout or AudioSources is required")
        options = encoder or EncoderOptions()
        if options.fps not in SUPPORTED_FPS:
            raise LayoutError(CODE_INVALID_LAYOUT, "frame rate must be 24, 25, 30 or 60")
        fmt: Format = "mp4" if format == "mp4" else "webm"
        return cls(
            layout=layout,
            resolution=canvas,
            audio_sources=tuple(audio_sources),
            audio_sources_excluded=tuple(audio_sources_excluded),
            format=fmt,
            trim=trim,
            encoder=options,
        )


@dataclass(frozen=True, slots=True)
class SourceTrack:
    """One recording. `offset_ms` has Twilio's meaning: relative start = offset_ms - min(offset_ms) over the
    room's recordings; the file's own first timestamp is added on top. `sids` holds its MT/RT/PA SIDs."""

    path: str  # local path or URL
    kind: Kind
    track_name: str
    offset_ms: int = 0
    sids: tuple[str, ...] = ()
    codec: str = ""


@dataclass(frozen=True, slots=True)
class CompositionResult:
    duration_s: float
    size: int  # bytes
    bitrate_kbps: int
    video_frames: int
    has_video: bool
    has_audio: bool

    @property
    def duration(self) -> int:
        """Twilio's `duration`: whole seconds."""
        return round(self.duration_s)
