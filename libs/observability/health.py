"""The app factory every service starts from: Twilio error handling plus /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaClient
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from libs.twilio.errors import install_error_handlers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadinessCheck:
    """A named dependency probe; it raises (or times out) when the dependency is not usable."""

    name: str
    check: Callable[[], Awaitable[None]]
    timeout_s: float = 2.0
    close: Callable[[], Awaitable[None]] | None = None


async def run_checks(checks: Sequence[ReadinessCheck]) -> dict[str, str]:
    """Run every check concurrently; ``{name: "ok" | "<error>"}``."""

    async def one(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check.check(), timeout=check.timeout_s)
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # a probe: any failure means "not ready"
            return type(exc).__name__
        return "ok"

    results = await asyncio.gather(*(one(c) for c in checks))
    return {c.name: r for c, r in zip(checks, results, strict=True)}


def create_app(service: str, *, registry: CollectorRegistry, readiness: Sequence[ReadinessCheck]) -> FastAPI:
    """A FastAPI app with Twilio-style errors and the three operational endpoints.

    ``/healthz`` is 200 whenever the event loop answers; ``/readyz`` is 200 ``{"status":"ok","checks":{...}}``
    or 503 ``{"status":"unavailable","failed":[...]}``; ``/metrics`` is Prometheus text from ``registry``.
    """
    app = FastAPI(title=f"mixdown-{service}", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    checks = list(readiness)
    app.state.readiness_checks = checks  # wiring code may append checks before the server starts

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results = await run_checks(checks)
        failed = sorted(name for name, result in results.items() if result != "ok")
        if failed:
            logger.warning("not ready", extra={"failed": failed})
            body: dict[str, Any] = {
                "status": "unavailable",
                "service": service,
                "failed": failed,
                "checks": results,
            }
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", "service": service, "checks": results})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def postgres_check(pool: asyncpg.Pool, name: str = "postgres") -> ReadinessCheck:
    """``SELECT 1`` on the pool."""

    async def check() -> None:
        await pool.fetchval("SELECT 1")

    return ReadinessCheck(name, check)


class _KafkaProbe:
    def __init__(self, bootstrap: str, cache_s: float) -> None:
        self._bootstrap = bootstrap
        self._cache_s = cache_s
        self._client: AIOKafkaClient | None = None
        self._ok_until = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        if time.monotonic() < self._ok_until:
            return
        async with self._lock:
            if time.monotonic() < self._ok_until:
                return
            try:
                if self._client is None:
                    self._client = AIOKafkaClient(bootstrap_servers=self._bootstrap, client_id="readyz")
                    await self._client.bootstrap()
                await self._client.fetch_all_metadata()
            except BaseException:
                client, self._client = self._client, None
                if client is not None:
                    await client.close()
                raise
            self._ok_until = time.monotonic() + self._cache_s

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def kafka_check(bootstrap: str, *, cache_s: float = 5.0, name: str = "kafka") -> ReadinessCheck:
    """A metadata request on a long-lived client; a success is trusted for ``cache_s`` seconds."""
    probe = _KafkaProbe(bootstrap, cache_s)
    return ReadinessCheck(name, probe, timeout_s=3.0, close=probe.close)


class _Stat(Protocol):
    async def stat(self, key: str) -> Any: ...


def s3_check(store: _Stat, name: str = "s3") -> ReadinessCheck:
    """A HEAD on a key of the bucket: fails when the storage or the bucket is unreachable."""

    async def check() -> None:
        await store.stat(".readyz")

    return ReadinessCheck(name, check)
