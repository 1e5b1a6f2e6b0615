"""Settings parts read their env prefixes and validate the master key."""

import base64
import os

import pytest
from pydantic import ValidationError

from libs.config import KafkaSettings, PlatformSettings, PostgresSettings, S3Settings


def test_defaults_match_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KAFKA_", "POSTGRES_", "S3_", "MIXDOWN_")):
            monkeypatch.delenv(name)
    assert KafkaSettings().bootstrap_servers == "127.0.0.1:9092"
    assert PostgresSettings().dsn == "postgresql://mixdown:mixdown@127.0.0.1:5433/mixdown"
    s3 = S3Settings()
    assert (s3.endpoint, s3.bucket, s3.region, s3.secure) == (
        "127.0.0.1:9000",
        "mixdown-media",
        "us-east-1",
        False,
    )
    assert PlatformSettings().public_url == "http://127.0.0.1:8080"


def test_env_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:1")
    monkeypatch.setenv("S3_SECRET_KEY", "s3cr3t")
    monkeypatch.setenv("S3_SECURE", "true")
    monkeypatch.setenv("MIXDOWN_PUBLIC_URL", "https://video.example.com/")
    assert KafkaSettings().bootstrap_servers == "k:1"
    s3 = S3Settings()
    assert s3.secure is True and s3.secret_key.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(s3)
    assert PlatformSettings().public_url == "https://video.example.com"


def test_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = bytes(range(32))
    monkeypatch.setenv("MIXDOWN_MASTER_KEY", base64.urlsafe_b64encode(key).decode().rstrip("="))
    assert PlatformSettings().master_key_bytes() == key
    monkeypatch.setenv("MIXDOWN_MASTER_KEY", base64.urlsafe_b64encode(b"short").decode())
    with pytest.raises(ValidationError):
        PlatformSettings()
    monkeypatch.delenv("MIXDOWN_MASTER_KEY")
    with pytest.raises(ValueError):
        PlatformSettings().master_key_bytes()
