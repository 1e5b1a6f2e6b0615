"""Compositor service configuration: env prefix ``COMPOSITOR_`` plus the shared parts (libs.config)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.config import ServiceSettings


class JobSettings(BaseSettings):
    """The job runner's ``COMPOSITOR_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="COMPOSITOR_", extra="ignore")

    workers: int = 1  # jobs rendered at a time by this instance
    render_processes: int = 0  # engine worker processes per job; 0 = one per CPU
    render_memory_mb: float = 300.0  # fewer render processes when their estimated peak would exceed this
    lease_seconds: float = 30.0
    poll_interval_s: float = 2.0
    max_attempts: int = 3
    recordings_wait_s: float = 600.0  # a job waits this long at most for its room to end
    max_input_bytes: int = 40 * 1024**3  # combined size of the sources (Twilio's documented 40 GB)
    room_settle_s: float = 5.0  # without RoomRecordingsFinalized: wait this long after the room's end
    retention_days: int = 30  # metadata of deleted compositions
    work_dir: str | None = None
    instance_id: str | None = None  # lease owner name; default host:port


class Settings(ServiceSettings):
    """Every ``COMPOSITOR_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="COMPOSITOR_", extra="ignore")

    jobs: JobSettings = Field(default_factory=JobSettings)
    port: int = 8103
    db_schema: str = "compositor"
    consumer_group: str = "compositor"
    relay_name: str = "compositor"
