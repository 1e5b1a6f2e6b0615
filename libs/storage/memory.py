"""An in-memory ObjectStore for unit tests (same contract as MinIO, checked by the contract tests)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from libs.storage.errors import ObjectNotFound
from libs.storage.port import MiB, ObjectInfo


class InMemoryObjectStore:
    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self._objects: dict[str, tuple[bytes, str, datetime]] = {}

    def _info(self, key: str) -> ObjectInfo:
        data, content_type, modified = self._objects[key]
        return ObjectInfo(
            key=key,
            size=len(data),
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            content_type=content_type,
            last_modified=modified,
        )

    async def ensure_bucket(self) -> None:
        return None

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        self._objects[key] = (bytes(data), content_type, datetime.now(UTC))
        return self._info(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo:
        data = await asyncio.to_thread(path.read_bytes)
        return await self.put_bytes(key, data, content_type)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str, part_size: int = 8 * MiB
    ) -> ObjectInfo:
        parts = [chunk async for chunk in chunks]
        return await self.put_bytes(key, b"".join(parts), content_type)

    async def get_stream(self, key: str, chunk: int = MiB) -> AsyncIterator[bytes]:
        if key not in self._objects:
            raise ObjectNotFound(key)
        data = self._objects[key][0]
        for start in range(0, len(data), chunk):
            yield data[start : start + chunk]

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        if key not in self._objects:
            raise ObjectNotFound(key)
        return self._objects[key][0][offset : offset + length]

    async def stat(self, key: str) -> ObjectInfo | None:
        return self._info(key) if key in self._objects else None

    async def delete(self, key: str) -> None:
        self._objects.pop(key, None)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to delete the whole bucket")
        keys = [k for k in self._objects if k.startswith(prefix)]
        for key in keys:
            del self._objects[key]
        return len(keys)

    async def list(self, prefix: str) -> list[ObjectInfo]:
        return [self._info(k) for k in sorted(self._objects) if k.startswith(prefix)]

    async def presigned_get(
        self, key: str, ttl: timedelta, *, filename: str | None = None, content_type: str | None = None
    ) -> str:
        params = {"X-Amz-Expires": str(int(ttl.total_seconds()))}
        if filename:
            params["response-content-disposition"] = f'attachment; filename="{filename}"'
        if content_type:
            params["response-content-type"] = content_type
        return f"memory://{self.bucket}/{quote(key)}?{urlencode(params)}"

    def read(self, key: str) -> bytes:
        """Test helper: the stored bytes."""
        return self._objects[key][0]
