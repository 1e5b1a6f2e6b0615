"""A tiny HTTP server standing in for the room service's Janus event endpoint (tests only).

Runs in a thread on the host-side test address and keeps every POSTed JSON body in order.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from libs.janus.events import JanusEvent, parse_events


class EventSink:
    def __init__(self, host: str, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._bodies: list[object] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with sink._lock:
                    sink._bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="janus-event-sink", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def events(self) -> list[JanusEvent]:
        """Every typed event received so far."""
        with self._lock:
            bodies = list(self._bodies)
        found: list[JanusEvent] = []
        for body in bodies:
            found.extend(parse_events(body))
        return found

    def raw_count(self) -> int:
        with self._lock:
            return len(self._bodies)

    async def wait_for(self, predicate: Callable[[JanusEvent], bool], wait: float = 10.0) -> JanusEvent:
        """Poll (with a deadline) until an event satisfies `predicate`."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError("expected Janus event not received")
