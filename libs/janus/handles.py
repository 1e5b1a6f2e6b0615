"""Janus plugin handles: one attached VideoRoom handle per WHIP publisher or WHEP viewer.

`PublisherHandle` joins a room as a publisher and publishes the client's SDP offer (Janus answers);
`SubscriberHandle` joins as a subscriber and gets Janus's SDP offer, then `start`s with the client's
answer. Both talk to Janus through a `HandleTransport` (the `JanusClient`), which matches
asynchronous answers by transaction and queues the handle's unsolicited events on `events`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from libs.janus.errors import JanusError, JanusSessionLostError, JanusTimeoutError

VIDEOROOM_PLUGIN: Final = "janus.plugin.videoroom"
JsonObject = dict[str, Any]


@dataclass(frozen=True)
class JanusMessage:
    """One message from the long poll: `janus` kind, sending handle, transaction, plugin data, jsep."""

    janus: str
    sender: int | None
    transaction: str | None
    data: JsonObject
    jsep: JsonObject | None
    raw: JsonObject


@dataclass(frozen=True)
class StreamInfo:
    """A stream of a publisher (or of a subscription): type, mid and codec as Janus reports them."""

    type: str
    mid: str
    mindex: int | None = None
    codec: str | None = None
    feed_id: str | None = None  # subscriptions: the publisher the stream comes from
    feed_mid: str | None = None


@dataclass(frozen=True)
class Joined:
    participant_id: str
    private_id: int | None
    publishers: tuple[JsonObject, ...]


@dataclass(frozen=True)
class Published:
    answer_sdp: str
    streams: tuple[StreamInfo, ...]


@dataclass(frozen=True)
class SubscribeStream:
    """What a subscriber asks for: a publisher (`feed`) and optionally one of its mids (else all)."""

    feed: str
    mid: str | None = None


@dataclass(frozen=True)
class Subscription:
    offer_sdp: str
    streams: tuple[StreamInfo, ...]


@dataclass(frozen=True)
class SubscriptionUpdate:
    """The answer to a subscriber `update`: Janus's new offer (None when nothing needs renegotiating)
    and every stream of the subscription afterwards (removed ones stay as inactive m-lines)."""

    offer_sdp: str | None
    streams: tuple[StreamInfo, ...]


@dataclass(frozen=True)
class StreamToggle:
    """Turn sending of one subscription stream (our side's `mid`) on or off, e.g. for subscribe rules."""

    mid: str
    send: bool


def opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def opt_str(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def streams_of(value: object) -> tuple[StreamInfo, ...]:
    if not isinstance(value, list):
        return ()
    found: list[StreamInfo] = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        stream_type, mid = opt_str(item.get("type")), opt_str(item.get("mid"))
        if stream_type is None or mid is None:
            continue
        found.append(
            StreamInfo(
                type=stream_type,
                mid=mid,
                mindex=opt_int(item.get("mindex")),
                codec=opt_str(item.get("codec")),
                feed_id=opt_str(item.get("feed_id")),
                feed_mid=opt_str(item.get("feed_mid")),
            )
        )
    return tuple(found)


def plugin_data(message: Mapping[str, Any]) -> JsonObject:
    plugindata = message.get("plugindata")
    if isinstance(plugindata, Mapping):
        data = plugindata.get("data")
        if isinstance(data, dict):
            return data
    return {}


def raise_for_plugin_error(data: Mapping[str, Any]) -> None:
    if "error_code" in data or "error" in data:
        code = opt_int(data.get("error_code")) or 0
        raise JanusError(code, str(data.get("error", "unknown VideoRoom error")))


def message_from(raw: JsonObject) -> JanusMessage:
    jsep = raw.get("jsep")
    return JanusMessage(
        janus=str(raw.get("janus", "")),
        sender=opt_int(raw.get("sender")),
        transaction=opt_str(raw.get("transaction")),
        data=plugin_data(raw),
        jsep=jsep if isinstance(jsep, dict) else None,
        raw=raw,
    )


class HandleTransport(Protocol):
    """What a handle needs from the client that owns its session."""

    async def plugin_request(self, handle: PluginHandle, body: JsonObject) -> JsonObject: ...

    async def plugin_message(
        self, handle: PluginHandle, body: JsonObject, jsep: JsonObject | None, *, wait: float | None
    ) -> tuple[JsonObject, JsonObject | None]: ...

    async def handle_call(self, handle: PluginHandle, body: JsonObject) -> JsonObject: ...

    def forget(self, handle: PluginHandle) -> None: ...


class PluginHandle:
    """One attached VideoRoom handle. `events` receives the handle's unsolicited messages."""

    EVENT_BACKLOG: Final = 256

    def __init__(self, client: HandleTransport, handle_id: int, session_id: int) -> None:
        self.client = client
        self.handle_id = handle_id
        self.session_id = session_id
        self.events: asyncio.Queue[JanusMessage] = asyncio.Queue(maxsize=self.EVENT_BACKLOG)
        self.lost = False

    def deliver(self, message: JanusMessage) -> None:
        """Queue an unsolicited event (called by the client's long poll)."""
        if self.events.full():
            # Nobody is reading: keep the newest events, which describe the current state.
            self.events.get_nowait()
        self.events.put_nowait(message)

    async def request(self, body: JsonObject) -> JsonObject:
        """A synchronous plugin request; returns the plugin data or raises `JanusError`."""
        self._check()
        return await self.client.plugin_request(self, body)

    async def message(
        self, body: JsonObject, jsep: JsonObject | None = None, *, wait: float | None = None
    ) -> tuple[JsonObject, JsonObject | None]:
        """An asynchronous plugin request (ack, then an event with the same transaction)."""
        self._check()
        return await self.client.plugin_message(self, body, jsep, wait=wait)

    async def trickle(self, candidates: Sequence[JsonObject], *, completed: bool = False) -> None:
        """Forward trickled ICE candidates (`{"candidate","sdpMid","sdpMLineIndex"}`) to Janus."""
        self._check()
        body: JsonObject = {"janus": "trickle"}
        if candidates:
            body["candidates"] = [*candidates, {"completed": True}] if completed else list(candidates)
        elif completed:
            body["candidate"] = {"completed": True}
        else:
            return
        await self.client.handle_call(self, body)

    async def wait_event(
        self, predicate: Callable[[JanusMessage], bool], *, wait: float = 10.0
    ) -> JanusMessage:
        """The next queued event satisfying `predicate` (others are consumed). Raises JanusTimeoutError."""
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JanusTimeoutError("no matching Janus event in time")
            try:
                message = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                raise JanusTimeoutError("no matching Janus event in time") from None
            if predicate(message):
                return message

    async def hangup(self) -> None:
        """Close the handle's PeerConnection (the handle stays attached)."""
        if not self.lost:
            await self.client.handle_call(self, {"janus": "hangup"})

    async def detach(self) -> None:
        """Detach the handle; a lost handle needs nothing."""
        if self.lost:
            return
        try:
            await self.client.handle_call(self, {"janus": "detach"})
        finally:
            self.lost = True
            self.client.forget(self)

    def _check(self) -> None:
        if self.lost:
            raise JanusSessionLostError("this Janus handle belongs to a lost session")


class PublisherHandle(PluginHandle):
    """A WHIP publisher: join as publisher, publish an offer, get Janus's answer."""

    participant_id: str | None = None
    room: str | None = None

    async def join(
        self, room: str, *, participant_id: str | None = None, display: str | None = None
    ) -> Joined:
        """Join `room` as a publisher with our id (a PA SID with string_ids)."""
        body: JsonObject = {"request": "join", "ptype": "publisher", "room": room}
        if participant_id is not None:
            body["id"] = participant_id
        if display is not None:
            body["display"] = display
        data, _ = await self.message(body)
        joined_id = opt_str(data.get("id"))
        if data.get("videoroom") != "joined" or joined_id is None:
            raise JanusError(0, "unexpected answer to join")
        self.participant_id, self.room = joined_id, room
        publishers = data.get("publishers")
        return Joined(
            participant_id=joined_id,
            private_id=opt_int(data.get("private_id")),
            publishers=tuple(p for p in publishers if isinstance(p, dict))
            if isinstance(publishers, list)
            else (),
        )

    async def publish(
        self,
        offer_sdp: str,
        *,
        display: str | None = None,
        bitrate: int | None = None,
        descriptions: Sequence[tuple[str, str]] = (),
        wait: float | None = None,
    ) -> Published:
        """Publish with the client's SDP offer; returns Janus's answer and the published streams.
        `descriptions` are (mid, text) pairs Janus shows to subscribers (we use the track names)."""
        body: JsonObject = {"request": "publish"}
        if display is not None:
            body["display"] = display
        if bitrate is not None:
            body["bitrate"] = bitrate
        if descriptions:
            body["descriptions"] = [{"mid": mid, "description": text} for mid, text in descriptions]
        data, jsep = await self.message(body, {"type": "offer", "sdp": offer_sdp}, wait=wait)
        if jsep is None or jsep.get("type") != "answer" or not isinstance(jsep.get("sdp"), str):
            raise JanusError(0, "Janus returned no SDP answer to publish")
        return Published(answer_sdp=jsep["sdp"], streams=streams_of(data.get("streams")))

    async def configure(
        self, *, keyframe: bool | None = None, bitrate: int | None = None, streams: Sequence[JsonObject] = ()
    ) -> JsonObject:
        """Publisher `configure`: e.g. `keyframe=True` asks the publisher for a keyframe (PLI)."""
        body: JsonObject = {"request": "configure"}
        if keyframe is not None:
            body["keyframe"] = keyframe
        if bitrate is not None:
            body["bitrate"] = bitrate
        if streams:
            body["streams"] = list(streams)
        data, _ = await self.message(body)
        return data

    async def unpublish(self) -> None:
        await self.message({"request": "unpublish"})

    async def leave(self) -> None:
        await self.message({"request": "leave"})


class SubscriberHandle(PluginHandle):
    """A WHEP viewer. Janus makes the offer: `join` returns it, `start` takes the client's answer."""

    async def join(
        self,
        room: str,
        streams: Sequence[SubscribeStream],
        *,
        private_id: int | None = None,
        use_msid: bool = True,
        wait: float | None = None,
    ) -> Subscription:
        """Subscribe to `streams` of `room`; returns Janus's SDP offer (candidates included)."""
        wanted: list[JsonObject] = []
        for stream in streams:
            item: JsonObject = {"feed": stream.feed}
            if stream.mid is not None:
                item["mid"] = stream.mid
            wanted.append(item)
        body: JsonObject = {
            "request": "join",
            "ptype": "subscriber",
            "room": room,
            "streams": wanted,
            "use_msid": use_msid,
        }
        if private_id is not None:
            body["private_id"] = private_id
        data, jsep = await self.message(body, wait=wait)
        if jsep is None or jsep.get("type") != "offer" or not isinstance(jsep.get("sdp"), str):
            raise JanusError(0, "Janus returned no SDP offer to the subscription")
        return Subscription(offer_sdp=jsep["sdp"], streams=streams_of(data.get("streams")))

    async def update(
        self,
        subscribe: Sequence[SubscribeStream] = (),
        unsubscribe_mids: Sequence[str] = (),
        *,
        wait: float | None = None,
    ) -> SubscriptionUpdate:
        """Add streams to the subscription and remove streams (by our side's `mid`) in one step.
        Janus answers with a new SDP offer for the same PeerConnection, which the client answers
        through `start`. Existing streams keep flowing; removed ones become inactive m-lines."""
        body: JsonObject = {"request": "update"}
        if subscribe:
            body["subscribe"] = [
                {"feed": s.feed, "mid": s.mid} if s.mid is not None else {"feed": s.feed} for s in subscribe
            ]
        if unsubscribe_mids:
            body["unsubscribe"] = [{"sub_mid": mid} for mid in unsubscribe_mids]
        data, jsep = await self.message(body, wait=wait)
        offer: str | None = None
        if jsep is not None and jsep.get("type") == "offer" and isinstance(jsep.get("sdp"), str):
            offer = jsep["sdp"]
        return SubscriptionUpdate(offer_sdp=offer, streams=streams_of(data.get("streams")))

    async def start(self, answer_sdp: str) -> None:
        """Complete the negotiation (the first one or an `update`) with the client's SDP answer."""
        await self.message({"request": "start"}, {"type": "answer", "sdp": answer_sdp})

    async def configure(self, toggles: Sequence[StreamToggle]) -> None:
        """Pause or resume individual streams without renegotiation (subscribe rules)."""
        await self.message(
            {"request": "configure", "streams": [{"mid": t.mid, "send": t.send} for t in toggles]}
        )

    async def pause(self) -> None:
        await self.message({"request": "pause"})

    async def leave(self) -> None:
        await self.message({"request": "leave"})
