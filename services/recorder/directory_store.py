"""A local-directory object store with the ``MediaStore`` shape: keys are relative paths under a root.

Used by the benchmark, the crash tests and single-host setups. Writes go to a temporary file that is renamed
into place, so a reader never sees a half-written object; ``fsync`` makes them survive a power loss too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path


class DirectoryObjectStore:
    def __init__(self, root: str | Path, *, fsync: bool = True) -> None:
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root.resolve()):
            raise ValueError("object key escapes the store root")
        return path

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as fh:
            fh.write(data)
            if self._fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, key, data)

    async def put_file(self, key: str, path: str, content_type: str) -> None:
        def copy() -> None:
            dest = self._path(key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)

        await asyncio.to_thread(copy)

    async def get_stream(self, key: str, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        with open(path, "rb") as fh:  # noqa: ASYNC230 - small sequential reads of local files
            while block := fh.read(chunk):
                yield block

    async def list(self, prefix: str) -> Sequence[str]:
        def scan() -> list[str]:
            root = self._root.resolve()
            keys = []
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    if name.endswith(".part"):
                        continue
                    key = Path(dirpath, name).relative_to(root).as_posix()
                    if key.startswith(prefix):
                        keys.append(key)
            return sorted(keys)

        return await asyncio.to_thread(scan)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def delete_prefix(self, prefix: str) -> None:
        for key in await self.list(prefix):
            await self.delete(key)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)
