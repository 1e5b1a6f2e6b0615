"""`mixdown compose`: render a composition offline from recordings on disk.

    mixdown compose RECORDINGS_DIR_OR_MANIFEST -o out.mp4 [--layout grid|speaker|JSON|@file.json]
        [--audio-sources '*' ...] [--audio-sources-excluded NAME ...] [--resolution 640x480]
        [--format mp4|webm] [--trim/--no-trim] [--allow-hd] [--workers N] [--memory-mb MB]
        [--audio-only] [--quiet]

Exit codes: 0 done, 2 bad arguments or input (invalid layout, resolution, manifest), 3 nothing to compose
(53630), 4 media failure (unreadable source, encoder error).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from libs.composition.spec import LayoutError as SpecError
from services.compositor.errors import (
    CompositorError,
    LayoutError,
    MediaError,
    NoSourcesError,
    from_spec_error,
)
from services.compositor.job import CompositionJob
from services.compositor.layout import parse_resolution, preset
from services.compositor.render import DEFAULT_MEMORY_MB, compose
from services.compositor.sources import SourceListError, load_sources

EXIT_OK, EXIT_INPUT, EXIT_NO_SOURCES, EXIT_MEDIA = 0, 2, 3, 4
_PRESETS = ("grid", "speaker")


class ProgressBar:
    """A one-line progress bar on a terminal stream, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._started = time.monotonic()
        self._last_draw = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        filled = int(fraction * self._width)
        elapsed = now - self._started
        eta = f"{elapsed / fraction - elapsed:5.0f}s left" if 0 < fraction < 1 else " " * 10
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r[{bar}] {fraction * 100:5.1f}% {elapsed:5.0f}s {eta}")
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def _layout_argument(value: str, resolution: str, allow_hd: bool) -> object:
    if value in _PRESETS:
        try:
            canvas = parse_resolution(resolution, allow_hd=allow_hd)
        except SpecError as exc:
            raise from_spec_error(exc) from exc
        return preset(value, canvas)
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LayoutError(
            53640, f"--layout is neither a preset ({', '.join(_PRESETS)}) nor JSON: {exc}"
        ) from exc
    return parsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", type=Path, help="directory of RT….mkv/.mka + RT….json, or a manifest JSON")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output file (.mp4 or .webm)")
    parser.add_argument(
        "--layout",
        default=None,
        help="preset (grid, speaker), VideoLayout JSON, or @file.json (default: grid)",
    )
    parser.add_argument("--audio-only", action="store_true", help="no video track (needs audio sources)")
    parser.add_argument("--audio-sources", nargs="*", default=["*"], help="track names/SIDs, * wildcards")
    parser.add_argument("--audio-sources-excluded", nargs="*", default=[], help="removed from the audio set")
    parser.add_argument("--resolution", default="640x480", help="WxH (default 640x480)")
    parser.add_argument("--format", choices=("mp4", "webm"), default=None, help="default: from -o's suffix")
    parser.add_argument("--trim", action=argparse.BooleanOptionalAction, default=True, help="cut silent gaps")
    parser.add_argument("--allow-hd", action="store_true", help="allow up to 1920x1080")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument(
        "--memory-mb",
        type=float,
        default=DEFAULT_MEMORY_MB,
        help=f"memory budget: fewer workers if they would not fit (default {DEFAULT_MEMORY_MB:.0f}, 0: none)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, stderr: TextIO = sys.stderr) -> int:
    """Execute a parsed `compose` command; returns the exit code and prints one clear line on failure."""
    fmt = args.format or ("webm" if args.output.suffix.lower() == ".webm" else "mp4")
    try:
        layout = (
            None
            if args.audio_only
            else _layout_argument(args.layout or "grid", args.resolution, args.allow_hd)
        )
        job = CompositionJob.create(
            video_layout=layout,
            resolution=args.resolution,
            audio_sources=args.audio_sources,
            audio_sources_excluded=args.audio_sources_excluded,
            format=fmt,
            trim=args.trim,
            allow_hd=args.allow_hd,
        )
        sources = load_sources(args.inputs)
        if args.workers is not None and args.workers < 1:
            raise SourceListError("--workers must be at least 1")
        bar = None if args.quiet else ProgressBar(stderr)
        started = time.monotonic()
        try:
            result = compose(
                job, sources, args.output, workers=args.workers, memory_mb=args.memory_mb, progress=bar
            )
        finally:
            if bar is not None:
                bar.finish()
    except (LayoutError, SourceListError, OSError) as exc:
        stderr.write(f"mixdown compose: {getattr(exc, 'message', exc)}\n")
        return EXIT_INPUT
    except NoSourcesError as exc:
        stderr.write(f"mixdown compose: {exc.message} (error {exc.code})\n")
        return EXIT_NO_SOURCES
    except (MediaError, CompositorError) as exc:
        stderr.write(f"mixdown compose: media failure: {exc.message}\n")
        return EXIT_MEDIA
    wall = time.monotonic() - started
    stderr.write(
        f"{args.output}: {result.duration_s:.2f} s, {result.size} bytes, {result.bitrate_kbps} kbit/s, "
        f"rendered in {wall:.1f} s ({result.duration_s / wall if wall else 0:.1f}x realtime)\n"
    )
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add `compose` to the `mixdown` CLI's subparsers (argparse `add_subparsers()` result)."""
    parser = subparsers.add_parser("compose", help="render a composition from recordings on disk")
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mixdown compose", description="Render a composition offline.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
