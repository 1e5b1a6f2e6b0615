"""Rendering one time segment ("chunk") of the output video into an encoded part.

A chunk is a run of output frames [first, last). Each chunk opens only the sources visible in it, seeks each
to the keyframe before its first needed time, composites every output frame in YUV and encodes the part
starting with a keyframe. Chunks are independent, so runs of consecutive chunks (render_run, which carries
decoders across the boundaries) go to parallel worker processes and the parts are joined losslessly.
Tiles keep their scaled picture until the source produces a new frame, and a frame whose tiles all show the
same pictures as the previous one is not composited again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.compositor.frames import Canvas
from services.compositor.layout import Grid, Rect, fit_inside
from services.compositor.media_io import DecodedVideoFrame, VideoCodecSettings, VideoEncoder, VideoReader
from services.compositor.timeline import TICKS_PER_MS, TICKS_PER_SECOND, Segment

logger = logging.getLogger(__name__)
_ENCODE_PER_DECODE = 2  # encoding an output frame costs about as much as decoding two 640x480 sources


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """Everything a worker process needs (picklable)."""

    index: int
    first_frame: int
    last_frame: int  # exclusive
    segments: tuple[Segment, ...]  # the plan's segments overlapping the chunk
    grids: tuple[Grid, ...]
    sources: dict[int, tuple[str, int]]  # key -> (path or URL, delta: output time = file time + delta)
    codec: VideoCodecSettings
    interpolation: str
    max_hold_ms: int
    out_path: Path
    decoder_threads: int = 1
    background_decode: bool = True  # decode threads per source; off when other processes fill the cores


def plan_chunks(total_frames: int, chunk_frames: int) -> list[tuple[int, int]]:
    """Split [0, total_frames) into runs of chunk_frames; a short tail (under half a chunk) joins the last."""
    if total_frames <= 0:
        return []
    bounds = list(range(0, total_frames, chunk_frames)) + [total_frames]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < chunk_frames // 2:
        del bounds[-2]
    return list(zip(bounds, bounds[1:], strict=False))


def chunk_work(task: ChunkTask) -> int:
    """Relative cost of rendering a chunk: every frame is encoded, and each visible source is decoded over the
    time it is visible in the chunk (ticks)."""
    frame_ticks = TICKS_PER_SECOND // task.codec.fps
    first, last = task.first_frame * frame_ticks, task.last_frame * frame_ticks
    decoding = sum(
        (min(s.end, last) - max(s.start, first)) * len(s.placements) for s in task.segments if s.end > first
    )
    return (last - first) * _ENCODE_PER_DECODE + decoding


def plan_runs(tasks: Sequence[ChunkTask], runs: int) -> list[list[ChunkTask]]:
    """Cut the chunks (in time order) into at most `runs` runs of consecutive chunks of about equal work
    (chunk_work): a run renders its chunks one after the other without seek pre-roll between them, and the
    runs are what parallel processes share."""
    if not tasks:
        return []
    runs = max(1, min(runs, len(tasks)))
    total = sum(chunk_work(task) for task in tasks)
    result: list[list[ChunkTask]] = [[]]
    done = 0
    for task in tasks:
        work = chunk_work(task)
        # start a new run when this chunk's midpoint passes the next equal share
        share = total * len(result) / runs
        if result[-1] and done + work / 2 > share and len(result) < runs:
            result.append([])
        result[-1].append(task)
        done += work
    return result


def frame_time(index: int, fps: int) -> int:
    """Output time (ticks) of frame `index`; exact because fps divides 48000."""
    return index * (TICKS_PER_SECOND // fps)


def _scaler(cell: Rect, interpolation: str) -> Callable[[DecodedVideoFrame], None]:
    """Scale each decoded frame for `cell` on the decode thread (a source shown in several cells of other
    sizes gets those scaled on demand)."""

    def prepare(frame: DecodedVideoFrame) -> None:
        content = fit_inside(cell, frame.width, frame.height)
        frame.planes(content.width, content.height, interpolation)

    return prepare


def render_run(
    tasks: Sequence[ChunkTask],
    progress: Callable[[int], None] | None = None,
    after_chunk: Callable[[], None] | None = None,
) -> list[Path]:
    """Render chunks one after the other, each into its own part, keeping the decoder of every source that
    is on screen where one chunk ends and the next begins: it goes on decoding instead of seeking back to a
    keyframe, so consecutive chunks cost no seek pre-roll. The parts are the same as chunk by chunk.
    `progress` is called with the number of frames done since the last call (about once a second of video);
    `after_chunk` runs once a chunk's encoder and its unused decoders are closed."""
    readers: dict[int, VideoReader] = {}
    paths: list[Path] = []
    try:
        for i, task in enumerate(tasks):
            paths.append(_render(task, readers, progress))
            following = tasks[i + 1] if i + 1 < len(tasks) else None
            keep = set()
            if following is not None and following.first_frame == task.last_frame:
                start = frame_time(following.first_frame, following.codec.fps)
                keep = {p.key for s in following.segments if s.start <= start < s.end for p in s.placements}
            for key in [k for k in readers if k not in keep]:
                readers.pop(key).close()
            if after_chunk is not None:
                after_chunk()
    finally:
        for reader in readers.values():
            reader.close()
    return paths


