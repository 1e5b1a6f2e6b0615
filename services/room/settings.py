"""Room service configuration: env prefix ``ROOM_`` plus the shared parts (libs.config) and Janus's
shared variables (``JANUS_URL``, ``JANUS_ADMIN_KEY``, ``JANUS_API_SECRET``, no prefix)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from libs.config import ServiceSettings


class Settings(ServiceSettings):
    """Every ``ROOM_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="ROOM_", extra="ignore", populate_by_name=True)

    port: int = 8101
    db_schema: str = "room"
    consumer_group: str = "room"
    relay_name: str = "room"

    janus_url: str = Field(
        default="http://10.77.0.1:8088/janus", validation_alias=AliasChoices("JANUS_URL", "janus_url")
    )
    janus_admin_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("JANUS_ADMIN_KEY", "janus_admin_key")
    )
    janus_api_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JANUS_API_SECRET", "janus_api_secret")
    )
    # Video bitrate cap Janus applies to each publisher (bits per second).
    publisher_bitrate: int = 1_000_000
    # A publisher whose every track has delivered no media for this long (seconds) is disconnected:
    # Janus does not hang up a peer that vanished without closing DTLS.
    media_timeout: float = 20.0
    # How often the timer loop looks for rooms whose deadline passed (seconds).
    timer_interval: float = 1.0
    # Ad-hoc rooms: a WHIP/WHEP join naming an unknown room creates it (an account's `ad_hoc_rooms`
    # setting, when present, wins).
    ad_hoc_rooms: bool = True
    # Dev-only: lets the demo page mint Access Tokens from an API key SID (never enable in production).
    dev_tokens: bool = False
