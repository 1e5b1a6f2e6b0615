"""Internal HTTP API of the notifier (port 8105, not routed by the edge): list and replay deliveries."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from libs.config import KafkaSettings
from services.notifier.store import DeliveryStore

State = Literal["pending", "delivering", "delivered", "dead"]


def internal_router(store: DeliveryStore, wake: Callable[[], None]) -> APIRouter:
    """Routes under /internal/callbacks over ``store``; ``wake`` nudges the dispatcher after a replay."""
    router = APIRouter(prefix="/internal/callbacks", tags=["internal"])

    @router.get("")
    async def list_callbacks(
        state: State | None = None,
        account_sid: str | None = None,
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        records = await store.list(state=state, account_sid=account_sid, limit=limit)
        return {"callbacks": [r.as_json() for r in records]}

    @router.get("/{delivery_id}")
    async def show_callback(delivery_id: int) -> dict[str, Any]:
        record = await store.get(delivery_id)
        if record is None:
            raise HTTPException(status_code=404, detail="no such delivery")
        return record.as_json()

    @router.post("/{delivery_id}/replay")
    async def replay_callback(delivery_id: int) -> dict[str, Any]:
        if not await store.replay(delivery_id):
            if await store.get(delivery_id) is None:
                raise HTTPException(status_code=404, detail="no such delivery")
            raise HTTPException(status_code=409, detail="only dead deliveries can be replayed")
        wake()
        record = await store.get(delivery_id)
        return record.as_json() if record is not None else {"id": delivery_id}

    return router


async def _kafka_reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """True when a TCP connection to the first reachable bootstrap server succeeds."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


def http_app(
    store: DeliveryStore, wake: Callable[[], None], registry: CollectorRegistry, kafka: KafkaSettings
) -> FastAPI:
    """The notifier's HTTP app: /healthz, /readyz (Postgres and Kafka), /metrics, /internal/callbacks."""
    app = FastAPI(title="mixdown-notifier", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(2.0):
                await store.pool.fetchval("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as exc:  # any failure means not ready; the reason is reported
            checks["postgres"] = type(exc).__name__
        checks["kafka"] = "ok" if await _kafka_reachable(kafka.bootstrap_servers) else "unreachable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(internal_router(store, wake))
    return app
