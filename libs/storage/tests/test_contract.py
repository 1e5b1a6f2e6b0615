"""One contract, two stores: the in-memory fake (unit) and MinIO (integration, uuid-named bucket)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from libs.config import S3Settings
from libs.db.testing import integration_env, unique_name
from libs.storage import InMemoryObjectStore, MinioObjectStore, ObjectStore
from libs.storage.errors import ObjectNotFound


async def _minio_store() -> MinioObjectStore:
    env = integration_env()
    settings = S3Settings(
        endpoint=env.get("S3_ENDPOINT", "127.0.0.1:9000"),
        access_key=env.get("S3_ACCESS_KEY", "minioadmin"),
        secret_key=SecretStr(env.get("S3_SECRET_KEY", "minioadmin")),
        secure=env.get("S3_SECURE", "false").lower() == "true",
        region=env.get("S3_REGION", "us-east-1"),
    )
    store = MinioObjectStore(settings, bucket=unique_name("test-"))
    await store.ensure_bucket()
    return store


@pytest.fixture(
    params=["memory", pytest.param("minio", marks=[pytest.mark.integration, pytest.mark.timeout(120)])]
)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStore]:
    if request.param == "memory":
        yield InMemoryObjectStore()
        return
    minio = await _minio_store()
    try:
        yield minio
    finally:
        for info in await minio.list(""):
            await minio.delete(info.key)
        await asyncio.to_thread(minio._client.remove_bucket, minio.bucket)  # noqa: SLF001  # test cleanup


async def _chunks(total: int, size: int) -> AsyncIterator[bytes]:
    sent = 0
    i = 0
    while sent < total:
        n = min(size, total - sent)
        yield bytes([i % 251]) * n
        sent += n
        i += 1


def _expected(total: int, size: int) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < total:
        n = min(size, total - len(out))
        out += bytes([i % 251]) * n
        i += 1
    return bytes(out)


class TestObjectStoreContract:
    async def test_put_get_stat_delete(self, store: ObjectStore) -> None:
        await store.ensure_bucket()
        await store.ensure_bucket()
        info = await store.put_bytes("a/b/one.bin", b"hello world", "application/octet-stream")
        assert info.size == 11 and info.key == "a/b/one.bin"
        stat = await store.stat("a/b/one.bin")
        assert stat is not None and stat.size == 11 and stat.content_type == "application/octet-stream"
        assert stat.etag == hashlib.md5(b"hello world", usedforsecurity=False).hexdigest()
        assert b"".join([c async for c in store.get_stream("a/b/one.bin", chunk=4)]) == b"hello world"
        assert [len(c) async for c in store.get_stream("a/b/one.bin", chunk=4)] == [4, 4, 3]
        assert await store.get_range("a/b/one.bin", 6, 5) == b"world"
        assert await store.get_range("a/b/one.bin", 6, 100) == b"world"
        await store.delete("a/b/one.bin")
        await store.delete("a/b/one.bin")
        assert await store.stat("a/b/one.bin") is None

    async def test_missing_key(self, store: ObjectStore) -> None:
        assert await store.stat("nope") is None
        with pytest.raises(ObjectNotFound):
            await store.get_range("nope", 0, 1)
        with pytest.raises(ObjectNotFound):
            async for _ in store.get_stream("nope"):
                pass

    async def test_put_file(self, store: ObjectStore, tmp_path: Path) -> None:
        path = tmp_path / "f.mka"
        path.write_bytes(os.urandom(100_000))
        info = await store.put_file("rec/f.mka", path, "audio/x-matroska")
        assert info.size == 100_000
        assert await store.get_range("rec/f.mka", 99_990, 10) == path.read_bytes()[-10:]

    async def test_put_stream_multipart(self, store: ObjectStore) -> None:
        total = 11 * 1024 * 1024 + 12345  # three 5 MiB parts, odd tail, odd chunk sizes
        info = await store.put_stream(
            "big/x.webm", _chunks(total, 700_001), "video/webm", part_size=5 * 1024 * 1024
        )
        assert info.size == total
        data = b"".join([c async for c in store.get_stream("big/x.webm")])
        assert hashlib.sha256(data).digest() == hashlib.sha256(_expected(total, 700_001)).digest()

    async def test_empty_stream(self, store: ObjectStore) -> None:
        info = await store.put_stream("empty", _chunks(0, 10), "application/octet-stream")
        assert info.size == 0

    async def test_list_and_delete_prefix(self, store: ObjectStore) -> None:
        for key in ["p/1", "p/2", "p/sub/3", "q/4"]:
            await store.put_bytes(key, key.encode(), "text/plain")
        assert [i.key for i in await store.list("p/")] == ["p/1", "p/2", "p/sub/3"]
        assert await store.delete_prefix("p/") == 3
        assert [i.key for i in await store.list("")] == ["q/4"]
        assert await store.delete_prefix("p/") == 0
        with pytest.raises(ValueError):
            await store.delete_prefix("")

    async def test_presigned_get(self, store: ObjectStore) -> None:
        await store.put_bytes("m/c.mp4", b"\x00\x01media", "video/mp4")
        url = await store.presigned_get(
            "m/c.mp4", timedelta(seconds=600), filename="CJ1.mp4", content_type="video/mp4"
        )
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == ["600"]
        assert query["response-content-disposition"] == ['attachment; filename="CJ1.mp4"']
        if isinstance(store, MinioObjectStore):
            async with httpx.AsyncClient() as http:
                response = await http.get(url)
            assert response.status_code == 200 and response.content == b"\x00\x01media"
            assert response.headers["content-disposition"] == 'attachment; filename="CJ1.mp4"'
            assert response.headers["content-type"] == "video/mp4"
