"""The mixdown CLI: parser shape, env file loading, and the identity commands against PostgreSQL."""

import base64
import json
import os
from pathlib import Path

import pytest

from libs.db.testing import integration_env
from mixdown.cli import build_parser, load_env_file, main


def test_parser_has_identity_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["keys", "create", "--account-sid", "AC" + "0" * 32, "--friendly-name", "k", "--json"]
    )
    assert args.json and args.friendly_name == "k" and callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["accounts", "create"])  # --friendly-name is required


def test_load_env_file_does_not_override(tmp_path: Path) -> None:
    env_file = tmp_path / "devstack.env"
    env_file.write_text("# comment\nA=1\nB=two=2\n\nC\n")
    environ = {"A": "already"}
    load_env_file(env_file, environ)
    assert environ == {"A": "already", "B": "two=2"}
    load_env_file(tmp_path / "missing.env", environ)


def test_unreachable_database_exit_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIXDOWN_MASTER_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("POSTGRES_DSN", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("MIXDOWN_VAR_DIR", "/nonexistent")
    assert main(["accounts", "list"]) == 1  # cannot connect
    assert "cannot connect" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_accounts_and_keys(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    env = integration_env()
    monkeypatch.setenv("MIXDOWN_VAR_DIR", "/nonexistent")  # keep var/devstack.env out of os.environ
    monkeypatch.setenv("POSTGRES_DSN", env["POSTGRES_DSN"])
    monkeypatch.setenv(
        "MIXDOWN_MASTER_KEY",
        env.get("MIXDOWN_MASTER_KEY") or base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )
    assert main(["migrate"]) == 0
    capsys.readouterr()
    assert main(["accounts", "create", "--friendly-name", "cli-test", "--json"]) == 0
    account = json.loads(capsys.readouterr().out)
    assert account["sid"].startswith("AC") and len(account["auth_token"]) == 32
    assert main(["keys", "create", "--account-sid", account["sid"], "--friendly-name", "k", "--json"]) == 0
    key = json.loads(capsys.readouterr().out)
    assert key["sid"].startswith("SK") and len(key["secret"]) == 32
    assert main(["accounts", "list"]) == 0
    assert account["sid"] in capsys.readouterr().out
    assert main(["keys", "list", "--account-sid", account["sid"]]) == 0
    assert key["sid"] in capsys.readouterr().out
    assert main(["keys", "create", "--account-sid", "AC" + "f" * 32, "--friendly-name", "x"]) == 1
    monkeypatch.delenv("MIXDOWN_MASTER_KEY")
    assert main(["accounts", "create", "--friendly-name", "nokey"]) == 2
