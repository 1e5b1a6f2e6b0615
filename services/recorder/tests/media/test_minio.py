"""The same recording path against MinIO (integration): chunks are uploaded while recording, finalize
streams them back, uploads the .mkv and removes the chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from libs.config import S3Settings
from libs.db.testing import integration_env, unique_name
from libs.storage import MinioObjectStore
from services.recorder.chunks import chunk_prefix
from services.recorder.depacketize import Codec
from services.recorder.finalize import finalize
from services.recorder.receiver import PortAllocator
from services.recorder.tests.media.synthetic import EncodedFrame, encode_video, rtp_stream, shuffle_locally
from services.recorder.tests.media.test_recording import FakeJanus, decode_video, first_frame_after_seek
from services.recorder.track_recorder import TrackRecorder, TrackRecorderConfig

pytestmark = [pytest.mark.integration, pytest.mark.media, pytest.mark.timeout(120)]


@pytest.fixture
async def minio() -> AsyncIterator[MinioObjectStore]:
    env = integration_env()
    settings = S3Settings(
        endpoint=env.get("S3_ENDPOINT", "127.0.0.1:9000"),
        access_key=env.get("S3_ACCESS_KEY", "minioadmin"),
        secret_key=SecretStr(env.get("S3_SECRET_KEY", "minioadmin")),
        secure=env.get("S3_SECURE", "false").lower() == "true",
        region=env.get("S3_REGION", "us-east-1"),
    )
    store = MinioObjectStore(settings, bucket=unique_name("rec-"))
    await store.ensure_bucket()
    try:
        yield store
    finally:
        for info in await store.list(""):
            await store.delete(info.key)
        await asyncio.to_thread(store._client.remove_bucket, store.bucket)  # noqa: SLF001  # test cleanup


async def test_vp8_recording_through_minio(minio: MinioObjectStore, tmp_path: Path) -> None:
    frames: list[EncodedFrame] = encode_video(Codec.VP8, 120, gop=30)
    rtp_sock, rtcp_sock = PortAllocator("127.0.0.1", 33000, 33999).allocate(2)
    rec = TrackRecorder(
        Codec.VP8, minio, "rooms/RMx/RTminio", rtp_sock, rtcp_sock, TrackRecorderConfig(chunk_seconds=1.0)
    )
    await rec.start()
    janus = FakeJanus()
    await janus.start()
    dgrams = rtp_stream(Codec.VP8, [f.data for f in frames], ssrc=9)
    await janus.play(shuffle_locally(dgrams, every=6), rec.rtp_port, speed=2.0)
    await asyncio.sleep(0.3)
    # Chunks reached MinIO while recording, before stop().
    assert len(await minio.list(chunk_prefix("rooms/RMx/RTminio"))) >= 2
    stats = await rec.stop()
    janus.close()
    assert stats.lost == 0 and stats.upload_failures == 0

    result = await finalize(minio, "rooms/RMx/RTminio")
    assert await minio.list(chunk_prefix("rooms/RMx/RTminio")) == []
    path = tmp_path / "media.mkv"
    data = b"".join([block async for block in minio.get_stream(result.key)])
    assert len(data) == result.size_bytes
    await asyncio.to_thread(path.write_bytes, data)
    numbers, _, _, duration = decode_video(path)
    assert numbers == list(range(120))
    assert duration == pytest.approx(4.0, abs=0.1)
    assert first_frame_after_seek(path, 2.5) == 60
    assert await finalize(minio, "rooms/RMx/RTminio") == result
