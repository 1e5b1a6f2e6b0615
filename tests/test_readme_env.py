"""README.md documents every environment variable a service reads (derived from the Settings classes)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[1]
SERVICES = ["room", "recorder", "compositor", "hook", "notifier"]


def env_names(settings_class: type[BaseSettings]) -> set[str]:
    """Every variable name ``settings_class`` reads, nested settings parts included."""
    prefix = str(settings_class.model_config.get("env_prefix", "")).upper()
    names: set[str] = set()
    for name, field in settings_class.model_fields.items():
        annotation = field.annotation
        alias = field.validation_alias
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names |= env_names(annotation)
        elif isinstance(alias, AliasChoices):
            names.add(next(str(c) for c in alias.choices if str(c).isupper()))
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(prefix + name.upper())
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_readme_lists_every_variable_of(service: str) -> None:
    settings = importlib.import_module(f"services.{service}.settings").Settings
    readme = (REPO / "README.md").read_text()
    missing = sorted(name for name in env_names(settings) if f"`{name}`" not in readme)
    assert not missing, f"README.md does not document: {', '.join(missing)}"


def test_the_names_are_derived_from_nested_parts() -> None:
    names = env_names(importlib.import_module("services.hook.settings").Settings)
    assert {"POSTGRES_DSN", "KAFKA_BOOTSTRAP_SERVERS", "S3_SECRET_KEY", "HOOK_PORT"} <= names


def test_aliases_name_the_shared_variables() -> None:
    names = env_names(importlib.import_module("services.room.settings").Settings)
    assert "JANUS_URL" in names
    assert "ROOM_JANUS_URL" not in names
