"""Hook service configuration: env prefix ``HOOK_`` plus the shared parts (libs.config)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from libs.config import ServiceSettings


class Settings(ServiceSettings):
    """Every ``HOOK_*`` variable (listed in README.md)."""

    model_config = SettingsConfigDict(env_prefix="HOOK_", extra="ignore")

    port: int = 8104
    db_schema: str = "hook"
    consumer_group: str = "hook"
    relay_name: str = "hook"
