"""Room service configuration: env prefix ``ROOM_`` plus the shared parts (libs.config), Janus's
included (``JANUS_URL``, ``JANUS_ADMIN_KEY``, ``JANUS_API_SECRET``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from libs.config import JanusSettings, ServiceSettings


class Settings(ServiceSettings):
    """Every ``ROOM_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="ROOM_", extra="ignore")

    janus: JanusSettings = Field(default_factory=JanusSettings)
    port: int = 8101
    db_schema: str = "room"
    consumer_group: str = "room"
    relay_name: str = "room"

    # Video bitrate cap Janus applies to each publisher (bits per second).
    publisher_bitrate: int = 1_000_000
    # A publisher whose every track has delivered no media for this long (seconds) is disconnected. Janus's
    # ICE consent checks also hang up a vanished peer, but only about a minute later (docs/rooms.md).
    media_timeout: float = 20.0
    # How often the timer loop looks for rooms whose deadline passed (seconds).
    timer_interval: float = 1.0
    # Ad-hoc rooms: a WHIP/WHEP join naming an unknown room creates it (an account's `ad_hoc_rooms`
    # setting, when present, wins).
    ad_hoc_rooms: bool = True
    # Dev-only: lets the demo page mint Access Tokens from an API key SID (never enable in production).
    dev_tokens: bool = False
