"""kill -9 of a recording process mid-stream: recover() builds one playable file with everything up to
at most ~2 s before the kill."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest

from services.recorder.depacketize import Codec
from services.recorder.directory_store import DirectoryObjectStore
from services.recorder.finalize import recover
from services.recorder.tests.media.synthetic import encode_tone, encode_video, read_frame_number, rtp_stream
from services.recorder.tests.media.test_recording import FakeJanus

pytestmark = [pytest.mark.media, pytest.mark.timeout(60)]

KILL_AT = 3.5  # seconds of media sent (in real time) when the recorder is killed
MAX_LOSS = 2.0
REPO_ROOT = (
    Path(__file__).resolve().parents[4]
)  # the promise: at most this much media before the kill is lost


async def test_sigkill_mid_stream_then_recover() -> None:
    frames = encode_video(Codec.VP8, 150, gop=30)
    tone = encode_tone(5.0)
    with tempfile.TemporaryDirectory(prefix="mixdown-crash-") as root:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.recorder.tests.media.crash_recorder",
            root,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            ports = json.loads(line)
            janus = FakeJanus()
            await janus.start()
            v = [d for d in rtp_stream(Codec.VP8, [f.data for f in frames], ssrc=1) if d.media_time < KILL_AT]
            a = [d for d in rtp_stream(Codec.OPUS, tone, ssrc=2) if d.media_time < KILL_AT]
            await asyncio.gather(
                janus.play(v, ports["video"], speed=1.0), janus.play(a, ports["audio"], speed=1.0)
            )
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
            janus.close()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        last_video_sent = v[-1].frame
        last_audio_sent = a[-1].frame
        store = DirectoryObjectStore(root)
        video = await recover(store, "crash/video")
        audio = await recover(store, "crash/audio")
        assert await store.list("crash/video/chunks/") == []
        assert [i.key for i in await store.list("crash/audio/")] == sorted(
            [audio.key, "crash/audio/finalized.json"]
        )

        with av.open(str(Path(root) / video.key)) as container:
            numbers = [
                read_frame_number(f.to_ndarray(format="rgb24"))
                for f in container.decode(container.streams.video[0])
            ]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "recovered video has holes"
        assert numbers[0] == 0
        assert numbers[-1] >= last_video_sent - MAX_LOSS * 30
        assert video.last_timestamp_ms >= (last_video_sent / 30 - MAX_LOSS) * 1000

        with av.open(str(Path(root) / audio.key)) as container:
            stream = container.streams.audio[0]
            pcm = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
        recovered_seconds = len(pcm) / 48000
        assert recovered_seconds >= (last_audio_sent + 1) * 0.02 - MAX_LOSS
        assert audio.duration_ms / 1000 == pytest.approx(recovered_seconds, abs=0.05)
        # Recovery is idempotent: a second recover() returns the stored result.
        assert await recover(store, "crash/audio") == audio
