"""How a composition is cut and how many render processes it gets: chunk length from the output's length,
and a process count that keeps the whole composition inside a memory budget. Pure arithmetic, table-tested.

The memory model was measured with PyAV 18 on this project's machines (peak PSS per process):
- every render process: ~25 MB of interpreter, PyAV and numpy pages of its own (the rest is shared with the
  forkserver it was forked from);
- its encoder: libx264 with one thread and veryfast's 10-frame lookahead takes about 15 MB + 80 bytes per
  output pixel (39 MB at 640x480, 89 MB at 1280x720, 173 MB at 1920x1080); libvpx takes less;
- each source visible in its chunk, decoded inline (several processes): the decoder's reference frames and the
  frame on screen with its scaled tile, about 10 bytes per source pixel (3 MB for 640x480);
- the parent process (audio mix, join), the forkserver and the resource tracker: ~52 MB.
Measured totals: 4 sources at 640x480 → 170 MB with two processes, at 1280x720 → 286 MB.
A single process decodes on threads a few frames ahead (more memory per source), but one process is always
allowed.
"""

from __future__ import annotations

MIN_CHUNK_SECONDS = 10
MAX_CHUNK_SECONDS = 120
CHUNKS_TARGET = 8  # enough chunks to keep 8 processes busy; more would only add seek pre-roll

PARENT_MB = 52.0
PROCESS_BASE_MB = 25.0
ENCODER_BASE_MB = 15.0
ENCODER_BYTES_PER_PIXEL = 80.0
SOURCE_BYTES_PER_PIXEL = 10.0
_MB = 1024 * 1024


def chunk_seconds(duration_s: float) -> int:
    """Length of the time segments rendered in parallel, from the output duration only (never from the
    number of processes, so the output is the same on every machine). Each chunk's sources seek to the
    keyframe before its start and decode from there, so longer chunks waste less decoding; about
    CHUNKS_TARGET chunks per composition, between 10 s and 2 min."""
    wanted = int(duration_s // CHUNKS_TARGET)
    return max(MIN_CHUNK_SECONDS, min(MAX_CHUNK_SECONDS, wanted))


def process_mb(canvas_pixels: int, source_pixels: list[int]) -> float:
    """Estimated peak memory of one render process: encoder of the canvas plus the sources of its chunk."""
    encoder = ENCODER_BASE_MB + ENCODER_BYTES_PER_PIXEL * canvas_pixels / _MB
    sources = SOURCE_BYTES_PER_PIXEL * sum(source_pixels) / _MB
    return PROCESS_BASE_MB + encoder + sources


def render_processes(
    *, requested: int, chunks: int, canvas_pixels: int, source_pixels: list[int], budget_mb: float
) -> int:
    """How many render processes to run: the requested count, no more than there are chunks, and no more than
    fit in `budget_mb` beside the parent (budget_mb <= 0: unlimited). Always at least one: a composition that
    does not fit even once still runs, one chunk at a time."""
    count = max(1, min(requested, chunks))
    if budget_mb <= 0:
        return count
    fits = int((budget_mb - PARENT_MB) // process_mb(canvas_pixels, source_pixels))
    return max(1, min(count, fits))


def encoder_threads(configured: int, processes: int, requested: int) -> int:
    """Encoder threads per chunk. Chunks in parallel processes keep the cores busy with single-threaded
    encoders (cheapest in CPU and memory, and the same output for any process count). When the composition
    gets one process although more were asked for (one chunk, or the memory budget), that one encoder uses
    frame threads instead, so the cores are still used; its output then differs slightly from the chunked
    one."""
    if processes > 1 or requested <= 1 or configured != 1:
        return configured
    return requested
