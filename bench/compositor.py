"""Composition speed: our engine against the ffmpeg CLI on the same synthetic Twilio-like rooms.

Rooms (cached under bench/out/rooms/): per participant a VP8 640x480 30 fps ~800 kbit/s .mkv of textured,
moving, noisy content with a keyframe every 5-10 s, and an Opus tone .mka; participants join at 0, 5, 10,
20, 30 s (cycling) and stay to the end. For each case both engines render the same grid (cell geometry from
services.compositor.layout), libx264 veryfast crf 23 yuv420p 30 fps + AAC 128k, and we report realtime factor,
wall-time ratio (ours / ffmpeg), CPU seconds, peak RSS of the whole process tree, and PSNR of our output
against ffmpeg's. `floor` is the codec floor as a ratio: the CPU time of decoding every input and encoding the
output once (single-threaded, the engine's PyAV codec builds), divided by the cores, over ffmpeg's wall time.
No engine using these codecs can have a wall ratio below it. Results go to bench/out/compositor.json.

    python -m bench compositor [--duration 120] [--cases n2,n4,n9,n4hd] [--workers N] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from services.compositor.layout import Resolution, fit_inside, parse_layout, region_grid

OUT = Path(__file__).parent / "out"
ROOMS = OUT / "rooms"
JOIN_AT = (0, 5, 10, 20, 30)
TONES = (220.0, 330.0, 440.0, 550.0, 660.0, 770.0, 880.0, 990.0, 1100.0)
CASES = {
    "n2": (2, Resolution(640, 480)),
    "n4": (4, Resolution(640, 480)),
    "n9": (9, Resolution(640, 480)),
    "n4hd": (4, Resolution(1280, 720)),
}


# ---------------------------------------------------------------- synthetic rooms


def _texture(seed: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    big: np.ndarray[Any, np.dtype[np.float64]] = np.kron(coarse, np.ones((16, 16))).astype(np.float64)
    for _ in range(3):  # soften the blocks into blobs
        big = (big + np.roll(big, 5, 0) + np.roll(big, 5, 1) + np.roll(big, -5, 0) + np.roll(big, -5, 1)) / 5
    stripes = 40 * np.sin(np.arange(1280) / 9.0)[None, :]
    textured: np.ndarray[Any, np.dtype[np.uint8]] = np.clip(big * 0.8 + stripes + 20, 16, 235).astype(
        np.uint8
    )
    return textured


def _write_participant(index: int, seconds: int, folder: Path) -> None:
    video = folder / f"p{index}.mkv"
    audio = folder / f"p{index}.mka"
    rng = np.random.default_rng(1000 + index)
    texture = _texture(index)
    fps = 30
    with av.open(str(video), "w", format="matroska") as container:
        stream: Any = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.bit_rate = 800_000
        stream.codec_context.gop_size = fps * (5 + index % 6)  # keyframes every 5-10 s
        stream.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "token-parts": "0"}
        chroma_u = np.full((240, 320), 110 + 8 * (index % 5), np.uint8)
        chroma_v = np.full((240, 320), 150 - 8 * (index % 4), np.uint8)
        for i in range(seconds * fps):
            x = int(320 + 300 * np.sin(i / 90 + index))
            y = int(240 + 220 * np.cos(i / 70 + index))
            luma = texture[y : y + 480, x : x + 640].astype(np.int16)
            luma += rng.integers(-6, 7, luma.shape, dtype=np.int16)  # sensor-like noise
            buf = np.empty((720, 640), np.uint8)
            buf[:480] = np.clip(luma, 16, 235)
            buf[480:].reshape(-1)[: 240 * 320] = chroma_u.reshape(-1)
            buf[480:].reshape(-1)[240 * 320 :] = chroma_v.reshape(-1)
            frame: Any = av.VideoFrame.from_ndarray(buf, format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with av.open(str(audio), "w", format="matroska") as container:
        astream: Any = container.add_stream("libopus", rate=48000)
        astream.layout = "mono"
        hz = TONES[index % len(TONES)]
        for start in range(0, seconds * 48000, 960):
            t = (start + np.arange(960)) / 48000
            samples = (0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
            aframe: Any = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
            aframe.sample_rate = 48000
            aframe.pts = start
            aframe.time_base = Fraction(1, 48000)
            for packet in astream.encode(aframe):
                container.mux(packet)
        for packet in astream.encode(None):
            container.mux(packet)


def _synthesize(job: tuple[int, int, Path]) -> int:
    index, seconds, folder = job
    print(f"  synthesizing participant {index} ({seconds} s)", file=sys.stderr, flush=True)
    _write_participant(index, seconds, folder)
    (folder / f"p{index}.done").touch()
    return index


def ensure_room(participants: int, duration: int) -> Path:
    """Synthesize (once, shared by every room size of this duration) the participants and return the
    room's manifest. Participant i joins at JOIN_AT[i % 5] (scaled for rooms shorter than 120 s)."""
    folder = ROOMS / f"{duration}s"
    folder.mkdir(parents=True, exist_ok=True)
    joins = [JOIN_AT[i % len(JOIN_AT)] * min(duration, 120) // 120 for i in range(participants)]
    missing = [
        (i, duration - joins[i], folder) for i in range(participants) if not (folder / f"p{i}.done").exists()
    ]
    if missing:
        with multiprocessing.get_context("forkserver").Pool(min(len(missing), os.cpu_count() or 1)) as pool:
            pool.map(_synthesize, missing)
    tracks = [
        {"path": f"p{i}.{ext}", "kind": kind, "track_name": f"p{i}-{kind}", "offset_ms": joins[i] * 1000}
        for i in range(participants)
        for kind, ext in (("video", "mkv"), ("audio", "mka"))
    ]
    manifest = folder / f"manifest-n{participants}.json"
    manifest.write_text(json.dumps({"tracks": tracks}, indent=1))
    return manifest


# ---------------------------------------------------------------- measurement


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    peak_pss_mb: float  # proportional set size summed over the process tree: shared pages counted once
    peak_rss_mb: float  # plain RSS summed over the tree (double-counts shared libraries)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError):
            continue
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def measure(command: list[str]) -> Run:
    """Run a command: wall time, CPU seconds of the whole process tree, and peak summed PSS/RSS (sampled
    every 50 ms; CPU is the larger of the sampled per-process totals and the rusage of the waited child)."""
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    cpu: dict[int, float] = {}
    peak_rss = peak_pss = 0
    started = time.monotonic()
    process = subprocess.Popen(command)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_rss, peak_pss
        while not done.is_set():
            rss = pss = 0
            for pid in _tree(process.pid):
                try:
                    with open(f"/proc/{pid}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                    cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
                    rss += int(fields[21]) * page
                    pss += _pss_kb(pid) * 1024
                except (OSError, IndexError, ValueError):
                    continue
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if status != 0:
        raise RuntimeError(f"command failed ({status}): {' '.join(command[:4])} ...")
    direct = usage.ru_utime + usage.ru_stime
    return Run(
        round(wall, 2),
        round(max(direct, sum(cpu.values())), 2),
        round(peak_pss / 1e6, 1),
        round(peak_rss / 1e6, 1),
    )


def ffmpeg_command(manifest: Path, canvas: Resolution, out: Path, duration: int) -> list[str]:
    """An ffmpeg overlay graph equivalent to our grid: same cells and fitted sizes."""
    folder = manifest.parent
    tracks = json.loads(manifest.read_text())["tracks"]
    # cells are taken in order of start time (ties: input order), as our engine does
    videos = sorted((t for t in tracks if t["kind"] == "video"), key=lambda t: int(t["offset_ms"]))
    audios = [t for t in tracks if t["kind"] == "audio"]
    region = parse_layout({"grid": {"video_sources": ["*"]}}, canvas).regions[0]
    grid = region_grid(region, canvas, len(videos))
    inputs: list[str] = []
    for t in videos + audios:
        inputs += ["-i", str(folder / t["path"])]
    parts = [f"color=c=black:s={canvas.width}x{canvas.height}:r=30:d={duration}[base]"]
    last = "base"
    for i, t in enumerate(videos):
        cell = grid.cells[grid.usable[i]]
        fit = fit_inside(cell, 640, 480)
        offset = t["offset_ms"] / 1000
        parts.append(f"[{i}:v]setpts=PTS-STARTPTS+{offset}/TB,fps=30,scale={fit.width}:{fit.height}[v{i}]")
        parts.append(f"[{last}][v{i}]overlay=x={fit.x}:y={fit.y}:eof_action=pass[o{i}]")
        last = f"o{i}"
    mixes = []
    for j, t in enumerate(audios):
        parts.append(f"[{len(videos) + j}:a]adelay={t['offset_ms']}:all=1[a{j}]")
        mixes.append(f"[a{j}]")
    parts.append(f"{''.join(mixes)}amix=inputs={len(audios)}:normalize=0:duration=longest[aout]")
    return [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs,
        "-filter_complex", ";".join(parts), "-map", f"[{last}]", "-map", "[aout]",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-r", "30",
        "-c:a", "aac", "-b:a", "128k", "-ac", "1", "-ar", "48000", "-t", str(duration), str(out),
    ]  # fmt: skip


def ours_command(manifest: Path, canvas: Resolution, out: Path, workers: int | None) -> list[str]:
    args = [str(manifest), str(out), str(canvas), str(workers or 0)]
    return [sys.executable, "-m", "bench.compositor", "--_ours", *args]


def _run_ours(manifest: str, out: str, resolution: str, workers: str) -> int:
    from services.compositor.job import CompositionJob
    from services.compositor.render import compose
    from services.compositor.sources import load_manifest

    job = CompositionJob.create(
        video_layout={"grid": {"video_sources": ["*"]}},
        resolution=resolution,
        audio_sources=["*"],
        format="mp4",
        allow_hd=True,
    )
    compose(job, load_manifest(Path(manifest)), Path(out), workers=int(workers) or None)
    return 0


def psnr(ours: Path, reference: Path) -> float | None:
    """Mean-squared-error PSNR over the luma of frames paired by index (streamed, both decoded with PyAV)."""
    total, count = 0.0, 0
    with av.open(str(ours)) as a, av.open(str(reference)) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0), strict=False):
            ya = fa.to_ndarray(format="yuv420p")[: fa.height].astype(np.float32)
            yb = fb.to_ndarray(format="yuv420p")[: fb.height].astype(np.float32)
            total += float(np.mean((ya - yb) ** 2))
            count += 1
    if count == 0:
        return None
    mse = total / count
    return 99.0 if mse == 0 else round(10 * float(np.log10(255**2 / mse)), 2)


