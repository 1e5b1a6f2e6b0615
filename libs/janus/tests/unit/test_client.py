"""JanusClient against an in-memory fake of Janus's HTTP API (httpx MockTransport)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from libs.janus.client import ForwardStream, JanusClient, StreamToggle, SubscribeStream
from libs.janus.errors import JanusError, JanusSessionLostError, JanusTimeoutError

BASE = "http://janus.test/janus"
SYNC = {
    "create",
    "destroy",
    "exists",
    "listparticipants",
    "kick",
    "rtp_forward",
    "stop_rtp_forward",
    "listforwarders",
}


class FakeJanus:
    """Sessions, handles, sync answers and async events delivered through the long poll."""

    def __init__(self) -> None:
        self.ids = itertools.count(1000)
        self.sessions: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self.handles: dict[int, int] = {}
        self.rooms: dict[str, str] = {}
        self.bodies: list[dict[str, Any]] = []
        self.swallow_async = False
        self.failing_polls = 0
        self.polls = 0

    def kill_session(self, session: int) -> None:
        del self.sessions[session]

    def push(self, session: int, event: dict[str, Any]) -> None:
        self.sessions[session].put_nowait(event)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/janus").strip("/").split("/")
        ids = [int(p) for p in parts if p]
        if request.method == "GET":
            self.polls += 1
            if self.failing_polls > 0:
                self.failing_polls -= 1
                raise httpx.ConnectError("connection refused", request=request)
            return await self._poll(ids[0])
        body = json.loads(request.content)
        tx = body["transaction"]
        if ids and ids[0] not in self.sessions:
            return self._json(
                {"janus": "error", "transaction": tx, "error": {"code": 458, "reason": "No such session"}}
            )
        kind = body["janus"]
        if not ids and kind == "create":
            session = next(self.ids)
            self.sessions[session] = asyncio.Queue()
            return self._json({"janus": "success", "transaction": tx, "data": {"id": session}})
        session = ids[0]
        if len(ids) == 1:
            if kind == "attach":
                handle = next(self.ids)
                self.handles[handle] = session
                return self._json({"janus": "success", "transaction": tx, "data": {"id": handle}})
            if kind == "destroy":
                del self.sessions[session]
            return self._json({"janus": "success" if kind == "destroy" else "ack", "transaction": tx})
        handle = ids[1]
        if kind in ("hangup", "detach"):
            return self._json({"janus": "success", "transaction": tx})
        if kind == "trickle":
            self.bodies.append(body)
            return self._json({"janus": "ack", "transaction": tx})
        plugin_body = body["body"]
        self.bodies.append(body)
        if plugin_body["request"] in SYNC:
            data = self._sync(plugin_body)
            return self._json(
                {
                    "janus": "success",
                    "transaction": tx,
                    "sender": handle,
                    "plugindata": {"plugin": "janus.plugin.videoroom", "data": data},
                }
            )
        if not self.swallow_async:
            data, jsep = self._async(plugin_body, body.get("jsep"))
            event: dict[str, Any] = {
                "janus": "event",
                "session_id": session,
                "sender": handle,
                "transaction": tx,
                "plugindata": {"plugin": "janus.plugin.videoroom", "data": data},
            }
            if jsep is not None:
                event["jsep"] = jsep
            self.push(session, event)
        return self._json({"janus": "ack", "session_id": session, "transaction": tx})

    def _sync(self, body: dict[str, Any]) -> dict[str, Any]:
        request, room = str(body["request"]), str(body.get("room"))
        if request == "create":
            if room in self.rooms:
                return {"videoroom": "event", "error_code": 427, "error": "Room already exists"}
            self.rooms[room] = body["secret"]
            return {"videoroom": "created", "room": room, "permanent": False}
        if request == "exists":
            return {"videoroom": "success", "room": room, "exists": room in self.rooms}
        if room not in self.rooms:
            return {"videoroom": "event", "error_code": 426, "error": "No such room"}
        if request == "destroy":
            del self.rooms[room]
            return {"videoroom": "destroyed", "room": room}
        if request == "listparticipants":
            return {
                "videoroom": "participants",
                "room": room,
                "participants": [{"id": "PA1", "display": "alice", "publisher": True}],
            }
        if request == "rtp_forward":
            return {
                "videoroom": "rtp_forward",
                "room": room,
                "publisher_id": body["publisher_id"],
                "forwarders": [
                    {
                        "stream_id": 7,
                        "host": body["host"],
                        "port": s["port"],
                        "type": "video",
                        "local_rtcp_port": 5555,
                        "remote_rtcp_port": s.get("rtcp_port"),
                    }
                    for s in body["streams"]
                ],
            }
        if request == "listforwarders":
            return {
                "videoroom": "forwarders",
                "room": room,
                "publishers": [
                    {
                        "publisher_id": "PA1",
                        "forwarders": [
                            {"stream_id": 7, "host": "10.77.0.254", "port": 20000, "type": "audio"}
                        ],
                    }
                ],
            }
        return {"videoroom": "success", "room": room}

    def _async(
        self, body: dict[str, Any], jsep: dict[str, Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        request = body["request"]
        if request == "join" and body["ptype"] == "publisher":
            if body["room"] not in self.rooms:
                return {"videoroom": "event", "error_code": 426, "error": "No such room"}, None
            return {
                "videoroom": "joined",
                "room": body["room"],
                "id": body.get("id", "generated"),
                "private_id": 42,
                "publishers": [],
            }, None
        if request == "publish":
            assert jsep is not None
            streams = [
                {"type": "audio", "mindex": 0, "mid": "0", "codec": "opus"},
                {"type": "video", "mindex": 1, "mid": "1", "codec": "vp8"},
            ]
            return {"videoroom": "event", "configured": "ok", "streams": streams}, {
                "type": "answer",
                "sdp": "v=0 answer",
            }
        if request == "join":
            streams = [
                {"type": "video", "mid": "0", "feed_id": s["feed"], "feed_mid": s.get("mid", "1")}
                for s in body["streams"]
            ]
            return {"videoroom": "attached", "room": body["room"], "streams": streams}, {
                "type": "offer",
                "sdp": "v=0 offer",
            }
        if request == "update":
            # Janus keeps removed streams as inactive m-lines (no feed) and offers again.
            subscribe, unsubscribe = body.get("subscribe", []), body.get("unsubscribe", [])
            if not subscribe and not unsubscribe:
                return {
                    "videoroom": "event",
                    "error_code": 429,
                    "error": "Missing subscribe/unsubscribe",
                }, None
            gone = {u["sub_mid"] for u in unsubscribe}
            streams = [{"type": "video", "mid": "0", "feed_id": "PA1", "feed_mid": "1"}]
            streams = [s if s["mid"] not in gone else {"type": "video", "mid": s["mid"]} for s in streams]
            streams += [
                {"type": "video", "mid": str(1 + n), "feed_id": s["feed"], "feed_mid": s.get("mid", "1")}
                for n, s in enumerate(subscribe)
            ]
            return {"videoroom": "updated", "room": "RM3", "streams": streams}, {
                "type": "offer",
                "sdp": "v=0 re",
            }
        return {"videoroom": "event", request: "ok"}, None

    async def _poll(self, session: int) -> httpx.Response:
        queue = self.sessions.get(session)
        if queue is None:
            return self._json({"janus": "error", "error": {"code": 458, "reason": "No such session"}})
        try:
            first = await asyncio.wait_for(queue.get(), 0.2)
        except TimeoutError:
            return self._json({"janus": "keepalive"})
        events = [first]
        while not queue.empty():
            events.append(queue.get_nowait())
        return self._json(events)

    @staticmethod
    def _json(payload: object) -> httpx.Response:
        return httpx.Response(200, json=payload)


@pytest.fixture
def fake() -> FakeJanus:
    return FakeJanus()


@pytest.fixture
async def client(fake: FakeJanus) -> AsyncIterator[JanusClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    async with JanusClient(
        BASE, admin_key="adminkey", http=http, request_timeout=1.0, poll_wait=0.2
    ) as janus:
        yield janus
    await http.aclose()


async def test_room_requests(client: JanusClient, fake: FakeJanus) -> None:
    assert not await client.exists("RM1")
    await client.create_room("RM1", publishers=50, videocodec="vp8,h264", secret="s3cret")
    assert await client.exists("RM1")
    create = fake.bodies[1]["body"]
    assert create["admin_key"] == "adminkey"
    assert (create["secret"], create["publishers"], create["videocodec"], create["permanent"]) == (
        "s3cret",
        50,
        "vp8,h264",
        False,
    )
    with pytest.raises(JanusError) as caught:
        await client.create_room("RM1", publishers=50, secret="s3cret")
    assert caught.value.code == 427
    participants = await client.list_participants("RM1")
    assert [(p.id, p.display, p.publisher) for p in participants] == [("PA1", "alice", True)]
    forwarders = await client.rtp_forward(
        "RM1",
        "PA1",
        "10.77.0.254",
        [ForwardStream("1", 20000, 20001), ForwardStream("0", 20002)],
        secret="s3cret",
    )
    assert [(f.port, f.remote_rtcp_port, f.local_rtcp_port) for f in forwarders] == [
        (20000, 20001, 5555),
        (20002, None, 5555),
    ]
    forward = fake.bodies[-1]["body"]
    assert forward["streams"] == [
        {"mid": "1", "port": 20000, "rtcp_port": 20001},
        {"mid": "0", "port": 20002},
    ]
    assert (forward["admin_key"], forward["host_family"]) == ("adminkey", "ipv4")
    listed = await client.list_forwarders("RM1", secret="s3cret")
    assert [(f.stream_id, f.port) for f in listed["PA1"]] == [(7, 20000)]
    await client.stop_rtp_forward("RM1", "PA1", 7, secret="s3cret")
    await client.kick("RM1", "PA1", secret="s3cret")
    await client.destroy_room("RM1", secret="s3cret")
    with pytest.raises(JanusError) as caught:
        await client.destroy_room("RM1", secret="s3cret")
    assert (caught.value.code, caught.value.reason) == (426, "No such room")


async def test_publisher_flow_through_long_poll(client: JanusClient, fake: FakeJanus) -> None:
    await client.create_room("RM2", publishers=5, secret="x")
    publisher = await client.publisher()
    joined = await publisher.join("RM2", participant_id="PA9", display="alice")
    assert (joined.participant_id, joined.private_id) == ("PA9", 42)
    published = await publisher.publish("v=0 offer", descriptions=[("0", "mic")])
    assert published.answer_sdp == "v=0 answer"
    assert [(s.type, s.mid, s.codec) for s in published.streams] == [
        ("audio", "0", "opus"),
        ("video", "1", "vp8"),
    ]
    publish_body = fake.bodies[-1]
    assert publish_body["jsep"] == {"type": "offer", "sdp": "v=0 offer"}
    assert publish_body["body"]["descriptions"] == [{"mid": "0", "description": "mic"}]
    await publisher.configure(keyframe=True)
    assert fake.bodies[-1]["body"] == {"request": "configure", "keyframe": True}
    # Unsolicited events land on the handle's queue.
    assert client.session_id is not None
    fake.push(
        client.session_id,
        {"janus": "webrtcup", "session_id": client.session_id, "sender": publisher.handle_id},
    )
    event = await publisher.wait_event(lambda m: m.janus == "webrtcup", wait=2.0)
    assert event.sender == publisher.handle_id
    await publisher.trickle(
        [{"candidate": "candidate:1 1 udp 1 10.77.0.2 5000 typ host", "sdpMid": "0"}], completed=True
    )
    assert fake.bodies[-1]["candidates"][-1] == {"completed": True}
    await publisher.unpublish()
    await publisher.leave()
    await publisher.detach()
    with pytest.raises(JanusSessionLostError):
        await publisher.leave()


async def test_subscriber_flow(client: JanusClient, fake: FakeJanus) -> None:
    await client.create_room("RM3", publishers=5, secret="x")
    subscriber = await client.subscriber()
    subscription = await subscriber.join("RM3", [SubscribeStream("PA1"), SubscribeStream("PA2", "1")])
    assert subscription.offer_sdp == "v=0 offer"
    assert [(s.feed_id, s.feed_mid) for s in subscription.streams] == [("PA1", "1"), ("PA2", "1")]
    assert fake.bodies[-1]["body"]["streams"] == [{"feed": "PA1"}, {"feed": "PA2", "mid": "1"}]
    await subscriber.start("v=0 answer")
    assert fake.bodies[-1]["jsep"] == {"type": "answer", "sdp": "v=0 answer"}
    await subscriber.configure([StreamToggle("0", False)])
    assert fake.bodies[-1]["body"] == {"request": "configure", "streams": [{"mid": "0", "send": False}]}


async def test_subscriber_update_renegotiates_the_same_handle(client: JanusClient, fake: FakeJanus) -> None:
    await client.create_room("RM3", publishers=5, secret="x")
    subscriber = await client.subscriber()
    await subscriber.join("RM3", [SubscribeStream("PA1", "1")])
    update = await subscriber.update([SubscribeStream("PA2", "1"), SubscribeStream("PA3")], ["0"])
    assert fake.bodies[-1]["body"] == {
        "request": "update",
        "subscribe": [{"feed": "PA2", "mid": "1"}, {"feed": "PA3"}],
        "unsubscribe": [{"sub_mid": "0"}],
    }
    assert update.offer_sdp == "v=0 re"
    assert [(s.mid, s.feed_id) for s in update.streams] == [("0", None), ("1", "PA2"), ("2", "PA3")]
    with pytest.raises(JanusError) as caught:
        await subscriber.update()
    assert caught.value.code == 429


async def test_async_plugin_error_and_timeout(client: JanusClient, fake: FakeJanus) -> None:
    publisher = await client.publisher()
    with pytest.raises(JanusError) as caught:
        await publisher.join("RM-missing", participant_id="PA1")
    assert caught.value.code == 426
    fake.swallow_async = True
    with pytest.raises(JanusTimeoutError):
        await publisher.configure(keyframe=True)


async def test_session_loss_recovers_and_reports(fake: FakeJanus) -> None:
    lost: list[int] = []

    async def on_lost(session: int) -> None:
        lost.append(session)

    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    async with JanusClient(
        BASE, admin_key="k", http=http, request_timeout=1.0, poll_wait=0.2, on_session_lost=on_lost
    ) as janus:
        first = janus.session_id
        assert first is not None
        publisher = await janus.publisher()
        fake.kill_session(first)
        # The admin request is retried on the new session transparently.
        await janus.create_room("RM4", publishers=1, secret="x")
        assert janus.session_id not in (None, first)
        assert lost == [first]
        assert publisher.lost
        with pytest.raises(JanusSessionLostError):
            await publisher.join("RM4")
        # The long poll alone also notices a lost session.
        second = janus.session_id
        assert second is not None
        fake.kill_session(second)
        for _ in range(50):
            if janus.session_id not in (None, second):
                break
            await asyncio.sleep(0.05)
        assert janus.session_id not in (None, second)
        assert lost == [first, second]
        assert await janus.exists("RM4")
    await http.aclose()


async def test_poll_survives_network_errors_and_keeps_a_live_session(fake: FakeJanus) -> None:
    lost: list[int] = []

    async def on_lost(session: int) -> None:
        lost.append(session)

    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    async with JanusClient(
        BASE, admin_key="k", http=http, request_timeout=1.0, poll_wait=0.2, on_session_lost=on_lost
    ) as janus:
        session = janus.session_id
        publisher = await janus.publisher()
        fake.failing_polls = 3
        for _ in range(100):
            if fake.failing_polls == 0 and fake.polls > 4:
                break
            await asyncio.sleep(0.05)
        assert fake.failing_polls == 0
        # The probe found the session alive: nothing was replaced, handles still work.
        assert janus.session_id == session
        assert lost == []
        assert not publisher.lost
        # ...and the long poll delivers asynchronous answers again.
        await janus.create_room("RM5", publishers=1, secret="x")
        joined = await publisher.join("RM5", participant_id="PA5")
        assert joined.participant_id == "PA5"
    await http.aclose()
