"""Janus sample event handler payloads into typed events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.janus.events import (
    EventMeta,
    HungUp,
    JanusEventFormatError,
    MediaReceiving,
    ParticipantJoined,
    ParticipantLeft,
    PublishedStream,
    PublisherConfigured,
    RoomDestroyed,
    RtpForwardStarted,
    RtpForwardStopped,
    SessionEnded,
    StreamsPublished,
    StreamsUnpublished,
    WebrtcUp,
    parse_events,
)

ROOM = "RM" + "0" * 32
PA = "PA" + "1" * 32
TS = 1_795_269_078_924_064
AT = datetime.fromtimestamp(TS / 1_000_000, tz=UTC)
WITH_HANDLE = EventMeta(AT, "mixdown-janus", 11, 22)
NO_HANDLE = EventMeta(AT, "mixdown-janus", None, None)


def plugin(data: dict[str, object], *, handle: bool = True) -> dict[str, object]:
    event: dict[str, object] = {
        "emitter": "mixdown-janus",
        "type": 64,
        "timestamp": TS,
        "event": {"plugin": "janus.plugin.videoroom", "data": data},
    }
    if handle:
        event |= {"session_id": 11, "handle_id": 22}
    return event


def core(kind: int, body: dict[str, object], subtype: int | None = None) -> dict[str, object]:
    event: dict[str, object] = {
        "emitter": "mixdown-janus",
        "type": kind,
        "timestamp": TS,
        "session_id": 11,
        "handle_id": 22,
        "event": body,
    }
    if subtype is not None:
        event["subtype"] = subtype
    return event


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            plugin({"event": "joined", "room": ROOM, "id": PA, "private_id": 5, "display": "alice"}),
            ParticipantJoined(WITH_HANDLE, ROOM, PA, "alice"),
        ),
        (
            plugin({"event": "joined", "room": 4242, "id": 3151689693116355, "display": "alice"}),
            ParticipantJoined(WITH_HANDLE, "4242", "3151689693116355", "alice"),
        ),
        (
            plugin(
                {
                    "event": "published",
                    "room": ROOM,
                    "id": PA,
                    "display": "alice",
                    "streams": [
                        {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"},
                        {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"},
                        {"type": "video"},
                    ],
                }
            ),
            StreamsPublished(
                WITH_HANDLE,
                ROOM,
                PA,
                (PublishedStream("audio", "0", 0, "opus"), PublishedStream("video", "1", 1, "vp8")),
            ),
        ),
        (
            plugin({"event": "configured", "room": ROOM, "id": PA, "bitrate": 1_000_000}),
            PublisherConfigured(WITH_HANDLE, ROOM, PA),
        ),
        (
            plugin({"event": "unpublished", "room": ROOM, "id": PA}, handle=False),
            StreamsUnpublished(NO_HANDLE, ROOM, PA),
        ),
        (
            plugin({"event": "leaving", "room": ROOM, "id": PA}, handle=False),
            ParticipantLeft(NO_HANDLE, ROOM, PA),
        ),
        (
            plugin({"event": "kicked", "room": ROOM, "id": PA}, handle=False),
            ParticipantLeft(NO_HANDLE, ROOM, PA, kicked=True),
        ),
        (
            plugin(
                {
                    "event": "rtp_forward",
                    "room": ROOM,
                    "publisher_id": PA,
                    "type": "video",
                    "stream_id": 7,
                    "host": "10.77.0.254",
                    "port": 20000,
                },
                handle=False,
            ),
            RtpForwardStarted(NO_HANDLE, ROOM, PA, 7, "video", "10.77.0.254", 20000),
        ),
        (
            plugin(
                {"event": "rtp_forward", "room": ROOM, "publisher_id": PA, "media": "audio"}, handle=False
            ),
            RtpForwardStarted(NO_HANDLE, ROOM, PA, None, "audio", None, None),
        ),
        (
            plugin(
                {"event": "stop_rtp_forward", "room": ROOM, "publisher_id": PA, "stream_id": 7}, handle=False
            ),
            RtpForwardStopped(NO_HANDLE, ROOM, PA, 7),
        ),
        (plugin({"event": "destroyed", "room": ROOM}, handle=False), RoomDestroyed(NO_HANDLE, ROOM)),
        (core(16, {"connection": "webrtcup"}, 6), WebrtcUp(WITH_HANDLE)),
        (core(16, {"connection": "hangup", "reason": "DTLS alert"}, 6), HungUp(WITH_HANDLE, "DTLS alert")),
        (
            core(32, {"media": "video", "mid": "1", "receiving": False}, 1),
            MediaReceiving(WITH_HANDLE, "video", "1", False),
        ),
        (core(1, {"name": "timeout"}), SessionEnded(WITH_HANDLE, "timeout")),
        (core(1, {"name": "destroyed"}), SessionEnded(WITH_HANDLE, "destroyed")),
    ],
)
def test_known_events(payload: dict[str, object], expected: object) -> None:
    assert parse_events(payload) == [expected]


@pytest.mark.parametrize(
    "payload",
    [
        core(1, {"name": "created"}),
        core(2, {"name": "attached", "plugin": "janus.plugin.videoroom"}),
        core(16, {"ice": "connected"}, 1),
        core(32, {"mid": "1", "media": "video", "codec": "vp8", "packets-received": 35}, 3),
        core(256, {"status": "started", "info": {}}),
        plugin({"event": "joined", "id": PA}),
        plugin({"event": "leaving", "room": ROOM}),
        plugin({"event": "rtp_forward", "room": ROOM}),
        plugin({"event": "something-new", "room": ROOM, "id": PA}),
        {"type": 64, "event": {"plugin": "janus.plugin.echotest", "data": {"event": "x"}}},
        {"type": 64},
    ],
)
def test_unused_events_are_skipped(payload: dict[str, object]) -> None:
    assert parse_events(payload) == []


def test_grouped_array() -> None:
    events = parse_events(
        [
            plugin({"event": "unpublished", "room": ROOM, "id": PA}, handle=False),
            core(256, {"status": "started"}),
            plugin({"event": "leaving", "room": ROOM, "id": PA}, handle=False),
        ]
    )
    assert [type(e) for e in events] == [StreamsUnpublished, ParticipantLeft]


@pytest.mark.parametrize("payload", ["text", 5, None, [1, 2], [{"type": 64}, "x"]])
def test_malformed_bodies(payload: object) -> None:
    with pytest.raises(JanusEventFormatError):
        parse_events(payload)