def _thread_cpu_decode(path: Path) -> float:
    """CPU seconds to decode every video frame of `path` on one thread (PyAV: the engine's codec build)."""
    with av.open(str(path)) as container:
        stream: Any = container.streams.video[0]
        stream.codec_context.thread_count = 1
        started = time.thread_time()
        for _ in container.decode(stream):
            pass
        return time.thread_time() - started


def _thread_cpu_encode(reference: Path) -> float:
    """CPU seconds spent inside libx264 (veryfast, CRF 23, one thread) encoding the frames of `reference`;
    decoding the reference is not counted."""
    spent = 0.0
    with av.open(str(reference)) as source, av.open(os.devnull, "w", format="mp4") as sink:
        video: Any = source.streams.video[0]
        video.codec_context.thread_count = 1
        out: Any = sink.add_stream("libx264", rate=30)
        out.width, out.height, out.pix_fmt = video.codec_context.width, video.codec_context.height, "yuv420p"
        out.options = {"preset": "veryfast", "crf": "23"}
        out.codec_context.thread_count = 1
        for frame in source.decode(video):
            frame.pict_type = av.video.frame.PictureType.NONE
            started = time.thread_time()
            packets = out.encode(frame)
            spent += time.thread_time() - started
            for packet in packets:
                sink.mux(packet)
        started = time.thread_time()
        packets = out.encode(None)
        spent += time.thread_time() - started
        for packet in packets:
            sink.mux(packet)
    return spent


