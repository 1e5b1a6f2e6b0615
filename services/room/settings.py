"""Room service configuration: env prefix ``ROOM_`` plus the shared parts (libs.config)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import KafkaSettings, PlatformSettings, PostgresSettings, S3Settings


class Settings(BaseSettings):
    """Every ``ROOM_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="ROOM_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    host: str = "127.0.0.1"
    port: int = 8101
    log_level: str = "INFO"
    db_schema: str = "room"
    consumer_group: str = "room"
    relay_name: str = "room"
