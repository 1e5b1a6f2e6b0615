"""Every service serves Prometheus metrics, and its readiness follows its dependencies: /readyz turns 503
when the real Postgres stops, and every service recovers (ready, API answering) when it comes back."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Tenant

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEVSTACK = REPO / "deploy" / "devstack" / "devstack"
SERVICE_PORTS = {"room": 8101, "recorder": 8102, "compositor": 8103, "hook": 8104, "notifier": 8105}


def _devstack(*args: str) -> None:
    subprocess.run([sys.executable, str(DEVSTACK), *args], check=True, capture_output=True, timeout=300)


def _readyz(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code
    except httpx.HTTPError:
        return -1


def _wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {deadline_s}s waiting until {what}")


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_metrics_are_prometheus_text(devstack: dict[str, str], service: str) -> None:
    response = httpx.get(f"http://127.0.0.1:{SERVICE_PORTS[service]}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.text))
    assert families, "no metric families"
    assert any(f.name.startswith(f"{service}_") for f in families), [f.name for f in families][:20]


def test_readyz_follows_postgres(devstack: dict[str, str], tenant: Tenant) -> None:
    for service, port in SERVICE_PORTS.items():
        assert _readyz(port) == 200, service
    _devstack("stop", "postgres")
    try:
        for service, port in SERVICE_PORTS.items():
            _wait_until(lambda port=port: _readyz(port) == 503, 45, f"{service} /readyz is 503")  # type: ignore[misc]
        body = httpx.get(f"http://127.0.0.1:{SERVICE_PORTS['hook']}/readyz", timeout=10).json()
        assert "postgres" in str(body).lower()
    finally:
        _devstack("start", "postgres")
    for service, port in SERVICE_PORTS.items():
        _wait_until(lambda port=port: _readyz(port) == 200, 90, f"{service} /readyz is 200 again")  # type: ignore[misc]
    # The pools recovered: an authenticated request that needs Postgres works again.
    response = httpx.get(
        f"{tenant.base_url}/v1/CompositionHooks", auth=(tenant.api_key, tenant.api_secret), timeout=10
    )
    assert response.status_code == 200, response.text
