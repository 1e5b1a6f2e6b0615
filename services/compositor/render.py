"""compose(): probe the sources, plan the timeline, render video chunks in parallel worker processes while the
audio is mixed once in this process, then join everything losslessly into the output file.

A plain synchronous function: the service calls it through asyncio.to_thread (it blocks on worker
processes, not on the event loop).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import logging
import multiprocessing
import os
import queue
import select
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.queues import Queue
from pathlib import Path

from services.compositor.audio import mix
from services.compositor.budget import chunk_seconds, encoder_threads, render_processes
from services.compositor.errors import CompositorError, MediaError, NoSourcesError
from services.compositor.job import CompositionJob, CompositionResult, SourceTrack
from services.compositor.media_io import (
    AudioEncoder,
    Probe,
    VideoCodecSettings,
    join,
    probe,
    read_audio,
)
from services.compositor.segments import ChunkTask, chunk_work, plan_chunks, plan_runs, render_run
from services.compositor.timeline import TICKS_PER_MS, TICKS_PER_SECOND, Plan, SourceSpan, plan

logger = logging.getLogger(__name__)

_AUDIO_WEIGHT = 0.1  # share of the progress bar given to the audio mix when there is video
_progress_queue: Queue[int] | None = None
_M_ARENA_MAX = -8  # glibc mallopt parameter
DEFAULT_MEMORY_MB = 300.0
RUNS_PER_PROCESS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None  # not glibc


def _limit_malloc_arenas() -> None:
    """Cap glibc's per-thread malloc arenas: a worker runs a decode thread per source plus codec threads,
    and with one arena each, freed frame buffers stay resident in many arenas."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, 2)


