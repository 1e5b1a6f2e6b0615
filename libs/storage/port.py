"""The ObjectStore port every service codes against (MinIO in production, in-memory in unit tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

MiB = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime | None


class ObjectStore(Protocol):
    """Async object storage in one bucket. Keys are ``/``-separated paths without a leading slash.

    Reads of a missing key raise ``ObjectNotFound``; ``stat`` returns None instead. ``delete`` of a missing
    key is a no-op; ``delete_prefix("")`` raises ValueError (never the whole bucket).
    """

    async def ensure_bucket(self) -> None: ...

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo: ...

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str, part_size: int = 8 * MiB
    ) -> ObjectInfo: ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo: ...

    def get_stream(self, key: str, chunk: int = MiB) -> AsyncIterator[bytes]: ...

    async def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    async def stat(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def list(self, prefix: str) -> list[ObjectInfo]: ...

    async def presigned_get(
        self, key: str, ttl: timedelta, *, filename: str | None = None, content_type: str | None = None
    ) -> str: ...
