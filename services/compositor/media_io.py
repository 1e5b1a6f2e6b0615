"""Media I/O through PyAV: probing sources, decoding video and audio by timestamp, encoding, and the lossless
join of encoded parts. The only module of the compositor that imports `av`.

Times crossing this module's boundary are integer ticks of timeline.TIME_BASE (1/48000 s).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from services.compositor.errors import MediaError
from services.compositor.timeline import TICKS_PER_SECOND

logger = logging.getLogger(__name__)

Plane = npt.NDArray[np.uint8]
SAMPLE_RATE = TICKS_PER_SECOND  # one tick is one audio sample
_FALLBACK_FRAME = TICKS_PER_SECOND // 30
_PREROLL_MARGIN = TICKS_PER_SECOND // 10
# Intermediate parts carry timestamps shifted by this many seconds so encoder delay (B-frames, AAC priming)
# never produces negative timestamps, which the intermediate muxer would otherwise shift; join removes it.
PART_BIAS_SECONDS = 10


def _ticks(value: int, time_base: Fraction) -> int:
    """Round value * time_base seconds to ticks (integer arithmetic, half up)."""
    numerator = value * time_base.numerator * TICKS_PER_SECOND
    return (2 * numerator + time_base.denominator) // (2 * time_base.denominator)


def _open(source: str) -> Any:
    try:
        return av.open(source, mode="r", options={"rw_timeout": "30000000"})
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open source {Path(source).name}: {exc}") from exc


def _stream(container: Any, kind: str) -> Any:
    streams = container.streams.video if kind == "video" else container.streams.audio
    if not streams:
        raise MediaError(f"source has no {kind} stream")
    return streams[0]


@dataclass(frozen=True, slots=True)
class Probe:
    """A source's own time span [start, end) in ticks of file time, plus its first frame size (video)."""

    start: int
    end: int
    width: int
    height: int
    codec: str


def probe(source: str, kind: str) -> Probe:
    """Demux (without decoding) the first stream of `kind`: first timestamp and end of the last packet.

    Recordings may have no index or duration header, so every packet is read. Raises MediaError."""
    with _open(source) as container:
        stream = _stream(container, kind)
        time_base = Fraction(stream.time_base)
        first: int | None = None
        last_end = 0
        previous: int | None = None
        step = 0
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                pts = _ticks(packet.pts, time_base)
                first = pts if first is None else min(first, pts)
                if previous is not None and pts > previous:
                    step = pts - previous
                previous = pts
                duration = (
                    _ticks(packet.duration, time_base) if packet.duration else (step or _FALLBACK_FRAME)
                )
                last_end = max(last_end, pts + duration)
        except av.error.FFmpegError as exc:
            raise MediaError(f"cannot read source {Path(source).name}: {exc}") from exc
        if first is None:
            raise MediaError(f"source {Path(source).name} has no {kind} packets")
        width = stream.codec_context.width if kind == "video" else 0
        height = stream.codec_context.height if kind == "video" else 0
        return Probe(first, last_end, width or 0, height or 0, stream.codec_context.name)


class _Scaler:
    """One swscale context per source, single-threaded and reused across frames (a fresh context per frame
    would re-initialise filters and spawn a thread pool every time). Locked: the decode thread and the
    compositor may both scale."""

    def __init__(self) -> None:
        self._reformatter: Any = VideoReformatter()
        self._lock = threading.Lock()

    def scale(self, frame: Any, width: int, height: int, interpolation: str) -> Any:
        with self._lock:
            return self._reformatter.reformat(
                frame, width=width, height=height, format="yuv420p", interpolation=interpolation, threads=1
            )


