"""Render workers die with their compositor: a process killed with SIGKILL mid-composition leaves no
worker processes behind (they would otherwise idle forever, holding memory)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.compositor.tests.media.synth import write_video

pytestmark = pytest.mark.media

REPO = Path(__file__).resolve().parents[4]
SCRIPT = """
import sys
from pathlib import Path
from services.compositor.job import CompositionJob, SourceTrack
from services.compositor.render import compose

if __name__ == "__main__":
    layout = {"grid": {"video_sources": ["*"]}}
    job = CompositionJob.create(video_layout=layout, format="mp4", resolution="640x480")
    sources = [SourceTrack(sys.argv[1], "video", "a", 0), SourceTrack(sys.argv[1], "video", "b", 0)]
    compose(job, sources, Path(sys.argv[2]), workers=2)
"""


def _children() -> dict[int, int]:
    """pid -> parent pid of every process."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            found[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _descendants(root: int) -> set[int]:
    parents = _children()
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree - {root}


def test_workers_exit_when_the_compositor_is_killed(tmp_path: Path) -> None:
    source = write_video(tmp_path / "long.mkv", [(0.0, 30.0, "red", 320, 240)])
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(source), str(tmp_path / "out.mp4")], cwd=REPO, env=env
    )
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 3 and time.monotonic() < deadline:  # forkserver + 2 workers
            time.sleep(0.2)
            workers = _descendants(proc.pid)
        assert len(workers) >= 3, f"render workers never started: {workers}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = {pid for pid in workers if Path(f"/proc/{pid}").exists()}
        assert not alive, f"workers outlived the killed compositor: {sorted(alive)}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in workers:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
