"""Prometheus objects of the compositor (prefix ``compositor_``), registered on the service's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CompositorMetrics:
    """Jobs by outcome, queue depth, render time and realtime factor. Labels are low-cardinality."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Counter(
            "compositor_jobs",
            "Composition jobs finished, by outcome (completed, failed, retried, lost_lease)",
            ["outcome"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "compositor_queue_depth",
            "Open composition jobs by state (queued, running)",
            ["state"],
            registry=registry,
        )
        self.render_seconds = Histogram(
            "compositor_render_seconds",
            "Wall time of one composition render (download, compose, upload)",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600),
            registry=registry,
        )
        self.realtime_factor = Histogram(
            "compositor_realtime_factor",
            "Output media seconds per wall second of rendering",
            buckets=(0.25, 0.5, 1, 2, 3, 5, 8, 12, 20, 50),
            registry=registry,
        )

    def set_queue(self, depth: dict[str, int]) -> None:
        for state in ("queued", "running"):
            self.queue_depth.labels(state).set(depth.get(state, 0))
