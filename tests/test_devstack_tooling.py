"""The devstack's own building blocks, without starting the stack: processes, templates, probes."""

from __future__ import annotations

import importlib
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def stack(name: str) -> ModuleType:
    devstack_dir = str(REPO / "deploy" / "devstack")
    if devstack_dir not in sys.path:
        sys.path.insert(0, devstack_dir)
    return importlib.import_module(f"stack.{name}")


@pytest.fixture
def processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = stack("processes")
    monkeypatch.setattr(module, "RUN", tmp_path / "run")
    monkeypatch.setattr(module, "LOGS", tmp_path / "log")
    return module


def test_spawn_records_pid_and_stop_terminates(processes: ModuleType, tmp_path: Path) -> None:
    record = processes.spawn("sleeper", ["sleep", "30"], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert processes.running("sleeper") == record
    assert (tmp_path / "run" / "sleeper.pid").read_text().split()[0] == str(record.pid)
    assert processes.stop("sleeper", timeout=5) is True
    assert processes.running("sleeper") is None
    assert not (tmp_path / "run" / "sleeper.pid").exists()
    assert processes.stop("sleeper") is False


def test_stop_kills_a_process_that_ignores_the_signal(processes: ModuleType, tmp_path: Path) -> None:
    script = "trap '' TERM; echo ready; while true; do sleep 0.1; done"
    processes.spawn("stubborn", ["bash", "-c", script], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    deadline = time.monotonic() + 5
    while "ready" not in (tmp_path / "log" / "stubborn.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    assert processes.stop("stubborn", sig=signal.SIGTERM, timeout=0.5) is True
    assert 0.5 <= time.monotonic() - started < 5
    assert processes.running("stubborn") is None


def test_a_recycled_pid_is_not_ours(processes: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    # PID 1 exists but started at a different tick than recorded: never treated as ours, never signalled.
    (tmp_path / "run" / "impostor.pid").write_text("1 123456789\n")
    assert processes.running("impostor") is None
    assert not (tmp_path / "run" / "impostor.pid").exists()


def test_render_fills_every_placeholder_and_rejects_unknown_ones() -> None:
    config = stack("config")
    assert config.render("a=@@X@@ b=@@Y_2@@", {"X": "1", "Y_2": "two"}) == "a=1 b=two"
    errors = stack("commands")
    with pytest.raises(errors.DevstackError, match="@@MISSING@@"):
        config.render("@@MISSING@@", {})


def test_env_template_renders_with_generated_secrets() -> None:
    config = stack("config")
    template = (REPO / "deploy" / "devstack" / "env.template").read_text()
    secrets = config._new_secrets()
    rendered = config.parse_env(config.render(template, secrets))
    assert list(rendered) == config.template_variable_names()
    assert rendered["S3_SECRET_KEY"] == secrets["S3_SECRET_KEY"]
    platform = importlib.import_module("libs.config")
    settings = platform.PlatformSettings(master_key=rendered["MIXDOWN_MASTER_KEY"])
    assert len(settings.master_key_bytes()) == 32


def test_every_template_renders_completely() -> None:
    config = stack("config")
    values = {name: "x" for name in ("KAFKA_DATA_DIR", "JANUS_CONFIG_DIR", "JANUS_LIB_DIR")}
    values |= {"JANUS_ADMIN_KEY": "k", "JANUS_ADMIN_SECRET": "s"}
    for path in (REPO / "deploy" / "devstack" / "templates").iterdir():
        if path.name != "nginx.conf":
            assert "@@" not in config.render(path.read_text(), values), path.name
    janus = (REPO / "deploy" / "devstack" / "templates" / "janus.jcfg").read_text()
    assert 'ice_enforce_list = "mxd1"' in janus
    assert 'rtp_port_range = "40000-40999"' in janus
    videoroom = (REPO / "deploy" / "devstack" / "templates" / "janus.plugin.videoroom.jcfg").read_text()
    assert "string_ids = true" in videoroom and "lock_rtp_forward = true" in videoroom


def _fake_kafka(answer: bytes) -> tuple[int, threading.Thread, list[bytes]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            size = struct.unpack(">i", conn.recv(4))[0]
            seen.append(conn.recv(size))
            conn.sendall(struct.pack(">i", len(answer)) + answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], thread, seen


def test_kafka_metadata_probe_speaks_the_protocol() -> None:
    probes = stack("probes")
    port, thread, seen = _fake_kafka(struct.pack(">iii", 7, 0, 1) + b"\0" * 16)
    assert probes.kafka_metadata(port=port) is None
    thread.join(5)
    api_key, api_version, correlation = struct.unpack(">hhi", seen[0][:8])
    assert (api_key, api_version, correlation) == (3, 4, 7)
    port, thread, _ = _fake_kafka(struct.pack(">iii", 7, 0, 0))
    assert probes.kafka_metadata(port=port) == "kafka metadata: no brokers yet"
    thread.join(5)


def test_kafka_metadata_probe_reports_a_closed_port() -> None:
    probes = stack("probes")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert probes.kafka_metadata(port=port, timeout=1) is not None


def test_load_env_overlays_dev_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    devstack = importlib.import_module("libs.testing.devstack")
    (tmp_path / "devstack.env").write_text("# comment\nA=1\nB=two words\n")
    (tmp_path / "dev.env").write_text("B=3\nMIXDOWN_URL=http://127.0.0.1:8080\n")
    monkeypatch.setattr(devstack, "ENV_FILES", (tmp_path / "devstack.env", tmp_path / "dev.env"))
    assert devstack.load_env() == {"A": "1", "B": "3", "MIXDOWN_URL": "http://127.0.0.1:8080"}
