"""Asking Janus to send one published stream to the recorder as plain RTP (``rtp_forward``), and to stop.

The Janus VideoRoom id is the room's RM SID. ``rtp_forward`` needs the plugin's ``admin_key``
(``lock_rtp_forward = true``) and the room ``secret``; the secret is derived from the admin key
(``libs.rooms.janus_secret``), so it never travels in events or crosses a service's tables.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from libs.janus.client import ForwardStream, JanusClient
from libs.janus.errors import JanusError
from libs.rooms.janus_secret import janus_room_secret

logger = logging.getLogger(__name__)


class ForwardingError(Exception):
    """Janus refused or could not be reached; the capture cannot start."""


class StreamForwarder(Protocol):
    """The port the sessions use (a fake in unit tests)."""

    async def start(
        self, room_id: str, publisher_id: str, mid: str, host: str, rtp_port: int, rtcp_port: int | None
    ) -> int:
        """Start forwarding; returns Janus's stream id. Raises ForwardingError."""
        ...

    async def stop(self, room_id: str, publisher_id: str, stream_id: int) -> None:
        """Stop a forwarder; unknown rooms, publishers or streams are not an error."""
        ...


class JanusStreamForwarder:
    """StreamForwarder over a shared, started ``JanusClient``."""

    def __init__(self, client: JanusClient, admin_key: str) -> None:
        self._client = client
        self._admin_key = admin_key

    async def start(
        self, room_id: str, publisher_id: str, mid: str, host: str, rtp_port: int, rtcp_port: int | None
    ) -> int:
        secret = janus_room_secret(self._admin_key, room_id)
        try:
            forwarders = await self._client.rtp_forward(
                room_id,
                publisher_id,
                host,
                [ForwardStream(mid=mid, port=rtp_port, rtcp_port=rtcp_port)],
                secret=secret,
            )
        except (JanusError, httpx.HTTPError) as exc:
            raise ForwardingError(str(exc)) from exc
        if not forwarders:
            raise ForwardingError("janus returned no forwarder")
        return forwarders[0].stream_id

    async def stop(self, room_id: str, publisher_id: str, stream_id: int) -> None:
        secret = janus_room_secret(self._admin_key, room_id)
        try:
            await self._client.stop_rtp_forward(room_id, publisher_id, stream_id, secret=secret)
        except (JanusError, httpx.HTTPError) as exc:
            # The publisher left or the room is gone: its forwarders are gone with it.
            logger.info("stop_rtp_forward refused", extra={"room": room_id, "error": str(exc)})
