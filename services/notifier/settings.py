"""Notifier configuration: env prefix ``NOTIFIER_`` plus the shared Kafka/Postgres/platform parts."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import KafkaSettings, PlatformSettings, PostgresSettings
from libs.events.topics import COMPOSITION_EVENTS, RECORDING_EVENTS, ROOM_EVENTS
from services.notifier.retry_policy import BackoffPolicy
from services.notifier.targets import TargetPolicy, parse_cidrs


class Settings(BaseSettings):
    """Every ``NOTIFIER_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    host: str = "127.0.0.1"
    port: int = 8105
    db_schema: str = "notifier"
    consumer_group: str = "notifier"
    # Appended to every consumed topic name, so integration tests can use uuid-named topics.
    topic_suffix: str = ""

    allow_private_callbacks: bool = False
    allowed_cidrs: str = ""  # comma-separated CIDRs that are allowed even though private

    retry_window_s: float = Field(default=86400.0, gt=0)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_cap_s: float = Field(default=3600.0, gt=0)
    http_timeout_s: float = Field(default=15.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)  # must exceed http_timeout_s
    global_concurrency: int = Field(default=64, ge=1)
    per_host_concurrency: int = Field(default=4, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0)
    gauge_interval_s: float = Field(default=5.0, gt=0)
    retention_days: float = Field(default=7.0, gt=0)  # delivered rows are deleted after this

    @field_validator("allowed_cidrs")
    @classmethod
    def _valid_cidrs(cls, value: str) -> str:
        parse_cidrs(value.split(","))
        return value

    def topic_map(self) -> dict[str, str]:
        """Consumed topic name -> logical topic (what the event codec knows)."""
        return {f"{t}{self.topic_suffix}": t for t in (ROOM_EVENTS, RECORDING_EVENTS, COMPOSITION_EVENTS)}

    def target_policy(self) -> TargetPolicy:
        """The SSRF policy these settings describe."""
        return TargetPolicy(
            allow_private=self.allow_private_callbacks,
            allowed_cidrs=parse_cidrs(self.allowed_cidrs.split(",")),
        )

    def backoff_policy(self) -> BackoffPolicy:
        """The retry schedule these settings describe."""
        return BackoffPolicy(
            base_s=self.backoff_base_s, cap_s=self.backoff_cap_s, window_s=self.retry_window_s
        )
