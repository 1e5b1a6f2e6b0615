"""Prometheus objects of the notifier (prefix ``notifier_``, explicit registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OUTCOMES = ("delivered", "retried", "dead")


class NotifierMetrics:
    """Delivery counters, attempt latency, queue gauges. Labels are low-cardinality (no SIDs, no hosts)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deliveries = Counter(
            "notifier_deliveries_total",
            "Callback attempts by outcome (delivered, retried, dead).",
            ["outcome"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "notifier_attempt_seconds",
            "Duration of one callback HTTP attempt, seconds.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0),
            registry=self.registry,
        )
        self.pending = Gauge(
            "notifier_pending",
            "Deliveries waiting or in flight (pending + delivering).",
            registry=self.registry,
        )
        self.dead = Gauge("notifier_dead", "Deliveries given up (dead letters).", registry=self.registry)
        self.in_flight = Gauge(
            "notifier_in_flight", "Attempts in flight in this process.", registry=self.registry
        )
        self.events = Counter(
            "notifier_events_total",
            "Consumed events by result (queued, no_callback, duplicate).",
            ["result"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome=outcome)
        for result in ("queued", "no_callback", "duplicate"):
            self.events.labels(result=result)

    def set_queue(self, counts: dict[str, int]) -> None:
        """Update the queue gauges from per-state row counts."""
        self.pending.set(counts.get("pending", 0) + counts.get("delivering", 0))
        self.dead.set(counts.get("dead", 0))
