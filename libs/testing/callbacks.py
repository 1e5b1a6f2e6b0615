"""A local callback receiver for integration tests (uvicorn on 127.0.0.1, random port).

Records every request and answers by path from a script: e.g. `/flaky` answers 500 to its first three
requests, `/hang` never answers until released.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Received:
    method: str
    path: str
    url: str  # as the receiver reconstructs it: scheme://Host + path + query
    headers: dict[str, str]
    form: dict[str, str]
    query: dict[str, str]
    status: int  # what the receiver answered (or will answer, while hanging)


@dataclass
class Script:
    """Statuses to answer in turn (the last one repeats); the first `hang_calls` requests (all when `hang`)
    block until `release` is set."""

    statuses: list[int] = field(default_factory=lambda: [200])
    hang: bool = False
    hang_calls: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0

    def next_status(self) -> int:
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        return status


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self.port = 0
        self.arrived = asyncio.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(
        self, path: str, statuses: list[int] | None = None, *, hang: bool = False, hang_calls: int = 0
    ) -> Script:
        script = Script(statuses=statuses or [200], hang=hang, hang_calls=hang_calls)
        self.scripts[path] = script
        return script

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 20.0) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode()
        query = scope.get("query_string", b"").decode()
        url = f"{scope['scheme']}://{headers.get('host', '')}{raw_path}" + (f"?{query}" if query else "")
        record = Received(
            method=scope["method"],
            path=scope["path"],
            url=url,
            headers=headers,
            form=dict(parse_qsl(body.decode(), keep_blank_values=True)),
            query=dict(parse_qsl(query, keep_blank_values=True)),
            status=0,
        )
        script = self.scripts.get(scope["path"]) or self.on(scope["path"])
        hangs = script.hang or script.calls < script.hang_calls
        record.status = status = script.next_status()
        self.received.append(record)
        self.arrived.set()
        if hangs:
            await script.release.wait()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def serve_receiver(
    *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None
) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    config = uvicorn.Config(
        receiver,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn only exposes a flag)
                await asyncio.sleep(0.02)
        receiver.port = server.servers[0].sockets[0].getsockname()[1]
        yield receiver
    finally:
        for script in receiver.scripts.values():
            script.release.set()
        server.should_exit = True
        await task
