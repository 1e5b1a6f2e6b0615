"""A recorder process for the crash test: records one VP8 and one Opus track into a directory store
until it is killed. Prints ``{"video": port, "audio": port}`` once listening."""

from __future__ import annotations

import asyncio
import json
import sys

from services.recorder.depacketize import Codec
from services.recorder.directory_store import DirectoryObjectStore
from services.recorder.receiver import PortAllocator
from services.recorder.track_recorder import TrackRecorder


async def run(root: str) -> None:
    store = DirectoryObjectStore(root)
    ports = PortAllocator("127.0.0.1", 32000, 32999)
    (video_sock,) = ports.allocate(1)
    (audio_sock,) = ports.allocate(1)
    video = TrackRecorder(Codec.VP8, store, "crash/video", video_sock)
    audio = TrackRecorder(Codec.OPUS, store, "crash/audio", audio_sock)
    await video.start()
    await audio.start()
    print(json.dumps({"video": video.rtp_port, "audio": audio.rtp_port}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1]))
