"""Health probes: each returns None when healthy, else a short reason."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import urllib.error
import urllib.request

from .layout import PG_BIN, PG_PORT


def http_get(url: str, *, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET url without proxies; returns (status, body); HTTP errors are returned, not raised."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:  # noqa: S310 - fixed local URLs
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def http_ok(url: str) -> str | None:
    try:
        status, _ = http_get(url)
    except OSError as error:
        return f"{url}: {error}"
    return None if status == 200 else f"{url}: HTTP {status}"


def janus_info(base_url: str) -> str | None:
    try:
        status, body = http_get(f"{base_url}/info")
        if status != 200:
            return f"janus info: HTTP {status}"
        if json.loads(body).get("janus") != "server_info":
            return "janus info: unexpected answer"
    except (OSError, ValueError) as error:
        return f"janus info: {error}"
    return None


def postgres() -> str | None:
    result = subprocess.run(  # noqa: S603
        [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(PG_PORT), "-d", "postgres"],
        check=False,
        capture_output=True,
    )
    return None if result.returncode == 0 else f"pg_isready exit {result.returncode}"


def _kafka_string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def kafka_metadata(host: str = "127.0.0.1", port: int = 9092, *, timeout: float = 3.0) -> str | None:
    """Send a Metadata v4 request (all topics) and check that the answer names at least one broker."""
    correlation_id = 7
    body = struct.pack(">hhi", 3, 4, correlation_id) + _kafka_string("mixdown-devstack")
    body += struct.pack(">i?", -1, False)  # topics = null (all), allow_auto_topic_creation = false
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(struct.pack(">i", len(body)) + body)
            header = _read_exact(conn, 4)
            (size,) = struct.unpack(">i", header)
            payload = _read_exact(conn, size)
    except OSError as error:
        return f"kafka metadata: {error}"
    got_id, _throttle, brokers = struct.unpack(">iii", payload[:12])
    if got_id != correlation_id:
        return "kafka metadata: wrong correlation id"
    if brokers < 1:
        return "kafka metadata: no brokers yet"
    return None


def _read_exact(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)
