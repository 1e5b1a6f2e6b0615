"""An in-memory MediaStore fake for recorder tests (stands in for libs.storage.InMemoryObjectStore)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.fail_puts = 0

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        if self.fail_puts > 0:
            self.fail_puts -= 1
            raise ConnectionError("injected store outage")
        self.objects[key] = bytes(data)
        self.content_types[key] = content_type

    async def put_file(self, key: str, path: str, content_type: str) -> None:
        self.objects[key] = await asyncio.to_thread(Path(path).read_bytes)
        self.content_types[key] = content_type

    async def get_stream(self, key: str, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
        data = self.objects[key]
        for i in range(0, len(data), chunk):
            yield data[i : i + chunk]

    async def list(self, prefix: str) -> Sequence[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    async def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self.objects if k.startswith(prefix)]:
            del self.objects[key]
