"""Janus HTTP API client: one long-lived session, its long-poll loop, and typed VideoRoom calls.

`JanusClient` owns a Janus session and an "admin" VideoRoom handle used for the synchronous room
requests (create, destroy, exists, listparticipants, kick, rtp_forward, stop_rtp_forward,
listforwarders). `PublisherHandle` and `SubscriberHandle` are extra handles for one WHIP publisher
or one WHEP viewer each. The long poll (GET /janus/<session>) keeps the session alive and delivers
asynchronous answers (matched to their request by `transaction`) and handle events (webrtcup,
hangup, media, plugin events) to the handle's queue.

When Janus loses the session (session_timeout, restart) the client creates a new session and a new
admin handle, fails every pending request with `JanusSessionLostError`, marks old handles lost and
calls `on_session_lost`; Janus has then already dropped those handles' PeerConnections, so their
participants are gone. Room ids (and, with `string_ids = true`, participant ids) are strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import httpx

from libs.config import JanusSettings
from libs.janus.errors import (
    JANUS_SESSION_NOT_FOUND,
    JanusError,
    JanusSessionLostError,
    JanusTimeoutError,
)
from libs.janus.handles import (
    VIDEOROOM_PLUGIN,
    JanusMessage,
    Joined,
    JsonObject,
    PluginHandle,
    Published,
    PublisherHandle,
    StreamInfo,
    StreamToggle,
    SubscriberHandle,
    SubscribeStream,
    Subscription,
    SubscriptionUpdate,
    message_from,
    opt_int,
    opt_str,
    plugin_data,
    raise_for_plugin_error,
)

__all__ = [
    "ForwardStream",
    "Forwarder",
    "JanusClient",
    "JanusMessage",
    "JanusParticipant",
    "Joined",
    "PluginHandle",
    "Published",
    "PublisherHandle",
    "StreamInfo",
    "StreamToggle",
    "SubscribeStream",
    "SubscriberHandle",
    "Subscription",
    "SubscriptionUpdate",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JanusParticipant:
    id: str
    display: str | None
    publisher: bool


@dataclass(frozen=True)
class ForwardStream:
    """One stream to forward: the publisher's `mid`, our UDP port and optionally an RTCP port
    (Janus then sends RTCP there and accepts PLIs back, which is how the recorder asks for keyframes)."""

    mid: str
    port: int
    rtcp_port: int | None = None


@dataclass(frozen=True)
class Forwarder:
    stream_id: int
    type: str | None
    host: str | None
    port: int | None
    local_rtcp_port: int | None = None
    remote_rtcp_port: int | None = None


_H = TypeVar("_H", bound=PluginHandle)
SessionLostHook = Callable[[int], Awaitable[None]]


@dataclass
class _Pending:
    future: asyncio.Future[JanusMessage]
    handle_id: int


@dataclass
class _State:
    session_id: int | None = None
    admin: PluginHandle | None = None
    handles: dict[int, PluginHandle] = field(default_factory=dict)
    pending: dict[str, _Pending] = field(default_factory=dict)


class JanusClient:
    """Client of Janus's HTTP API (base URL like http://10.77.0.1:8088/janus). Use `async with`."""

    def __init__(
        self,
        base_url: str,
        *,
        admin_key: str,
        api_secret: str | None = None,
        http: httpx.AsyncClient | None = None,
        request_timeout: float = 10.0,
        poll_wait: float = 30.0,
        max_events: int = 10,
        on_session_lost: SessionLostHook | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._admin_key = admin_key
        self._api_secret = api_secret
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=request_timeout)
        self._request_timeout = request_timeout
        self._poll_wait = poll_wait
        self._max_events = max_events
        self._on_session_lost = on_session_lost
        self._state = _State()
        self._poll_task: asyncio.Task[None] | None = None
        self._recover_lock = asyncio.Lock()
        self._transactions = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._closed = False

    @classmethod
    def from_settings(
        cls, settings: JanusSettings, *, on_session_lost: SessionLostHook | None = None
    ) -> Self:
        """A client for the Janus that ``JANUS_URL``/``JANUS_ADMIN_KEY``/``JANUS_API_SECRET`` name."""
        secret = settings.api_secret.get_secret_value() if settings.api_secret else None
        return cls(
            settings.url,
            admin_key=settings.admin_key.get_secret_value(),
            api_secret=secret,
            on_session_lost=on_session_lost,
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session_id(self) -> int | None:
        return self._state.session_id

    async def start(self) -> None:
        """Create the session and the admin handle, and start the long poll."""
        await self._open_session()
        self._poll_task = asyncio.create_task(self._poll_loop(), name="janus-long-poll")

    async def close(self) -> None:
        """Stop polling, destroy the session (best effort) and close the HTTP client if we made it."""
        self._closed = True
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        session = self._state.session_id
        if session is not None:
            with contextlib.suppress(JanusError, httpx.HTTPError):
                await self._post(f"/{session}", {"janus": "destroy"})
        self._fail_pending(JanusSessionLostError("client closed"))
        if self._own_http:
            await self._http.aclose()

    # ---- transport -------------------------------------------------------------------------

    def _transaction(self) -> str:
        return f"{self._prefix}-{next(self._transactions)}"

    async def _post(self, path: str, body: JsonObject, *, transaction: str | None = None) -> JsonObject:
        payload = {**body, "transaction": transaction or self._transaction()}
        if self._api_secret is not None:
            payload["apisecret"] = self._api_secret
        try:
            response = await self._http.post(self._base + path, json=payload, timeout=self._request_timeout)
        except httpx.TimeoutException:
            raise JanusTimeoutError("Janus did not answer in time") from None
        except httpx.HTTPError as exc:
            raise JanusError(0, f"Janus unreachable: {type(exc).__name__}") from None
        try:
            answer = response.json()
        except ValueError:
            raise JanusError(response.status_code, "Janus answered with non-JSON") from None
        if not isinstance(answer, dict):
            raise JanusError(0, "Janus answered with a non-object")
        if answer.get("janus") == "error":
            error = answer.get("error")
            code = opt_int(error.get("code")) if isinstance(error, Mapping) else None
            reason = str(error.get("reason", "")) if isinstance(error, Mapping) else ""
            if code == JANUS_SESSION_NOT_FOUND:
                raise JanusSessionLostError(reason or "No such session")
            raise JanusError(code or 0, reason or "Janus error")
        return answer

    async def _open_session(self) -> None:
        created = await self._post("", {"janus": "create"})
        session_id = opt_int(created.get("data", {}).get("id"))
        if session_id is None:
            raise JanusError(0, "Janus create returned no session id")
        self._state.session_id = session_id
        self._state.admin = await self._attach(PluginHandle)
        logger.info("janus session opened", extra={"janus_session": session_id})

    async def _attach(self, kind: type[_H]) -> _H:
        session = self._require_session()
        answer = await self._post(f"/{session}", {"janus": "attach", "plugin": VIDEOROOM_PLUGIN})
        handle_id = opt_int(answer.get("data", {}).get("id"))
        if handle_id is None:
            raise JanusError(0, "Janus attach returned no handle id")
        handle = kind(self, handle_id, session)
        self._state.handles[handle_id] = handle
        return handle

    def _require_session(self) -> int:
        if self._state.session_id is None:
            raise JanusSessionLostError("no Janus session")
        return self._state.session_id

    def forget(self, handle: PluginHandle) -> None:
        self._state.handles.pop(handle.handle_id, None)

    async def handle_call(self, handle: PluginHandle, body: JsonObject) -> JsonObject:
        """A non-plugin call on a handle (hangup, detach, trickle)."""
        try:
            return await self._post(f"/{handle.session_id}/{handle.handle_id}", body)
        except JanusSessionLostError:
            await self._recover(handle.session_id)
            raise

    async def plugin_request(self, handle: PluginHandle, body: JsonObject) -> JsonObject:
        try:
            answer = await self._post(
                f"/{handle.session_id}/{handle.handle_id}", {"janus": "message", "body": body}
            )
        except JanusSessionLostError:
            await self._recover(handle.session_id)
            raise
        data = plugin_data(answer)
        raise_for_plugin_error(data)
        return data

    async def plugin_message(
        self, handle: PluginHandle, body: JsonObject, jsep: JsonObject | None, *, wait: float | None
    ) -> tuple[JsonObject, JsonObject | None]:
        transaction = self._transaction()
        future: asyncio.Future[JanusMessage] = asyncio.get_running_loop().create_future()
        self._state.pending[transaction] = _Pending(future, handle.handle_id)
        request: JsonObject = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        try:
            try:
                answer = await self._post(
                    f"/{handle.session_id}/{handle.handle_id}", request, transaction=transaction
                )
            except JanusSessionLostError:
                await self._recover(handle.session_id)
                raise
            if answer.get("janus") == "success":  # some requests answer synchronously
                message = message_from(answer)
            else:
                try:
                    message = await asyncio.wait_for(future, wait or self._request_timeout)
                except TimeoutError:
                    raise JanusTimeoutError("no Janus event for the request in time") from None
        finally:
            self._state.pending.pop(transaction, None)
        raise_for_plugin_error(message.data)
        return message.data, message.jsep

    async def _admin_request(self, body: JsonObject) -> JsonObject:
        """A synchronous request on the admin handle; retried once on a fresh session when the old
        one was lost (Janus did not run the request in that case)."""
        for attempt in (1, 2):
            admin = self._state.admin
            if admin is None:
                raise JanusSessionLostError("no Janus session")
            try:
                return await self.plugin_request(admin, body)
            except JanusSessionLostError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- long poll and recovery ------------------------------------------------------------

    async def _poll_loop(self) -> None:
        failures = 0
        while not self._closed:
            session = self._state.session_id
            if session is None:
                await self._recover(None)
                continue
            params: dict[str, str | int] = {"maxev": self._max_events, "rid": int(time.time() * 1000)}
            if self._api_secret is not None:
                params["apisecret"] = self._api_secret
            try:
                response = await self._http.get(
                    f"{self._base}/{session}", params=params, timeout=self._poll_wait + 10.0
                )
                payload = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                failures += 1
                logger.warning(
                    "janus long poll failed", extra={"janus_session": session, "error": type(exc).__name__}
                )
                await asyncio.sleep(min(5.0, 0.5 * failures))
                if failures >= 3:
                    # Janus may have restarted: probe by recovering; a live session is kept.
                    await self._recover(session, probe=True)
                continue
            failures = 0
            for raw in payload if isinstance(payload, list) else [payload]:
                if isinstance(raw, dict):
                    await self._dispatch(session, raw)

    async def _dispatch(self, session: int, raw: JsonObject) -> None:
        kind = raw.get("janus")
        if kind == "keepalive":
            return
        if kind == "error":
            error = raw.get("error")
            code = opt_int(error.get("code")) if isinstance(error, Mapping) else None
            if code == JANUS_SESSION_NOT_FOUND:
                await self._recover(session)
            return
        message = message_from(raw)
        pending = self._state.pending.get(message.transaction or "")
        if pending is not None and kind in ("event", "success") and not pending.future.done():
            pending.future.set_result(message)
            return
        if message.sender is not None:
            handle = self._state.handles.get(message.sender)
            if handle is not None:
                handle.deliver(message)
                if kind == "detached":
                    handle.lost = True
                    self.forget(handle)

    def _fail_pending(self, error: JanusError) -> None:
        for pending in self._state.pending.values():
            if not pending.future.done():
                pending.future.set_exception(error)
        self._state.pending.clear()

    async def _recover(self, lost_session: int | None, *, probe: bool = False) -> None:
        """Replace a lost session (no-op if another task already did)."""
        async with self._recover_lock:
            if self._closed or (lost_session is not None and self._state.session_id != lost_session):
                return
            if probe and lost_session is not None:
                try:
                    await self._post(f"/{lost_session}", {"janus": "keepalive"})
                    return
                except JanusSessionLostError:
                    pass
                except JanusError:
                    return  # Janus still unreachable: keep polling
            old_handles = list(self._state.handles.values())
            self._state = _State(pending=self._state.pending)
            self._fail_pending(JanusSessionLostError("Janus session lost"))
            for handle in old_handles:
                handle.lost = True
            try:
                await self._open_session()
            except JanusError:
                logger.warning("janus session reopen failed", extra={"janus_session": lost_session})
                self._state.session_id = None
                await asyncio.sleep(1.0)
                return
            logger.warning(
                "janus session replaced",
                extra={"janus_session": lost_session, "new_janus_session": self._state.session_id},
            )
            if self._on_session_lost is not None and lost_session is not None:
                try:
                    await self._on_session_lost(lost_session)
                except Exception:
                    logger.exception("janus session-lost hook failed")

    # ---- handles -----------------------------------------------------------------------------

    async def publisher(self) -> PublisherHandle:
        """A new handle for one WHIP publisher."""
        return await self._attach(PublisherHandle)

    async def subscriber(self) -> SubscriberHandle:
        """A new handle for one WHEP viewer."""
        return await self._attach(SubscriberHandle)

    # ---- VideoRoom room requests (synchronous) ----------------------------------------------

    async def create_room(
        self,
        room_id: str,
        *,
        publishers: int,
        videocodec: str = "vp8",
        audiocodec: str = "opus",
        bitrate: int = 1_000_000,
        secret: str,
        description: str | None = None,
        fir_freq: int | None = None,
    ) -> None:
        """Create a VideoRoom named `room_id` (our RM SID). Raises JanusError 427 when it exists."""
        body: JsonObject = {
            "request": "create",
            "room": room_id,
            "admin_key": self._admin_key,
            "secret": secret,
            "publishers": publishers,
            "videocodec": videocodec,
            "audiocodec": audiocodec,
            "bitrate": bitrate,
            "notify_joining": True,
            "permanent": False,
            "record": False,
        }
        if description is not None:
            body["description"] = description
        if fir_freq is not None:
            body["fir_freq"] = fir_freq
        await self._admin_request(body)

    async def destroy_room(self, room_id: str, *, secret: str) -> None:
        """Destroy a room; everyone in it is disconnected. Raises JanusError 426 when unknown."""
        await self._admin_request(
            {"request": "destroy", "room": room_id, "secret": secret, "permanent": False}
        )

    async def exists(self, room_id: str) -> bool:
        data = await self._admin_request({"request": "exists", "room": room_id})
        return bool(data.get("exists"))

    async def list_participants(self, room_id: str) -> list[JanusParticipant]:
        data = await self._admin_request({"request": "listparticipants", "room": room_id})
        found: list[JanusParticipant] = []
        for item in data.get("participants") or []:
            if isinstance(item, Mapping) and (pid := opt_str(item.get("id"))) is not None:
                found.append(JanusParticipant(pid, opt_str(item.get("display")), bool(item.get("publisher"))))
        return found

    async def kick(self, room_id: str, participant_id: str, *, secret: str) -> None:
        await self._admin_request(
            {"request": "kick", "room": room_id, "id": participant_id, "secret": secret}
        )

    async def rtp_forward(
        self,
        room_id: str,
        publisher_id: str,
        host: str,
        streams: Sequence[ForwardStream],
        *,
        secret: str,
    ) -> list[Forwarder]:
        """Forward a publisher's streams as plain RTP to `host`; returns one forwarder per stream."""
        wanted: list[JsonObject] = []
        for stream in streams:
            item: JsonObject = {"mid": stream.mid, "port": stream.port}
            if stream.rtcp_port is not None:
                item["rtcp_port"] = stream.rtcp_port
            wanted.append(item)
        data = await self._admin_request(
            {
                "request": "rtp_forward",
                "room": room_id,
                "publisher_id": publisher_id,
                "secret": secret,
                "admin_key": self._admin_key,
                "host": host,
                "host_family": "ipv6" if ":" in host else "ipv4",
                "streams": wanted,
            }
        )
        return [_forwarder(item) for item in data.get("forwarders") or [] if isinstance(item, Mapping)]

    async def stop_rtp_forward(self, room_id: str, publisher_id: str, stream_id: int, *, secret: str) -> None:
        await self._admin_request(
            {
                "request": "stop_rtp_forward",
                "room": room_id,
                "publisher_id": publisher_id,
                "stream_id": stream_id,
                "secret": secret,
                "admin_key": self._admin_key,
            }
        )

    async def list_forwarders(self, room_id: str, *, secret: str) -> dict[str, list[Forwarder]]:
        """Forwarders per publisher id."""
        data = await self._admin_request({"request": "listforwarders", "room": room_id, "secret": secret})
        found: dict[str, list[Forwarder]] = {}
        for publisher in data.get("publishers") or []:
            if not isinstance(publisher, Mapping) or (pid := opt_str(publisher.get("publisher_id"))) is None:
                continue
            found[pid] = [_forwarder(f) for f in publisher.get("forwarders") or [] if isinstance(f, Mapping)]
        return found


def _forwarder(item: Mapping[str, Any]) -> Forwarder:
    return Forwarder(
        stream_id=opt_int(item.get("stream_id")) or 0,
        type=opt_str(item.get("type")),
        host=opt_str(item.get("host")),
        port=opt_int(item.get("port")),
        local_rtcp_port=opt_int(item.get("local_rtcp_port")),
        remote_rtcp_port=opt_int(item.get("remote_rtcp_port")),
    )
