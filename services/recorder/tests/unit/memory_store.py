"""Test stores: libs.storage's in-memory fake, plus injectable upload failures."""

from __future__ import annotations

from libs.storage import InMemoryObjectStore, ObjectInfo


class FlakyStore(InMemoryObjectStore):
    """``fail_puts`` next ``put_bytes`` calls raise, like a store outage."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_puts = 0

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        if self.fail_puts > 0:
            self.fail_puts -= 1
            raise ConnectionError("injected store outage")
        return await super().put_bytes(key, data, content_type)

    async def keys(self, prefix: str = "") -> list[str]:
        return [info.key for info in await self.list(prefix)]
