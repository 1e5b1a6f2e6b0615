"""Prometheus metrics of the room service (prefix ``room_``; labels never carry SIDs)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class RoomMetrics:
    whip_post_seconds: Histogram
    join_to_media_seconds: Histogram
    media_sessions: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> RoomMetrics:
        return cls(
            whip_post_seconds=Histogram(
                "room_whip_post_seconds",
                "WHIP POST handling time: token check to SDP answer",
                registry=registry,
                buckets=_LATENCY_BUCKETS,
            ),
            join_to_media_seconds=Histogram(
                "room_join_to_media_seconds",
                "From the WHIP POST arriving to Janus reporting the publisher's first media",
                registry=registry,
                buckets=_LATENCY_BUCKETS,
            ),
            media_sessions=Counter(
                "room_media_sessions", "WHIP/WHEP sessions opened", ["kind"], registry=registry
            ),
        )
