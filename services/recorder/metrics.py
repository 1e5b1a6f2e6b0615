"""Prometheus metrics of the recorder service (prefix ``recorder_``; no SID labels)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class RecorderMetrics:
    active_tracks: Gauge
    packets: Counter
    lost: Counter
    bytes: Counter
    recordings: Counter
    finalize_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> RecorderMetrics:
        return cls(
            active_tracks=Gauge(
                "recorder_active_tracks", "Tracks being captured by this process", ["kind"], registry=registry
            ),
            packets=Counter("recorder_packets", "RTP packets received", ["kind"], registry=registry),
            lost=Counter("recorder_lost_packets", "RTP packets never received", ["kind"], registry=registry),
            bytes=Counter("recorder_bytes", "RTP bytes received", ["kind"], registry=registry),
            recordings=Counter(
                "recorder_recordings", "Recordings finished, by outcome", ["outcome"], registry=registry
            ),
            finalize_seconds=Histogram(
                "recorder_finalize_seconds",
                "Time to finalize one recording (chunks to one file)",
                buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
                registry=registry,
            ),
        )
