"""pydantic-settings parts: Kafka, Postgres, S3 and platform-wide values.

Each part reads its own env prefix (``KAFKA_``, ``POSTGRES_``, ``S3_``, ``MIXDOWN_``) so one env file serves
every process. Services compose them as fields of their own ``Settings`` (``default_factory=KafkaSettings``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"


class PostgresSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTGRES_", extra="ignore")

    dsn: str = "postgresql://mixdown:mixdown@127.0.0.1:5433/mixdown"
    min_pool_size: int = 1
    max_pool_size: int = 10


class S3Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S3_", extra="ignore")

    endpoint: str = "127.0.0.1:9000"
    access_key: str = "minioadmin"
    secret_key: SecretStr = SecretStr("minioadmin")
    secure: bool = False
    bucket: str = "mixdown-media"
    region: str = "us-east-1"
    # host[:port] clients reach storage through (presigned URLs are signed for it); None: use ``endpoint``.
    public_endpoint: str | None = None
    public_secure: bool | None = None


def decode_master_key(text: str) -> bytes:
    """Decode a urlsafe-base64 (padding optional) or 64-hex-digit master key; ValueError unless 32 bytes."""
    stripped = text.strip()
    candidates: list[bytes] = []
    if len(stripped) == 64:
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(stripped))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4)))
    for key in candidates:
        if len(key) == 32:
            return key
    raise ValueError("MIXDOWN_MASTER_KEY must be 32 bytes, urlsafe-base64 encoded")


class PlatformSettings(BaseSettings):
    """``MIXDOWN_PUBLIC_URL`` (base of absolute URLs) and ``MIXDOWN_MASTER_KEY`` (seals secrets at rest)."""

    model_config = SettingsConfigDict(env_prefix="MIXDOWN_", extra="ignore")

    public_url: str = "http://127.0.0.1:8080"
    master_key: SecretStr | None = None

    @field_validator("master_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_master_key(value.get_secret_value())
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def master_key_bytes(self) -> bytes:
        """The 32-byte master key. Raises ValueError when MIXDOWN_MASTER_KEY is not set."""
        if self.master_key is None:
            raise ValueError("MIXDOWN_MASTER_KEY is not set")
        return decode_master_key(self.master_key.get_secret_value())


class JanusSettings(BaseSettings):
    """``JANUS_*``: the Janus HTTP API (room and recorder services)."""

    model_config = SettingsConfigDict(env_prefix="JANUS_", extra="ignore")

    url: str = "http://10.77.0.1:8088/janus"
    admin_key: SecretStr = SecretStr("")
    api_secret: SecretStr | None = None


class ServiceSettings(BaseSettings):
    """What every service's Settings has: the shared parts plus where it serves and what it owns.

    A service subclasses it with its env prefix (``HOOK_`` …) and its defaults for ``port``, ``db_schema``,
    ``consumer_group`` and ``relay_name``.
    """

    model_config = SettingsConfigDict(extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    host: str = "127.0.0.1"
    port: int
    log_level: str = "INFO"
    db_schema: str
    consumer_group: str
    relay_name: str
