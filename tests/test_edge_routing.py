"""The edge's nginx config routes like video.twilio.com: rendered from the devstack template, run in a
private nginx whose upstreams are stand-in servers that echo what they received (needs the nginx binary)."""

from __future__ import annotations

import importlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import httpx
import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed (make up installs it)"),
]

REPO = Path(__file__).resolve().parents[1]
UPSTREAMS = ("room", "recorder", "compositor", "hook")
ROOM = "RM0123456789abcdef0123456789abcdef"
ROUTES = [
    ("/v1/Rooms", "room"),
    (f"/v1/Rooms/{ROOM}", "room"),
    (f"/v1/Rooms/{ROOM}/Participants/PA0123456789abcdef0123456789abcdef/SubscribeRules", "room"),
    (f"/v1/Rooms/{ROOM}/RecordingRules", "room"),
    (f"/v1/Rooms/{ROOM}/Recordings", "recorder"),
    (f"/v1/Rooms/{ROOM}/Recordings/RT0123456789abcdef0123456789abcdef/Media", "recorder"),
    ("/v1/Recordings", "recorder"),
    ("/v1/Recordings/RT0123456789abcdef0123456789abcdef/Media", "recorder"),
    ("/v1/RecordingSettings/Default", "recorder"),
    ("/v1/Compositions", "compositor"),
    ("/v1/Compositions/CJ0123456789abcdef0123456789abcdef/Media", "compositor"),
    ("/v1/CompositionSettings/Default", "compositor"),
    ("/v1/CompositionHooks", "hook"),
    ("/v1/CompositionHooks/HK0123456789abcdef0123456789abcdef", "hook"),
    (f"/whip/{ROOM}", "room"),
    (f"/whep/{ROOM}", "room"),
    ("/rooms-ui/", "room"),
]


def stack(name: str) -> ModuleType:
    devstack_dir = str(REPO / "deploy" / "devstack")
    if devstack_dir not in sys.path:
        sys.path.insert(0, devstack_dir)
    return importlib.import_module(f"stack.{name}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Echo(BaseHTTPRequestHandler):
    service = "?"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("transfer-encoding") == "chunked":
            body = b""
            while (size := int(self.rfile.readline().strip(), 16)) > 0:
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        data = json.dumps(
            {
                "service": self.service,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return


@contextmanager
def private_edge(workdir: Path, ports: dict[str, int]) -> Iterator[tuple[str, str]]:
    """nginx with the devstack config on free ports and the given upstreams; yields (API URL, events URL)."""
    edge_module = stack("edge")
    api_port, events_port = free_port(), free_port()
    configure = subprocess.run(["nginx", "-V"], capture_output=True, text=True, check=True)
    modules = edge_module.temp_modules(configure.stderr)
    values = edge_module.devstack_values(modules)
    values.update(
        {
            "PID_FILE": str(workdir / "nginx.pid"),
            "TEMP_PATHS": "\n".join(f"\t{m}_temp_path {workdir}/{m};" for m in modules),
            "EDGE_LISTEN": f"\t\tlisten 127.0.0.1:{api_port};",
            "EVENTS_LISTEN": f"\t\tlisten 127.0.0.1:{events_port};",
            "EVENTS_ALLOW": "127.0.0.1",
        }
    )
    values.update({f"{name.upper()}_ADDR": f"127.0.0.1:{port}" for name, port in ports.items()})
    conf = workdir / "nginx.conf"
    conf.write_text(edge_module.render_edge(values))
    with (workdir / "nginx.log").open("wb") as log:
        proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(conf)], stdout=log, stderr=log)
        base = f"http://127.0.0.1:{api_port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError((workdir / "nginx.log").read_text()) from None
                    time.sleep(0.05)
            yield base, f"http://127.0.0.1:{events_port}"
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A private edge whose upstreams are echo servers named after the services."""
    servers = []
    ports: dict[str, int] = {}
    for name in UPSTREAMS:
        server = ThreadingHTTPServer(("127.0.0.1", 0), type(f"{name}Echo", (Echo,), {"service": name}))
        ports[name] = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        with private_edge(tmp_path_factory.mktemp("edge"), ports) as urls:
            yield urls
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_down_service_is_a_twilio_style_503(tmp_path: Path) -> None:
    closed = {name: free_port() for name in UPSTREAMS}
    with private_edge(tmp_path, closed) as (base, _):
        response = httpx.get(f"{base}/v1/CompositionHooks", timeout=10)
    assert response.status_code == 503
    assert response.json() == {
        "code": 20503,
        "message": "Service unavailable",
        "more_info": "https://www.twilio.com/docs/errors/20503",
        "status": 503,
    }


@pytest.mark.parametrize(("path", "service"), ROUTES, ids=[r[0] for r in ROUTES])
def test_path_reaches_its_service_with_forwarded_headers(
    edge: tuple[str, str], path: str, service: str
) -> None:
    base, _ = edge
    response = httpx.get(f"{base}{path}?PageSize=5", headers={"X-Forwarded-For": "192.0.2.7"}, timeout=10)
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["service"] == service
    assert seen["path"] == f"{path}?PageSize=5"
    assert seen["headers"]["x-forwarded-host"] == base.removeprefix("http://")
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-for"] == "192.0.2.7, 127.0.0.1"


def test_unknown_path_is_a_twilio_404(edge: tuple[str, str]) -> None:
    base, _ = edge
    for path in ("/v2/Rooms", "/v1/Nope", "/"):
        response = httpx.get(f"{base}{path}", timeout=10)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {
            "code": 20404,
            "message": f"The requested resource {path} was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404",
            "status": 404,
        }


def test_large_form_bodies_stream_through(edge: tuple[str, str]) -> None:
    base, _ = edge
    body = "RoomSid=" + ROOM + "&VideoLayout=" + "x" * 1_000_000
    response = httpx.post(
        f"{base}/v1/Compositions",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=20,
    )
    assert response.status_code == 200
    assert response.json()["body"] == body


def test_janus_event_sink_forwards_to_the_room_service(edge: tuple[str, str]) -> None:
    _, events = edge
    event = {"emitter": "mixdown-janus", "type": 1, "timestamp": 1, "event": {"name": "created"}}
    response = httpx.post(f"{events}/janus-events", json=event, timeout=10)
    assert response.status_code == 200
    seen = response.json()
    assert (seen["service"], seen["path"]) == ("room", "/internal/janus/events")
    assert json.loads(seen["body"]) == event
    assert httpx.get(f"{events}/other", timeout=10).status_code == 404
