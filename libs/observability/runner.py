"""Runs a service process: uvicorn plus background tasks, with a graceful SIGTERM/SIGINT shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger(__name__)

TaskFactory = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
Closer = Callable[[], Awaitable[None]]


class _Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM once ``serve()`` returns, which would kill the process before
    background tasks stop and pools close. This server only records the signal; the runner exits cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class ServiceRunner:
    """Serve ``app`` on host:port and run background tasks until a signal (or a task crash) stops it.

    Each task factory receives the shared ``stop`` event; tasks still running ``grace_s`` seconds after it is
    set are cancelled. Closers (pools, clients) run last, in reverse order of registration.
    """

    def __init__(self, app: FastAPI, *, host: str, port: int, service: str, grace_s: float = 10.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.service = service
        self.grace_s = grace_s
        self.stop = asyncio.Event()
        self._tasks: list[tuple[str, TaskFactory]] = []
        self._closers: list[Closer] = []
        self._server: uvicorn.Server | None = None

    def add_task(self, name: str, factory: TaskFactory) -> None:
        self._tasks.append((name, factory))

    def add_closer(self, closer: Closer) -> None:
        self._closers.append(closer)

    def request_stop(self) -> None:
        """Begin the shutdown (same path as SIGTERM)."""
        self.stop.set()
        if self._server is not None:
            self._server.should_exit = True

    async def serve(self) -> None:
        """Run until stopped; returns after every task ended and every closer ran."""
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_config=None, access_log=False, lifespan="on"
        )
        server = _Server(config)
        self._server = server
        tasks: dict[asyncio.Task[None], str] = {
            asyncio.create_task(factory(self.stop), name=name): name for name, factory in self._tasks
        }
        for task in tasks:
            task.add_done_callback(self._on_task_done)
        logger.info("service starting", extra={"service": self.service, "host": self.host, "port": self.port})
        try:
            await server.serve()  # installs SIGTERM/SIGINT handlers and returns on them
        finally:
            self.stop.set()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=self.grace_s)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for closer in reversed(self._closers):
                try:
                    await closer()
                except Exception:
                    logger.exception("closer failed", extra={"service": self.service})
            logger.info("service stopped", extra={"service": self.service})

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stop.is_set():
            return
        exc = task.exception()
        if exc is not None:
            logger.error(
                "background task crashed, stopping service",
                extra={"task": task.get_name(), "error": repr(exc)},
                exc_info=exc,
            )
        else:
            logger.error("background task ended unexpectedly, stopping", extra={"task": task.get_name()})
        self.request_stop()


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True if ``stop`` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()
