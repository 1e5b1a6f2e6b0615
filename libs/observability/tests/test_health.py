"""The app factory's endpoints and the service runner's lifecycle."""

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from libs.observability.health import ReadinessCheck, create_app
from libs.observability.runner import ServiceRunner


async def _ok() -> None:
    return None


async def _broken() -> None:
    raise ConnectionError("down")


async def _slow() -> None:
    await asyncio.sleep(5)


def _app(checks: list[ReadinessCheck]) -> FastAPI:
    registry = CollectorRegistry()
    Counter("svc_things_total", "things", registry=registry).inc(3)
    return create_app("svc", registry=registry, readiness=checks)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = _app(
        [ReadinessCheck("db", _ok), ReadinessCheck("kafka", _broken), ReadinessCheck("s3", _slow, 0.1)]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_healthz_metrics_and_unready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "svc_things_total 3.0" in metrics.text
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["kafka", "s3"]
    assert ready.json()["checks"] == {"db": "ok", "kafka": "ConnectionError", "s3": "timeout"}
    missing = await client.get("/v1/Nothing")
    assert missing.status_code == 404 and missing.json()["code"] == 20404


async def test_ready_when_all_ok() -> None:
    app = _app([ReadinessCheck("db", _ok)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(30)
async def test_runner_serves_and_stops_gracefully() -> None:
    port = _free_port()
    runner = ServiceRunner(_app([]), host="127.0.0.1", port=port, service="svc", grace_s=2)
    events: list[str] = []

    async def worker(stop: asyncio.Event) -> None:
        await stop.wait()
        events.append("worker stopped")

    async def stubborn(stop: asyncio.Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("stubborn cancelled")
            raise

    async def closer() -> None:
        events.append("closed")

    runner.add_task("worker", worker)
    runner.add_task("stubborn", stubborn)
    runner.add_closer(closer)
    serving = asyncio.create_task(runner.serve())
    async with httpx.AsyncClient() as http:
        for _ in range(100):
            try:
                r = await http.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        assert r.status_code == 200
    runner.request_stop()
    await asyncio.wait_for(serving, 10)
    assert events == ["worker stopped", "stubborn cancelled", "closed"]


@pytest.mark.timeout(30)
async def test_crashing_task_stops_service() -> None:
    runner = ServiceRunner(_app([]), host="127.0.0.1", port=_free_port(), service="svc", grace_s=1)

    async def crash(stop: asyncio.Event) -> None:
        await asyncio.sleep(0.2)
        raise RuntimeError("boom")

    runner.add_task("crash", crash)
    await asyncio.wait_for(runner.serve(), 10)
    assert runner.stop.is_set()