def codec_floor(manifest: Path, reference: Path) -> float:
    """CPU seconds that any engine using these codec builds must spend: decoding every video input once and
    encoding the output once, single-threaded (no scaling, compositing, audio or muxing)."""
    tracks = json.loads(manifest.read_text())["tracks"]
    videos = [manifest.parent / t["path"] for t in tracks if t["kind"] == "video"]
    return sum(_thread_cpu_decode(v) for v in videos) + _thread_cpu_encode(reference)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--_ours"]:
        return _run_ours(*argv[1:5])
    parser = argparse.ArgumentParser(prog="python -m bench compositor", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=120, help="room length in seconds (default 120)")
    parser.add_argument("--cases", default="n2,n4,n9,n4hd", help="comma list of " + ",".join(CASES))
    parser.add_argument("--workers", type=int, default=None, help="our worker processes (default: cpu count)")
    parser.add_argument("--runs", type=int, default=1, help="runs per engine and case; the median is kept")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("ffmpeg is not installed (apt-get install -y ffmpeg)", file=sys.stderr)
        return 2
    results = []
    for name in args.cases.split(","):
        participants, canvas = CASES[name]
        manifest = ensure_room(participants, args.duration)
        work = OUT / "compositor" / name
        work.mkdir(parents=True, exist_ok=True)
        ours_out, ff_out = work / "ours.mp4", work / "ffmpeg.mp4"
        ours_runs, ff_runs = [], []
        for _ in range(args.runs):  # alternate so machine noise hits both alike
            ff_runs.append(measure(ffmpeg_command(manifest, canvas, ff_out, args.duration)))
            ours_runs.append(measure(ours_command(manifest, canvas, ours_out, args.workers)))
        ours = sorted(ours_runs, key=lambda r: r.wall_s)[len(ours_runs) // 2]
        ff = sorted(ff_runs, key=lambda r: r.wall_s)[len(ff_runs) // 2]
        floor_cpu = codec_floor(manifest, ff_out)
        floor_wall = floor_cpu / (os.cpu_count() or 1)
        row = {
            "case": f"{name}-{canvas}",
            "participants": participants,
            "resolution": str(canvas),
            "room_s": args.duration,
            "ours": asdict(ours),
            "ffmpeg": asdict(ff),
            "ours_realtime": round(args.duration / ours.wall_s, 2),
            "ffmpeg_realtime": round(args.duration / ff.wall_s, 2),
            "wall_ratio": round(ours.wall_s / ff.wall_s, 3),
            # the best any engine could do with these codec builds: decode + encode CPU spread over all cores
            "codec_floor_cpu_s": round(floor_cpu, 2),
            "floor_ratio": round(floor_wall / ff.wall_s, 3),
            "psnr_db": psnr(ours_out, ff_out),
        }
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    header = (
        f"{'case':<16}{'ours x rt':>10}{'ff x rt':>9}{'ratio':>7}{'floor':>7}{'ours cpu':>9}{'ff cpu':>8}"
    )
    header += f"{'ours PSS MB':>12}{'ff PSS MB':>10}{'PSNR dB':>9}"
    print(header)
    for r in results:
        print(
            f"{r['case']:<16}{r['ours_realtime']:>10.2f}{r['ffmpeg_realtime']:>9.2f}{r['wall_ratio']:>7.2f}"
            f"{r['floor_ratio']:>7.2f}"
            f"{r['ours']['cpu_s']:>9.1f}{r['ffmpeg']['cpu_s']:>8.1f}{r['ours']['peak_pss_mb']:>12.0f}"
            f"{r['ffmpeg']['peak_pss_mb']:>10.0f}{(r['psnr_db'] or 0):>9.2f}"
        )
    (OUT / "compositor.json").write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
