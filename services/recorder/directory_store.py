"""A local-directory object store with the recorder's ``MediaStore`` shape: keys are paths under a root.

Used by the benchmark, the crash tests and single-host setups. Writes go to a temporary file that is renamed
into place, so a reader never sees a half-written object; ``fsync`` makes them survive a power loss too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from libs.storage import ObjectInfo
from libs.storage.errors import ObjectNotFound

_PART_SUFFIX = ".part"


class DirectoryObjectStore:
    def __init__(self, root: str | Path, *, fsync: bool = True) -> None:
        self._root = Path(root).resolve()
        self._root.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root) or path == self._root:
            raise ValueError("object key escapes the store root")
        return path

    def _info(self, key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=hashlib.md5(f"{st.st_size}:{st.st_mtime_ns}".encode(), usedforsecurity=False).hexdigest(),
            content_type=None,
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _write(self, key: str, data: bytes) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + _PART_SUFFIX)
        with open(tmp, "wb") as fh:
            fh.write(data)
            if self._fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        return self._info(key, path)

    def _copy(self, key: str, source: Path) -> ObjectInfo:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + _PART_SUFFIX)
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
        return self._info(key, path)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        return await asyncio.to_thread(self._write, key, data)

    async def put_file(self, key: str, path: Path, content_type: str) -> ObjectInfo:
        return await asyncio.to_thread(self._copy, key, path)

    async def get_stream(self, key: str, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        with fh:
            while block := await asyncio.to_thread(fh.read, chunk):
                yield block

    async def list(self, prefix: str) -> list[ObjectInfo]:
        def scan() -> list[ObjectInfo]:
            found = []
            for dirpath, _dirs, files in os.walk(self._root):
                for name in files:
                    if name.endswith(_PART_SUFFIX):
                        continue
                    path = Path(dirpath, name)
                    key = path.relative_to(self._root).as_posix()
                    if key.startswith(prefix):
                        found.append(self._info(key, path))
            return sorted(found, key=lambda info: info.key)

        return await asyncio.to_thread(scan)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to delete the whole store")
        infos = await self.list(prefix)
        for info in infos:
            await self.delete(info.key)
        return len(infos)