class DecodedVideoFrame:
    """A decoded source frame placed on the output timeline; scales lazily into YUV420 planes."""

    __slots__ = ("_cache", "_frame", "_scaler", "height", "serial", "time", "width")

    def __init__(self, frame: Any, time: int, serial: int, scaler: _Scaler) -> None:
        self._frame = frame
        self._scaler = scaler
        self._cache: dict[tuple[int, int], tuple[Plane, Plane, Plane, Any]] = {}
        self.time = time
        self.serial = serial
        self.width: int = frame.width
        self.height: int = frame.height

    def planes(self, width: int, height: int, interpolation: str) -> tuple[Plane, Plane, Plane]:
        """Y, U, V planes of the frame scaled to width x height (even), views into the scaled frame."""
        cached = self._cache.get((width, height))
        if cached is None:
            frame = self._frame
            if (frame.width, frame.height, frame.format.name) != (width, height, "yuv420p"):
                frame = self._scaler.scale(frame, width, height, interpolation)
            y, u, v = (
                np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
                for plane, w, h in zip(
                    frame.planes,
                    (width, width // 2, width // 2),
                    (height, height // 2, height // 2),
                    strict=True,
                )
            )
            cached = (y, u, v, frame)
            self._cache[(width, height)] = cached
        return cached[0], cached[1], cached[2]


class VideoReader:
    """Decodes one video source in timestamp order. Output time of a frame = file time + `delta`.

    `frame_at(t)` returns the latest frame with time <= t (frames are held until replaced). Opening seeks to
    the keyframe before the first requested time; undecodable packets are skipped.

    With `background` (the default) a decode thread runs a few frames ahead (bounded queue) and calls
    `prepare(frame)` on each, e.g. to scale it for its tile, so decoding and scaling of every source overlap
    with compositing and encoding (PyAV releases the GIL). Without it, frames are decoded on the caller's
    thread when needed and `prepare` is not called (frames are scaled when painted): no threads, queues or
    GIL hand-offs, the cheapest way when other processes already keep the cores busy."""

    _AHEAD = 4

    def __init__(
        self,
        source: str,
        delta: int,
        threads: int = 1,
        prepare: Callable[[DecodedVideoFrame], None] | None = None,
        *,
        background: bool = True,
    ) -> None:
        self._source = source
        self._background = background
        self._started = False
        self._first: DecodedVideoFrame | None = None  # inline mode: the frame the opening seek decoded
        self._delta = delta
        self._threads = threads
        self._prepare = prepare
        self._scaler = _Scaler()
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._current: DecodedVideoFrame | None = None
        self._next: DecodedVideoFrame | None = None
        self._serial = 0
        self._prepare_from = 0  # frames before this output time are seek pre-roll: decoded, never prepared
        self._eof = False
        self._queue: queue.Queue[DecodedVideoFrame | BaseException | None] = queue.Queue(self._AHEAD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self, t: int) -> None:
        self._container = _open(self._source)
        stream = _stream(self._container, "video")
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self._threads
        self._time_base = Fraction(stream.time_base)
        # pre-roll frames between the keyframe and t are only decoded; one that still ends up on screen
        # (a source gap right at t) is scaled on demand by DecodedVideoFrame.planes
        self._prepare_from = t - _PREROLL_MARGIN
        target = t - self._delta
        first: DecodedVideoFrame | None = None
        if target > 0:
            pts = int(Fraction(target, TICKS_PER_SECOND) / self._time_base)
            try:
                self._container.seek(pts, stream=stream, backward=True, any_frame=False)
                self._frames = self._decode(stream)
                first = self._decode_one()
                if first is not None and first.time > t:
                    # the seek landed after the wanted time (files without a usable index): from the start
                    self._container.close()
                    self._container = _open(self._source)
                    stream = _stream(self._container, "video")
                    self._frames, first = None, None
            except av.error.FFmpegError:
                logger.warning(
                    "seek failed, decoding from the start", extra={"source": Path(self._source).name}
                )
                self._container.close()
                self._container = _open(self._source)
                stream = _stream(self._container, "video")
                self._frames, first = None, None
        if self._frames is None:
            self._frames = self._decode(stream)
        self._started = True
        if not self._background:
            self._first = first
            return
        self._thread = threading.Thread(target=self._run, args=(first,), name="video-decode", daemon=True)
        self._thread.start()

    def _decode(self, stream: Any) -> Iterator[Any]:
        seen_key = False
        for packet in self._container.demux(stream):
            if packet.size == 0:
                continue
            if not seen_key:
                if not packet.is_keyframe:
                    continue
                seen_key = True
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                logger.warning("skipping undecodable video packet", extra={"source": Path(self._source).name})
        try:
            yield from stream.decode(None)
        except av.error.FFmpegError:
            return

    def _decode_one(self) -> DecodedVideoFrame | None:
        if self._frames is None:
            return None
        for frame in self._frames:
            if frame.pts is None:
                continue
            self._serial += 1
            time = _ticks(frame.pts, self._time_base) + self._delta
            decoded = DecodedVideoFrame(frame, time, self._serial, self._scaler)
            if self._background and self._prepare is not None and time >= self._prepare_from:
                self._prepare(decoded)
            return decoded
        return None

    def _put(self, item: DecodedVideoFrame | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, first: DecodedVideoFrame | None) -> None:
        try:
            if first is not None and not self._put(first):
                return
            while not self._stop.is_set():
                decoded = self._decode_one()
                if not self._put(decoded) or decoded is None:
                    return
        except BaseException as exc:  # handed to the consumer thread, which raises it
            self._put(exc)

    def _pull(self) -> DecodedVideoFrame | None:
        item: DecodedVideoFrame | BaseException | None
        if self._background:
            item = self._queue.get()
        elif self._first is not None:
            item, self._first = self._first, None
        else:
            try:
                item = self._decode_one()
            except Exception as exc:  # the same failure the decode thread would hand over
                item = exc
        if isinstance(item, BaseException):
            raise MediaError(f"cannot decode video source {Path(self._source).name}: {item}") from item
        if item is None:
            self._eof = True
        return item

    def frame_at(self, t: int) -> DecodedVideoFrame | None:
        if not self._started:
            self._start(t)
        while not self._eof:
            if self._next is None:
                self._next = self._pull()
                continue
            if self._next.time > t:
                break
            self._current, self._next = self._next, None
        return self._current

    def close(self) -> None:
        """Stop the decode thread and drop every frame now: the decode generator refers back to this reader,
        so leaving it to the cyclic garbage collector would keep decoders and frame buffers alive."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._frames is not None:
            close_generator = getattr(self._frames, "close", None)
            if close_generator is not None:
                close_generator()
            self._frames = None
        while not self._queue.empty():
            self._queue.get_nowait()
        self._current = self._next = self._first = None
        if self._container is not None:
            self._container.close()
            self._container = None


def _mono_samples(frame: Any, resampler: Any) -> Iterator[npt.NDArray[np.float32]]:
    """The frame as 48 kHz mono float32: taken as it is when it already is (Opus recordings decode to exactly
    that), else through the resampler (a format-only conversion adds no delay, so both paths line up)."""
    if (
        frame.sample_rate == SAMPLE_RATE
        and frame.format.name in ("flt", "fltp")
        and len(frame.layout.channels) == 1
    ):
        yield frame.to_ndarray().reshape(-1)
        return
    for out in resampler.resample(frame):
        yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)


def read_audio(source: str, delta: int) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """Decode one audio source as 48 kHz mono float32 blocks positioned on the output timeline.

    Yields (output sample index, samples). Consecutive frames are laid end to end; a timestamp jump of more
    than 20 ms (a gap in the recording) repositions the block, leaving silence."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    with _open(source) as container:
        stream = _stream(container, "audio")
        time_base = Fraction(stream.time_base)
        position: int | None = None
        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    logger.warning("skipping undecodable audio packet", extra={"source": Path(source).name})
                    continue
                for frame in decoded:
                    if frame.pts is not None:
                        at = _ticks(frame.pts, time_base) + delta
                        if position is None or abs(at - position) > SAMPLE_RATE // 50:
                            position = at
                    for samples in _mono_samples(frame, resampler):
                        if position is None:
                            position = delta
                        yield position, samples
                        position += samples.shape[0]
            for out in resampler.resample(None):
                samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                yield position or 0, samples
                position = (position or 0) + samples.shape[0]
        except av.error.FFmpegError as exc:
            raise MediaError(f"cannot decode audio source {Path(source).name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class VideoCodecSettings:
    fmt: str  # "mp4" | "webm"
    width: int
    height: int
    fps: int
    preset: str = "veryfast"
    crf: int = 23
    threads: int = 1
    gop: int = 250


class VideoEncoder:
    """Encodes its own yuv420p picture (writable numpy views from `planes()`) into an intermediate NUT part.

    mp4 outputs use H.264 (libx264, preset/crf), webm outputs VP8 (libvpx realtime, bitrate by pixel count).
    Frame pts are global output frame indices, so parts can be joined without retiming. The picture is
    reused for every frame: both encoders copy their input before `encode` returns."""

    def __init__(self, path: Path, settings: VideoCodecSettings) -> None:
        self._container: Any = av.open(str(path), mode="w", format="nut")
        if settings.fmt == "mp4":
            stream = self._container.add_stream("libx264", rate=settings.fps)
            stream.options = {"preset": settings.preset, "crf": str(settings.crf)}
        else:
            stream = self._container.add_stream("libvpx", rate=settings.fps)
            stream.bit_rate = settings.width * settings.height * settings.fps // 10
            stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        stream.width = settings.width
        stream.height = settings.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, settings.fps)
        stream.codec_context.time_base = Fraction(1, settings.fps)
        stream.codec_context.gop_size = settings.gop
        stream.codec_context.thread_count = settings.threads
        self._stream = stream
        self._time_base = Fraction(1, settings.fps)
        self._fps = settings.fps
        self._frame: Any = av.VideoFrame(settings.width, settings.height, "yuv420p")
        self._size = (settings.width, settings.height)

    def planes(self) -> tuple[Plane, Plane, Plane]:
        """Writable Y, U, V views of the picture the next `encode` sends."""
        width, height = self._size
        return tuple(  # type: ignore[return-value]  # a 3-tuple by construction
            np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
            for plane, w, h in zip(
                self._frame.planes,
                (width, width // 2, width // 2),
                (height, height // 2, height // 2),
                strict=True,
            )
        )

    def encode(self, index: int) -> None:
        """Encode the current picture as output frame `index`."""
        frame = self._frame
        frame.pts = index + PART_BIAS_SECONDS * self._fps
        frame.time_base = self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()


class AudioEncoder:
    """Encodes 48 kHz mono float32 blocks into an intermediate Matroska part: AAC 128 kbit/s for mp4, Opus
    64 kbit/s for webm."""

    def __init__(self, path: Path, fmt: str) -> None:
        self._container: Any = av.open(str(path), mode="w", format="nut")
        codec = "aac" if fmt == "mp4" else "libopus"
        self._stream: Any = cast(Any, self._container.add_stream(codec, rate=SAMPLE_RATE))
        self._stream.layout = "mono"
        self._stream.bit_rate = 128_000 if fmt == "mp4" else 64_000
        self._position = 0

    def encode(self, samples: npt.NDArray[np.float32]) -> None:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._position + PART_BIAS_SECONDS * SAMPLE_RATE
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._position += samples.shape[0]
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()


@dataclass(frozen=True, slots=True)
class OutputStats:
    duration_s: float
    size: int
    bitrate_kbps: int


def _reorder_delay(paths: list[Path]) -> int:
    """The smallest decode delay D (in frames) valid for every part: packet j of a part, in decode order,
    gets dts = the part's (j - D)-th smallest pts, which never exceeds its own pts. Intermediate parts store
    only pts (and B-frames reorder them), so dts is rebuilt here; one D for all parts keeps dts strictly
    increasing across part boundaries for constant-rate video."""
    delay = 0
    for path in paths:
        with av.open(str(path)) as container:
            stream: Any = container.streams[0]
            pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
        rank = {value: i for i, value in enumerate(sorted(pts))}
        delay = max([delay, *(j - rank[value] for j, value in enumerate(pts))])
    return delay


def _packets(paths: list[Path], delay: int) -> Iterator[tuple[Fraction, Any]]:
    """Packets of the first stream of each part in order with rebuilt dts, as (dts seconds, packet)."""
    for path in paths:
        with av.open(str(path)) as container:
            stream: Any = container.streams[0]
            time_base = Fraction(stream.time_base)
            bias = int(PART_BIAS_SECONDS / time_base)
            packets = [p for p in container.demux(stream) if p.size and p.pts is not None]
            ordered = sorted(p.pts - bias for p in packets)
            step = ordered[1] - ordered[0] if len(ordered) > 1 else 1
            for j, packet in enumerate(packets):
                packet.pts -= bias
                packet.dts = ordered[j - delay] if j >= delay else ordered[0] - (delay - j) * step
                yield packet.dts * time_base, packet


def join(out_path: Path, fmt: str, video_parts: list[Path], audio_part: Path | None) -> OutputStats:
    """Remux encoded parts (no re-encoding) into the final mp4/webm, interleaving video and audio by dts.

    Every video part must carry identical codec parameters (same encoder settings), and its timestamps must
    continue the previous part's. Raises MediaError otherwise."""
    container_format = "mp4" if fmt == "mp4" else "webm"
    options = {"movflags": "+faststart"} if fmt == "mp4" else {}
    with av.open(str(out_path), mode="w", format=container_format, options=options) as output:
        sources: list[Iterator[tuple[Fraction, Any]]] = []
        outs: list[Any] = []
        if video_parts:
            with av.open(str(video_parts[0])) as first:
                template = first.streams[0]
                extradata = template.codec_context.extradata
                outs.append(output.add_stream_from_template(template))
            for part in video_parts[1:]:
                with av.open(str(part)) as other:
                    if other.streams[0].codec_context.extradata != extradata:
                        raise MediaError("video parts were encoded with different codec parameters")
            sources.append(_packets(video_parts, _reorder_delay(video_parts)))
        if audio_part is not None:
            with av.open(str(audio_part)) as audio:
                outs.append(output.add_stream_from_template(audio.streams[0]))
            sources.append(_packets([audio_part], 0))
        heads: list[tuple[Fraction, Any] | None] = [next(it, None) for it in sources]
        last_dts: list[int | None] = [None] * len(sources)
        while any(h is not None for h in heads):
            index, (_, packet) = min(
                ((i, h) for i, h in enumerate(heads) if h is not None), key=lambda item: item[1][0]
            )
            if last_dts[index] is not None and packet.dts <= last_dts[index]:
                raise MediaError("encoded parts do not continue each other's timestamps")
            last_dts[index] = packet.dts
            packet.stream = outs[index]
            output.mux(packet)
            heads[index] = next(sources[index], None)
    with av.open(str(out_path)) as result:
        duration_s = float(result.duration or 0) / av.time_base
    size = out_path.stat().st_size
    bitrate = round(size * 8 / duration_s / 1000) if duration_s > 0 else 0
    return OutputStats(duration_s, size, bitrate)


@dataclass(frozen=True, slots=True)
class DecodedOutput:
    """Decoded frames and audio of a finished file, for tests and the benchmark."""

    fps: float
    frames: list[tuple[float, Plane]]  # (time s, (H*3/2, W) yuv420p)
    audio: npt.NDArray[np.float32]  # mono float at 48 kHz
    video_codec: str | None
    audio_codec: str | None


def decode_output(path: Path, *, with_frames: bool = True) -> DecodedOutput:
    """Decode a whole (small) output file into memory."""
    frames: list[tuple[float, Plane]] = []
    chunks: list[npt.NDArray[np.float32]] = []
    video_codec = audio_codec = None
    fps = 0.0
    with av.open(str(path)) as container:
        if container.streams.video:
            vs: Any = container.streams.video[0]
            video_codec = vs.codec_context.name
            fps = float(vs.average_rate or 0)
            if with_frames:
                for frame in container.decode(vs):
                    planes: Any = (
                        frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
                    )
                    frames.append((float(frame.time or 0.0), planes.to_ndarray()))
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio: Any = container.streams.audio[0]
            audio_codec = audio.codec_context.name
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for audio_frame in container.decode(audio):
                for out in resampler.resample(audio_frame):
                    chunks.append(out.to_ndarray().reshape(-1).astype(np.float32))
    audio_samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return DecodedOutput(fps, frames, audio_samples, video_codec, audio_codec)
