"""JSON log lines carry extra fields and never secrets."""

import json
import logging

import pytest

from libs.observability.logs import configure_logging, redact_text


@pytest.fixture(autouse=True)
def _restore_root() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers = handlers
    root.setLevel(level)


def test_json_lines_with_extra(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("room", "DEBUG")
    logging.getLogger("x.y").info("room created", extra={"room_sid": "RM1", "count": 2})
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "room created" and line["service"] == "room" and line["level"] == "INFO"
    assert line["room_sid"] == "RM1" and line["count"] == 2 and line["logger"] == "x.y"


def test_secrets_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("hook")
    log = logging.getLogger("t")
    log.info(
        "request",
        extra={
            "authorization": "Basic QUM6dG9rZW4=",
            "auth_token": "abcdef0123456789",
            "url": "http://m:9000/b/k?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA&response-content-type=a",
            "dsn": "postgresql://mixdown:pw@127.0.0.1/db",
            "note": "header Authorization: Bearer eyJhbGciOi.x.y",
        },
    )
    try:
        raise ValueError("password=hunter2")
    except ValueError:
        log.exception("failed")
    out = capsys.readouterr().out
    for secret in ("QUM6dG9rZW4", "abcdef0123456789", "deadbeef", "AKIA", "pw@", "eyJhbGciOi", "hunter2"):
        assert secret not in out, secret
    first = json.loads(out.splitlines()[0])
    assert "response-content-type=a" in first["url"]
    assert "exception" in json.loads(out.splitlines()[1])


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization=Basic abcdefgh", "abcdefgh"),
        ("https://x/y?sig=abc123&a=1", "abc123"),
        ("redis://user:topsecret@host", "topsecret"),
        ("secret: s3cr3tvalue", "s3cr3tvalue"),
    ],
)
def test_redact_text(text: str, leak: str) -> None:
    assert leak not in redact_text(text)
