"""Typed events from Janus's sample event handler (`sampleevh`), as POSTed to the room service.

The body is one JSON object or an array of them (handler `grouping = true`). Only what the room
service acts on becomes a typed event; everything else (ICE details, stats, core info) is dropped.
VideoRoom events are keyed by room + participant id: `unpublished`, `leaving` and the rtp_forward
events carry no session/handle id. With `string_ids = true` both ids are strings (our RM/PA SIDs);
numeric ids are normalized to strings too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

VIDEOROOM: Final = "janus.plugin.videoroom"
TYPE_SESSION: Final = 1
TYPE_HANDLE: Final = 2
TYPE_WEBRTC: Final = 16
TYPE_MEDIA: Final = 32
TYPE_PLUGIN: Final = 64


class JanusEventFormatError(ValueError):
    """The POSTed body is not a JSON object or array of objects."""


@dataclass(frozen=True)
class EventMeta:
    """Common fields: when (Janus wallclock), which Janus, which session/handle (when given)."""

    at: datetime
    emitter: str | None
    session_id: int | None
    handle_id: int | None


@dataclass(frozen=True)
class PublishedStream:
    type: str  # audio | video | data
    mid: str
    mindex: int | None
    codec: str | None


@dataclass(frozen=True)
class ParticipantJoined:
    meta: EventMeta
    room: str
    participant_id: str
    display: str | None


@dataclass(frozen=True)
class StreamsPublished:
    meta: EventMeta
    room: str
    participant_id: str
    streams: tuple[PublishedStream, ...]


@dataclass(frozen=True)
class PublisherConfigured:
    meta: EventMeta
    room: str
    participant_id: str


@dataclass(frozen=True)
class StreamsUnpublished:
    meta: EventMeta
    room: str
    participant_id: str


@dataclass(frozen=True)
class ParticipantLeft:
    """`leaving` (explicit leave, hangup or session timeout) or `kicked`."""

    meta: EventMeta
    room: str
    participant_id: str
    kicked: bool = False


@dataclass(frozen=True)
class RtpForwardStarted:
    meta: EventMeta
    room: str
    publisher_id: str
    stream_id: int | None
    media: str | None
    host: str | None
    port: int | None


@dataclass(frozen=True)
class RtpForwardStopped:
    meta: EventMeta
    room: str
    publisher_id: str
    stream_id: int | None


@dataclass(frozen=True)
class RoomDestroyed:
    meta: EventMeta
    room: str


@dataclass(frozen=True)
class WebrtcUp:
    meta: EventMeta


@dataclass(frozen=True)
class HungUp:
    meta: EventMeta
    reason: str | None


@dataclass(frozen=True)
class MediaReceiving:
    """Janus started or stopped receiving media on one mid of a handle's PeerConnection."""

    meta: EventMeta
    media: str
    mid: str | None
    receiving: bool


@dataclass(frozen=True)
class SessionEnded:
    meta: EventMeta
    reason: Literal["timeout", "destroyed"]


JanusEvent = (
    ParticipantJoined
    | StreamsPublished
    | PublisherConfigured
    | StreamsUnpublished
    | ParticipantLeft
    | RtpForwardStarted
    | RtpForwardStopped
    | RoomDestroyed
    | WebrtcUp
    | HungUp
    | MediaReceiving
    | SessionEnded
)


def parse_events(payload: object) -> list[JanusEvent]:
    """Typed events from a decoded POST body (object or array). Unknown events are skipped.

    Raises `JanusEventFormatError` when the body is neither an object nor an array of objects.
    """
    items = payload if isinstance(payload, list) else [payload]
    events: list[JanusEvent] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise JanusEventFormatError("each Janus event must be a JSON object")
        event = parse_event(item)
        if event is not None:
            events.append(event)
    return events


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _id(value: object) -> str | None:
    """Room/participant ids: strings with string_ids, numbers otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value)
        return text or None
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _meta(item: Mapping[str, object]) -> EventMeta:
    micros = _int(item.get("timestamp")) or 0
    return EventMeta(
        at=datetime.fromtimestamp(micros / 1_000_000, tz=UTC),
        emitter=_str(item.get("emitter")),
        session_id=_int(item.get("session_id")),
        handle_id=_int(item.get("handle_id")),
    )


def parse_event(item: Mapping[str, object]) -> JanusEvent | None:
    """One typed event, or None for events the room service does not use."""
    body = item.get("event")
    if not isinstance(body, Mapping):
        return None
    kind = _int(item.get("type"))
    meta = _meta(item)
    if kind == TYPE_PLUGIN:
        data = body.get("data")
        if body.get("plugin") != VIDEOROOM or not isinstance(data, Mapping):
            return None
        return _videoroom(meta, data)
    if kind == TYPE_WEBRTC:
        connection = body.get("connection")
        if connection == "webrtcup":
            return WebrtcUp(meta)
        if connection == "hangup":
            return HungUp(meta, _str(body.get("reason")))
        return None
    if kind == TYPE_MEDIA:
        receiving = body.get("receiving")
        media = _str(body.get("media"))
        if isinstance(receiving, bool) and media is not None:
            return MediaReceiving(meta, media, _id(body.get("mid")), receiving)
        return None
    if kind == TYPE_SESSION:
        name = body.get("name")
        if name == "timeout":
            return SessionEnded(meta, "timeout")
        if name == "destroyed":
            return SessionEnded(meta, "destroyed")
    return None


def _streams(value: object) -> tuple[PublishedStream, ...]:
    if not isinstance(value, list):
        return ()
    streams: list[PublishedStream] = []
    for entry in value:
        if not isinstance(entry, Mapping):
            continue
        stream_type, mid = _str(entry.get("type")), _id(entry.get("mid"))
        if stream_type is None or mid is None:
            continue
        streams.append(PublishedStream(stream_type, mid, _int(entry.get("mindex")), _str(entry.get("codec"))))
    return tuple(streams)


def _videoroom(meta: EventMeta, data: Mapping[str, object]) -> JanusEvent | None:
    name = data.get("event")
    room = _id(data.get("room"))
    if room is None:
        return None
    if name == "destroyed":
        return RoomDestroyed(meta, room)
    if name in ("rtp_forward", "stop_rtp_forward"):
        publisher = _id(data.get("publisher_id"))
        if publisher is None:
            return None
        stream_id = _int(data.get("stream_id"))
        if name == "stop_rtp_forward":
            return RtpForwardStopped(meta, room, publisher, stream_id)
        return RtpForwardStarted(
            meta,
            room,
            publisher,
            stream_id,
            # Janus 1.1 names the stream kind "type" here ("media" in older releases).
            _str(data.get("type")) or _str(data.get("media")),
            _str(data.get("host")),
            _int(data.get("port")),
        )
    participant = _id(data.get("id"))
    if participant is None:
        return None
    if name == "joined":
        return ParticipantJoined(meta, room, participant, _str(data.get("display")))
    if name == "published":
        return StreamsPublished(meta, room, participant, _streams(data.get("streams")))
    if name == "configured":
        return PublisherConfigured(meta, room, participant)
    if name == "unpublished":
        return StreamsUnpublished(meta, room, participant)
    if name == "leaving":
        return ParticipantLeft(meta, room, participant)
    if name == "kicked":
        return ParticipantLeft(meta, room, participant, kicked=True)
    return None