def _release_free_memory() -> None:
    """Give the heap memory freed by a finished chunk (its encoder and decoders) back to the system before
    the next chunk allocates its own, so a worker's footprint does not ratchet up chunk after chunk."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _exit_with(owner_pid: int) -> None:
    """End this worker as soon as process ``owner_pid`` (the compositor) is gone.

    The forkserver hands its liveness pipe to every worker, so it outlives the compositor for as long as
    any worker does; a worker must therefore watch the compositor itself, or a compositor killed with
    kill -9 would leave its workers (and the forkserver) idle forever. A daemon thread waits on a pidfd.
    """
    try:
        pidfd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        os._exit(1)  # already gone
    except OSError:
        return  # no pidfd support (not Linux 5.3+): the pool's own EOF handling still applies

    def wait() -> None:
        select.select([pidfd], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="owner-watch", daemon=True).start()


def _init_worker(progress_queue: Queue[int] | None, owner_pid: int) -> None:
    global _progress_queue  # per-process handle set once by the pool initializer
    _progress_queue = progress_queue
    _exit_with(owner_pid)
    _limit_malloc_arenas()
    gc.freeze()  # objects inherited from the forkserver: never traversed again, so their pages stay shared


def _run_chunks(run: list[ChunkTask]) -> list[Path]:
    handle = _progress_queue
    return render_run(run, handle.put if handle is not None else None, after_chunk=_release_free_memory)


def _busiest_chunk(tasks: list[ChunkTask], probes: list[Probe]) -> list[int]:
    """Pixel counts of the sources of the chunk that shows the most source pixels."""
    busiest: list[int] = []
    for task in tasks:
        keys = {p.key for segment in task.segments for p in segment.placements}
        pixels = [probes[key].width * probes[key].height for key in keys]
        if sum(pixels) > sum(busiest):
            busiest = pixels
    return busiest


def _spans(sources: list[SourceTrack], probes: list[Probe]) -> list[SourceSpan]:
    base = min(s.offset_ms for s in sources)
    return [
        SourceSpan(
            key=i,
            kind=s.kind,
            track_name=s.track_name,
            sids=s.sids,
            # negative timestamps (codec delay such as Opus pre-skip) do not extend a span before its offset
            start=(s.offset_ms - base) * TICKS_PER_MS + max(0, p.start),
            end=(s.offset_ms - base) * TICKS_PER_MS + p.end,
        )
        for i, (s, p) in enumerate(zip(sources, probes, strict=True))
    ]


def _mix_audio(
    job: CompositionJob,
    sources: list[SourceTrack],
    deltas: dict[int, int],
    timeline: Plan,
    out_path: Path,
    tick: Callable[[float], None],
) -> None:
    """Mix every selected audio source once over [0, duration) and encode it."""
    iterators = [read_audio(sources[key].path, deltas[key]) for key in timeline.audio_keys]
    encoder = AudioEncoder(out_path, job.format)
    done = 0
    for block in mix(iterators, timeline.duration):
        encoder.encode(block)
        done += block.shape[0]
        tick(done / max(timeline.duration, 1))
    encoder.close()


def compose(
    job: CompositionJob,
    sources: list[SourceTrack],
    out_path: Path,
    *,
    workers: int | None = None,
    memory_mb: float = DEFAULT_MEMORY_MB,
    progress: Callable[[float], None] | None = None,
) -> CompositionResult:
    """Render the composition into out_path (.mp4/.webm as job.format).

    Up to `workers` worker processes render video chunks (default os.cpu_count()), fewer when the estimated
    peak memory of all of them would exceed `memory_mb` (<= 0: no limit; see budget.py); `progress` receives
    values in [0, 1], called from this thread. Raises NoSourcesError (53630) when nothing is selected,
    MediaError for unreadable sources or output failures."""
    started = time.monotonic()
    if not sources:
        raise NoSourcesError("the room has no recordings to compose")
    with ThreadPoolExecutor(max_workers=min(8, len(sources))) as pool:
        probes = list(pool.map(lambda s: probe(s.path, s.kind), sources))
    spans = _spans(sources, probes)
    timeline = plan(
        spans, job.layout, job.resolution, job.audio_sources, job.audio_sources_excluded, trim=job.trim
    )
    if (not timeline.video_keys and not timeline.audio_keys) or timeline.duration <= 0:
        raise NoSourcesError("sources and exclusions resolved to an empty track list")
    has_video = not job.layout.is_empty and bool(timeline.video_keys)
    has_audio = bool(timeline.audio_keys)
    enc = job.encoder
    total_frames = -(-timeline.duration * enc.fps // TICKS_PER_SECOND) if has_video else 0
    codec = VideoCodecSettings(
        fmt=job.format,
        width=job.resolution.width,
        height=job.resolution.height,
        fps=enc.fps,
        preset=enc.preset,
        crf=enc.crf,
        threads=enc.encoder_threads,
    )
    frame_ticks = TICKS_PER_SECOND // enc.fps
    seconds_per_chunk = enc.chunk_seconds or chunk_seconds(timeline.duration / TICKS_PER_SECOND)
    report = progress or (lambda _: None)
    state = {"frames": 0, "audio": 0.0}
    video_share = 1.0 - _AUDIO_WEIGHT if has_audio and has_video else (1.0 if has_video else 0.0)

    def update() -> None:
        video = state["frames"] / total_frames if total_frames else 1.0
        report(min(1.0, video_share * video + (1.0 - video_share) * state["audio"]))

    def on_audio(fraction: float) -> None:
        state["audio"] = fraction
        update()

    def on_frames(count: int) -> None:
        state["frames"] += count
        update()

    workdir = Path(tempfile.mkdtemp(prefix="mixdown-compose-", dir=out_path.parent))
    try:
        # output time = file time + delta: the file's zero sits at the relative offset on the room timeline
        deltas = {
            key: spans[key].start - max(0, probes[key].start) - shift for key, shift in timeline.shift.items()
        }
        sources_for_video = {key: (sources[key].path, deltas[key]) for key in timeline.video_keys}
        tasks = [
            ChunkTask(
                index=i,
                first_frame=first,
                last_frame=last,
                segments=tuple(
                    s
                    for s in timeline.segments
                    if s.end > first * frame_ticks and s.start < last * frame_ticks
                ),
                grids=timeline.grids,
                sources=sources_for_video,
                codec=codec,
                interpolation=enc.interpolation,
                max_hold_ms=enc.max_hold_ms,
                decoder_threads=enc.decoder_threads,
                out_path=workdir / f"video-{i:05d}.nut",
            )
            for i, (first, last) in enumerate(plan_chunks(total_frames, seconds_per_chunk * enc.fps))
        ]
        audio_path = workdir / "audio.nut" if has_audio else None
        requested = workers or os.cpu_count() or 1
        count = render_processes(
            requested=requested,
            chunks=len(tasks),
            canvas_pixels=job.resolution.width * job.resolution.height,
            source_pixels=_busiest_chunk(tasks, probes),
            budget_mb=memory_mb,
        )
        # one process: overlap decoding with encoding through threads; several: each runs single-threaded
        threads = encoder_threads(codec.threads, count, requested)
        tasks = [
            replace(task, codec=replace(codec, threads=threads), background_decode=count == 1)
            for task in tasks
        ]
        try:
            if count == 1 or len(tasks) <= 1:
                parts = render_run(tasks, on_frames)  # one process: chunks in order, decoders carried over
                if audio_path is not None:
                    _mix_audio(job, sources, deltas, timeline, audio_path, on_audio)
            else:
                parts = _render_parallel(
                    tasks, count, job, sources, deltas, timeline, audio_path, on_frames, on_audio
                )
            stats = join(out_path, job.format, parts, audio_path)
        except CompositorError:
            raise
        except Exception as exc:  # the engine's edge: codec/container failures become a permanent MediaError
            logger.exception("composition rendering failed")
            raise MediaError(f"rendering failed: {exc}") from exc
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(1.0)
    logger.info(
        "composition rendered",
        extra={
            "duration_s": stats.duration_s,
            "frames": total_frames,
            "chunks": len(tasks),
            "workers": count,
            "wall_s": round(time.monotonic() - started, 3),
        },
    )
    return CompositionResult(
        duration_s=stats.duration_s,
        size=stats.size,
        bitrate_kbps=stats.bitrate_kbps,
        video_frames=total_frames,
        has_video=has_video,
        has_audio=has_audio,
    )


def _render_parallel(
    tasks: list[ChunkTask],
    count: int,
    job: CompositionJob,
    sources: list[SourceTrack],
    deltas: dict[int, int],
    timeline: Plan,
    audio_path: Path | None,
    on_frames: Callable[[int], None],
    on_audio: Callable[[float], None],
) -> list[Path]:
    """Chunks in `count` worker processes (forkserver: safe from a threaded caller) while this thread mixes
    the audio; progress from workers arrives through a queue and is reported from this thread."""
    context = multiprocessing.get_context("forkserver")
    # the server imports the renderer once; workers fork from it and share av/numpy pages
    context.set_forkserver_preload(["services.compositor.segments"])
    progress_queue: Queue[int] = context.Queue()
    with ProcessPoolExecutor(
        max_workers=count,
        mp_context=context,
        initializer=_init_worker,
        initargs=(progress_queue, os.getpid()),
    ) as pool:
        # runs of consecutive chunks (no seek pre-roll inside a run), two per process so that a light run
        # can fill the end; the heaviest first (longest-processing-time order)
        runs = plan_runs(tasks, RUNS_PER_PROCESS * count)
        futures: dict[int, Future[list[Path]]] = {
            run[0].index: pool.submit(_run_chunks, run)
            for run in sorted(runs, key=lambda run: sum(chunk_work(task) for task in run), reverse=True)
        }
        if audio_path is not None:
            _mix_audio(job, sources, deltas, timeline, audio_path, on_audio)
        pending = set(futures.values())
        while pending:
            with contextlib.suppress(queue.Empty):
                on_frames(progress_queue.get(timeout=0.2))
            pending = {f for f in pending if not f.done()}
        while True:
            try:
                on_frames(progress_queue.get_nowait())
            except queue.Empty:
                break
        return [path for index in sorted(futures) for path in futures[index].result()]
