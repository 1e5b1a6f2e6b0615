"""Settings parts shared by every service (env vars without a service prefix); see docs/architecture.md."""

from libs.config.settings import (
    JanusSettings,
    KafkaSettings,
    PlatformSettings,
    PostgresSettings,
    S3Settings,
    ServiceSettings,
)

__all__ = [
    "JanusSettings",
    "KafkaSettings",
    "PlatformSettings",
    "PostgresSettings",
    "S3Settings",
    "ServiceSettings",
]
