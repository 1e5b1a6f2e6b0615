"""Recorder service configuration: env prefix ``RECORDER_`` plus the shared parts (libs.config), Janus's
included (``JANUS_URL``, ``JANUS_ADMIN_KEY``, ``JANUS_API_SECRET``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from libs.config import JanusSettings, ServiceSettings


class Settings(ServiceSettings):
    """Every ``RECORDER_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="RECORDER_", extra="ignore")

    janus: JanusSettings = Field(default_factory=JanusSettings)
    port: int = 8102
    db_schema: str = "recorder"
    consumer_group: str = "recorder"
    relay_name: str = "recorder"

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
