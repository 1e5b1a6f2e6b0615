"""Recorder service configuration: env prefix ``RECORDER_`` plus the shared parts (libs.config) and Janus's
shared variables (``JANUS_URL``, ``JANUS_ADMIN_KEY``, ``JANUS_API_SECRET``, no prefix)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import KafkaSettings, PlatformSettings, PostgresSettings, S3Settings


class Settings(BaseSettings):
    """Every ``RECORDER_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="RECORDER_", extra="ignore", populate_by_name=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    host: str = "127.0.0.1"
    port: int = 8102
    log_level: str = "INFO"
    db_schema: str = "recorder"
    consumer_group: str = "recorder"
    relay_name: str = "recorder"

    janus_url: str = Field(
        default="http://10.77.0.1:8088/janus", validation_alias=AliasChoices("JANUS_URL", "janus_url")
    )
    janus_admin_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("JANUS_ADMIN_KEY", "janus_admin_key")
    )
    janus_api_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JANUS_API_SECRET", "janus_api_secret")
    )
    # Where Janus sends forwarded RTP (the host side of the media namespace) and the UDP ports to use.
    rtp_host: str = "10.77.0.254"
    rtp_port_first: int = 20000
    rtp_port_last: int = 29999
    # Supervisor tick (seconds): how soon rule changes and orphaned recordings are acted on at the latest.
    reconcile_interval: float = 1.0
    # Media core tuning (see docs/recordings.md).
    chunk_seconds: float = 1.5
    keyframe_interval: float = 10.0
    # Presigned media links: default and maximum lifetime (seconds) of `/Media` redirects.
    media_ttl_default: int = 600
    media_ttl_max: int = 604800
    # Deleted recordings keep their metadata this many days.
    deleted_retention_days: int = 30
