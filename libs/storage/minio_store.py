"""The MinIO (S3) adapter of the ObjectStore port. The blocking minio client runs in worker threads."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from libs.config import S3Settings
from libs.storage.errors import ObjectNotFound, StorageError
from libs.storage.port import MiB, ObjectInfo

_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_MIN_PART = 5 * MiB


class _AsyncChunksReader:
    """A blocking ``read(n)`` over an async iterator, for the minio client running in a worker thread.

    Only one pending chunk plus the part being assembled by minio is held in memory.
    """

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._buffer = bytearray()
        self._done = False
        self._lock = threading.Lock()

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            while not self._done and (size < 0 or len(self._buffer) < size):
                future: Future[bytes | None] = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
                chunk = future.result()
                if chunk is None:
                    self._done = True
                else:
                    self._buffer += chunk
            if size < 0:
                size = len(self._buffer)
            out = bytes(self._buffer[:size])
            del self._buffer[:size]
            return out


def _info(key: str, obj: Any) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=int(obj.size or 0),
        etag=str(obj.etag or "").strip('"'),
        content_type=getattr(obj, "content_type", None),
        last_modified=obj.last_modified,
    )


class MinioObjectStore:
    """ObjectStore on a MinIO/S3 bucket (``S3Settings``)."""

    def __init__(self, settings: S3Settings, bucket: str | None = None) -> None:
        self.bucket = bucket or settings.bucket
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key.get_secret_value(),
            secure=settings.secure,
            region=settings.region,
        )
        # Presigned URLs are signed for the host the client will use; with a fixed region the client never
        # calls that host itself, so it may be unreachable from here (e.g. only through the edge).
        self._signer = self._client
        if settings.public_endpoint:
            self._signer = Minio(
                settings.public_endpoint,
                access_key=settings.access_key,
                secret_key=settings.secret_key.get_secret_value(),
                secure=settings.secure if settings.public_secure is None else settings.public_secure,
                region=settings.region,
            )

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (idempotent, safe under races)."""

        def work() -> None:
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        await self._call(work)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise ObjectNotFound(str(args[0]) if args else "") from exc
            raise StorageError(f"S3 {exc.code}") from exc

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo:
        """Upload a local file (multipart above 64 MiB, handled by the client)."""
        await self._call(
            lambda: self._client.fput_object(self.bucket, key, str(path), content_type=content_type)
        )
        return await self._stat_required(key)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        await self._call(
            lambda: self._client.put_object(
                self.bucket, key, io.BytesIO(data), length=len(data), content_type=content_type
            )
        )
        return await self._stat_required(key)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str, part_size: int = 8 * MiB
    ) -> ObjectInfo:
        """Multipart upload of an async byte stream of unknown length; memory stays around ``part_size``."""
        reader = _AsyncChunksReader(chunks, asyncio.get_running_loop())
        size = max(part_size, _MIN_PART)
        await self._call(
            lambda: self._client.put_object(
                self.bucket,
                key,
                cast(BinaryIO, reader),  # minio only calls read(n) on it
                length=-1,
                part_size=size,
                content_type=content_type,
            )
        )
        return await self._stat_required(key)

    async def get_stream(self, key: str, chunk: int = MiB) -> AsyncIterator[bytes]:
        """The object's bytes in chunks of at most ``chunk``. Raises ObjectNotFound."""
        response = await self._call(lambda: self._get(key))
        try:
            while True:
                data: bytes = await asyncio.to_thread(response.read, chunk)
                if not data:
                    break
                yield data
        finally:
            response.close()
            response.release_conn()

    def _get(self, key: str, offset: int = 0, length: int = 0) -> Any:
        try:
            return self._client.get_object(self.bucket, key, offset=offset, length=length)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                raise ObjectNotFound(key) from exc
            raise

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end of the object). Raises ObjectNotFound."""
        if length <= 0:
            return b""

        def work() -> bytes:
            response = self._get(key, offset, length)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        try:
            result: bytes = await self._call(work)
        except StorageError as exc:
            if "InvalidRange" in str(exc):
                return b""
            raise
        return result

    async def _stat_required(self, key: str) -> ObjectInfo:
        info = await self.stat(key)
        if info is None:
            raise StorageError(f"object {key!r} missing right after upload")
        return info

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size, etag, type and time of ``key``; None when it does not exist."""
        try:
            obj = await self._call(lambda: self._client.stat_object(self.bucket, key))
        except ObjectNotFound:
            return None
        return _info(key, obj)

    async def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        await self._call(lambda: self._client.remove_object(self.bucket, key))

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; returns how many. An empty prefix is refused."""
        if not prefix:
            raise ValueError("refusing to delete the whole bucket")

        def work() -> int:
            keys = [
                o.object_name for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            ]
            if not keys:
                return 0
            errors = list(self._client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
            if errors:
                raise StorageError(f"{len(errors)} objects could not be deleted under {prefix!r}")
            return len(keys)

        count: int = await self._call(work)
        return count

    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object under ``prefix``, recursively, in key order."""

        def work() -> list[ObjectInfo]:
            objects = self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted((_info(o.object_name, o) for o in objects), key=lambda i: i.key)

        result: list[ObjectInfo] = await self._call(work)
        return result

    async def presigned_get(
        self, key: str, ttl: timedelta, *, filename: str | None = None, content_type: str | None = None
    ) -> str:
        """A GET URL valid for ``ttl`` (1 s .. 7 days), optionally forcing download name and type."""
        headers: dict[str, str | list[str] | tuple[str]] = {}
        if filename:
            headers["response-content-disposition"] = f'attachment; filename="{filename}"'
        if content_type:
            headers["response-content-type"] = content_type
        url: str = await self._call(
            lambda: self._signer.presigned_get_object(
                self.bucket, key, expires=ttl, response_headers=headers or None
            )
        )
        return url