def _render(task: ChunkTask, readers: dict[int, VideoReader], progress: Callable[[int], None] | None) -> Path:
    """Composite and encode frames [first_frame, last_frame) into task.out_path, opening the readers it
    needs in `readers` (the caller closes them)."""
    fps = task.codec.fps
    encoder = VideoEncoder(task.out_path, task.codec)
    canvas = Canvas(*encoder.planes())
    hold = task.max_hold_ms * TICKS_PER_MS
    half_frame = frame_time(1, fps) // 2
    segments = iter(task.segments)
    segment: Segment | None = next(segments, None)
    previous_state: tuple[tuple[int, int], ...] | None = None
    previous_segment: Segment | None = None
    reported = task.first_frame
    for index in range(task.first_frame, task.last_frame):
        t = frame_time(index, fps)
        while segment is not None and segment.end <= t:
            segment = next(segments, None)
        tiles: list[tuple[Rect, int, int]] = []  # (cell, key, serial)
        pictures: list[DecodedVideoFrame | None] = []
        if segment is not None and segment.start <= t:
            for placement in segment.placements:
                reader = readers.get(placement.key)
                cell = task.grids[placement.region].cells[placement.cell]
                if reader is None:
                    path, delta = task.sources[placement.key]
                    reader = readers[placement.key] = VideoReader(
                        path,
                        delta,
                        task.decoder_threads,
                        _scaler(cell, task.interpolation),
                        background=task.background_decode,
                    )
                # nearest-frame sampling (like ffmpeg's fps filter): a source frame is due from half an
                # output frame before its timestamp, which absorbs millisecond-rounded container times
                frame = reader.frame_at(t + half_frame)
                if frame is None or t - frame.time > hold:
                    tiles.append((cell, placement.key, 0))
                    pictures.append(None)
                else:
                    tiles.append((cell, placement.key, frame.serial))
                    pictures.append(frame)
        state = tuple((key, serial) for _, key, serial in tiles)
        unchanged = state == previous_state and segment is previous_segment
        if not unchanged:
            if segment is not previous_segment:
                canvas.clear()  # the set of tiles changed: start from black
            for (cell, _, _), frame in zip(tiles, pictures, strict=True):
                if frame is None:
                    canvas.paint_tile(cell, None, None)
                    continue
                content = fit_inside(cell, frame.width, frame.height)
                canvas.paint_tile(
                    cell, content, frame.planes(content.width, content.height, task.interpolation)
                )
        encoder.encode(index)
        previous_state, previous_segment = state, segment
        if progress is not None and index - reported >= fps:
            progress(index - reported)
            reported = index
    encoder.close()
    if progress is not None:
        progress(task.last_frame - reported)
    logger.debug("chunk rendered", extra={"chunk": task.index, "frames": task.last_frame - task.first_frame})
    return task.out_path
