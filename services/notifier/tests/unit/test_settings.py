"""NOTIFIER_* environment variables."""

from __future__ import annotations

import ipaddress
import os

import pytest
from pydantic import ValidationError

from services.notifier.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("NOTIFIER_")]:
        monkeypatch.delenv(name)
    settings = Settings()
    assert settings.port == 8105
    assert settings.db_schema == "notifier"
    assert settings.consumer_group == "notifier"
    assert settings.retry_window_s == 86400.0
    assert settings.http_timeout_s == 15.0
    assert settings.lease_s > settings.http_timeout_s
    assert settings.target_policy().allow_private is False
    assert settings.topic_map() == {t: t for t in ("room.events", "recording.events", "composition.events")}


def test_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_ALLOW_PRIVATE_CALLBACKS", "true")
    monkeypatch.setenv("NOTIFIER_ALLOWED_CIDRS", "10.20.0.0/16, fd00::/8")
    monkeypatch.setenv("NOTIFIER_RETRY_WINDOW_S", "600")
    monkeypatch.setenv("NOTIFIER_TOPIC_SUFFIX", "-abc")
    settings = Settings()
    policy = settings.target_policy()
    assert policy.allow_private is True
    assert policy.allowed_cidrs == (ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00::/8"))
    assert settings.backoff_policy().window_s == 600.0
    assert settings.topic_map()["room.events-abc"] == "room.events"


def test_bad_cidr_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_ALLOWED_CIDRS", "10.0.0.0/33")
    with pytest.raises(ValidationError):
        Settings()
