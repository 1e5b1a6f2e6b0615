"""HTTP request metrics: ``<svc>_http_requests_total`` and ``<svc>_http_request_duration_seconds``.

Labels stay low-cardinality: the method, the matched route's path template (``/v1/Rooms/{sid}``, never a SID;
``unmatched`` for 404s) and the status class (``2xx`` …).
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """ASGI middleware recording every HTTP request's count and latency."""

    def __init__(self, app: ASGIApp, *, service: str, registry: CollectorRegistry) -> None:
        self._app = app
        self._requests = Counter(
            f"{service}_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=registry,
        )
        self._latency = Histogram(
            f"{service}_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", "GET"))
            self._requests.labels(method, template, f"{status // 100}xx").inc()
            self._latency.labels(method, template).observe(time.perf_counter() - start)


def install_http_metrics(app: FastAPI, service: str, registry: CollectorRegistry) -> None:
    """Wrap ``app`` so every request is counted and timed in ``registry``."""
    app.add_middleware(HttpMetrics, service=service, registry=registry)
