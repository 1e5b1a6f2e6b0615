"""Rooms with real media: aiortc peers (inside the media netns) join through WHIP/WHEP with Access Tokens.

One scenario walks the whole life of a room: publish, REST state, a viewer decoding the publisher's colour,
subscribe rules, a REST disconnect that stops the media, the empty-room timeout, and every room callback
signed and in SequenceNumber order. Token refusals are checked separately, and so is the renegotiation of one
WHEP session as publishers come and go. Vanished peers: tests/e2e/test_rooms_liveness.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant
from twilio.request_validator import RequestValidator

from libs.testing.callbacks import serve_receiver
from libs.twilio.openapi import validate_list, validate_resource
from tests.e2e.conftest import Tenant, new_tenant
from tests.e2e.peers import COLOUR_RGB, NETNS_ADDR, PEER_SCRIPT, REPO, Peer, poll, token
from tests.e2e.test_rooms_chromium import EDGE_IN_NETNS, DevTools
from tests.e2e.test_rooms_chromium import browser as browser  # noqa: F401  # the Chromium fixture, shared

pytestmark = pytest.mark.e2e

PUBLISHER_IP, VIEWER_IP, SECOND_PUBLISHER_IP = "10.77.0.61", "10.77.0.62", "10.77.0.63"
GREEN_RGB = (30, 180, 60)


@pytest.fixture
def peer_addresses() -> Iterator[None]:
    ips = (PUBLISHER_IP, VIEWER_IP, SECOND_PUBLISHER_IP)
    for ip in ips:
        subprocess.run([str(NETNS_ADDR), "ADD", ip], check=True, capture_output=True)
    yield
    for ip in ips:
        subprocess.run([str(NETNS_ADDR), "DEL", ip], check=False, capture_output=True)


async def coloured_publisher(address: str, seconds: float, colour: tuple[int, int, int]) -> Peer:
    """The aiortc publisher of libs/testing/webrtc_peer.py, sending `colour` instead of COLOUR_RGB."""
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", "mixdown", sys.executable, str(PEER_SCRIPT), "publish", address, str(seconds),
        ",".join(str(v) for v in colour),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )  # fmt: skip
    return Peer(process)


def near(rgb: object, want: tuple[int, int, int], tolerance: float = 25) -> bool:
    return isinstance(rgb, list) and all(abs(g - w) < tolerance for g, w in zip(rgb, want, strict=True))


def video_of(tick: dict[str, Any], colour: tuple[int, int, int]) -> dict[str, Any] | None:
    """The viewer's video m-line currently decoding `colour` (per-mid report of webrtc_peer.py)."""
    for stream in (tick.get("video") or {}).values():
        if near(stream.get("rgb"), colour):
            return dict(stream)
    return None


async def test_publish_view_disconnect_timeout_and_signed_callbacks(
    devstack: dict[str, str], peer_addresses: None
) -> None:
    tenant = new_tenant(devstack["MIXDOWN_URL"], f"rooms-media-{uuid.uuid4().hex[:6]}")
    base = tenant.base_url
    client = tenant.client()
    name = f"media-{uuid.uuid4().hex[:8]}"
    async with serve_receiver() as receiver, httpx.AsyncClient(base_url=base, timeout=20) as http:
        receiver.on("/room-events")
        room = client.video.v1.rooms.create(
            unique_name=name, status_callback=receiver.url("/room-events"), empty_room_timeout=1
        )
        alice_token = token(tenant, "alice", name)
        publisher = await Peer.start("publish", PUBLISHER_IP, 40)
        viewer: Peer | None = None
        try:
            offer = (await publisher.until(lambda line: "offer" in line))["offer"]
            started = time.monotonic()
            whip = await http.post(
                f"/whip/{name}?audio_track_name=mic&video_track_name=cam",
                content=offer,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {alice_token}"},
            )
            assert whip.status_code == 201, whip.text
            assert whip.headers["content-type"].startswith("application/sdp")
            whip_location = whip.headers["location"]
            assert whip_location.startswith(f"/whip/{name}/sessions/")
            await publisher.send({"answer": whip.text})

            alice = client.video.v1.rooms(room.sid).participants("alice").fetch()
            assert alice.status == "connected" and alice.sid.startswith("PA")
            tracks = client.video.v1.rooms(room.sid).participants(alice.sid).published_tracks.list()
            assert sorted((t.kind, t.name) for t in tracks) == [("audio", "mic"), ("video", "cam")]
            cam = client.video.v1.rooms(room.sid).participants("alice").published_tracks("cam").fetch()
            assert cam.kind == "video" and cam.enabled is True

            # A second client receives alice's tracks through WHEP and decodes her colour.
            bob_token = token(tenant, "bob", None)  # no room in the grant: any room
            viewer = await Peer.start("subscribe", VIEWER_IP, 20)
            whep = await http.post(f"/whep/{name}", headers={"Authorization": f"Bearer {bob_token}"})
            for _ in range(20):  # 409 means "retry later" (tracks not subscribable yet), as documented
                if whep.status_code != 409:
                    break
                await asyncio.sleep(0.5)
                whep = await http.post(f"/whep/{name}", headers={"Authorization": f"Bearer {bob_token}"})
            assert whep.status_code == 201, whep.text
            whep_location = whep.headers["location"]
            await viewer.send({"offer": whep.text})
            answer = (await viewer.until(lambda line: "answer" in line))["answer"]
            patched = await http.patch(
                whep_location,
                content=answer,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {bob_token}"},
            )
            assert patched.status_code == 204, patched.text
            await viewer.until(lambda t: t.get("video_frames", 0) >= 1 and t.get("audio_frames", 0) >= 1)
            join_to_media = time.monotonic() - started
            flowing = await viewer.until(lambda t: t.get("video_frames", 0) >= 60)
            print(f"alice's WHIP POST to bob's first decoded frame: {join_to_media:.2f} s")  # noqa: T201

            bob = client.video.v1.rooms(room.sid).participants("bob").fetch()
            auth = (tenant.api_key, tenant.api_secret)
            pa_url = f"/v1/Rooms/{room.sid}/Participants"
            prefix = "video.v1.room.room_participant"
            shapes = [
                (prefix, f"{pa_url}/{alice.sid}"),
                (f"{prefix}.room_participant_published_track", f"{pa_url}/alice/PublishedTracks/cam"),
                (f"{prefix}.room_participant_subscribe_rule", f"{pa_url}/bob/SubscribeRules"),
                (f"{prefix}.room_participant_subscribed_track", f"{pa_url}/bob/SubscribedTracks/{cam.sid}"),
            ]
            for schema, path in shapes:
                got = await http.get(path, auth=auth)
                assert got.status_code == 200, (path, got.text)
                validate_resource(schema, got.json(), require_all=True, forbid_extra=True)
            for path in (
                "/v1/Rooms/{RoomSid}/Participants",
                "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/PublishedTracks",
                "/v1/Rooms/{RoomSid}/Participants/{ParticipantSid}/SubscribedTracks",
            ):
                concrete = path.replace("{RoomSid}", room.sid).replace("{ParticipantSid}", bob.sid)
                listed = await http.get(concrete, auth=auth)
                validate_list(path, listed.json())
            identities = client.video.v1.rooms(room.sid).participants.list(identity="alice")
            assert [p.sid for p in identities] == [alice.sid]
            subscribed = client.video.v1.rooms(room.sid).participants(bob.sid).subscribed_tracks.list()
            assert sorted(t.name for t in subscribed) == ["cam", "mic"]
            assert {t.publisher_sid for t in subscribed} == {alice.sid}
            rules = (
                client.video.v1.rooms(room.sid)
                .participants(bob.sid)
                .subscribe_rules.update(
                    rules=[{"type": "include", "all": True}, {"type": "exclude", "kind": "video"}]
                )
            )
            assert rules.rules[-1] == {"type": "exclude", "kind": "video"}
            subscribed = client.video.v1.rooms(room.sid).participants(bob.sid).subscribed_tracks.list()
            assert [t.name for t in subscribed] == ["mic"]
            await asyncio.sleep(0.5)
            paused_at = viewer.latest()["video_frames"]
            await asyncio.sleep(1.5)
            later = viewer.latest()
            assert later["video_frames"] - paused_at <= 5, "video kept flowing after the exclude rule"
            client.video.v1.rooms(room.sid).participants(bob.sid).subscribe_rules.update(
                rules=[{"type": "include", "all": True}]
            )
            resumed = await viewer.until(lambda t: t.get("video_frames", 0) >= later["video_frames"] + 20)
            assert resumed["video_frames"] > flowing["video_frames"]

            # Disconnecting alice through REST kicks her from Janus: bob's frames stop.
            kicked = client.video.v1.rooms(room.sid).participants(alice.sid).update(status="disconnected")
            assert kicked.status == "disconnected"
            assert client.video.v1.rooms(room.sid).participants(alice.sid).published_tracks.list() == []
            await asyncio.sleep(1.0)
            frozen = viewer.latest()["video_frames"]
            await asyncio.sleep(1.5)
            assert viewer.latest()["video_frames"] - frozen <= 3, "alice's media kept flowing"

            ended_viewer = await http.delete(whep_location, headers={"Authorization": f"Bearer {bob_token}"})
            assert ended_viewer.status_code == 200
            gone = await http.delete(whip_location, headers={"Authorization": f"Bearer {alice_token}"})
            assert gone.status_code == 404  # the REST disconnect already ended alice's session
            final = await viewer.until(lambda line: "mean_rgb" in line, wait=40)
            assert final["mean_rgb"] is not None
            for got, want in zip(final["mean_rgb"], COLOUR_RGB, strict=True):
                assert abs(got - want) < 25, final["mean_rgb"]
        finally:
            await publisher.stop()
            if viewer is not None:
                await viewer.stop()

        assert client.video.v1.rooms(room.sid).participants.list() == []
        left = client.video.v1.rooms(room.sid).participants.list(status="disconnected")
        assert sorted(p.identity for p in left) == ["alice", "bob"]
        assert all(p.duration is not None and p.end_time is not None for p in left)
        anonymized = client.video.v1.rooms(room.sid).participants(alice.sid).anonymize().update()
        assert anonymized.identity == alice.sid

        # EmptyRoomTimeout=1: the room completes about a minute after bob left.
        def room_ended() -> bool:
            return bool(client.video.v1.rooms(room.sid).fetch().status == "completed")

        await poll(room_ended, 100, "the empty-room timeout")

        def callbacks_done() -> bool:
            return any(c.form.get("StatusCallbackEvent") == "room-ended" for c in receiver.at("/room-events"))

        await poll(callbacks_done, 30, "the room-ended callback")
        calls = receiver.at("/room-events")
        validator = RequestValidator(tenant.auth_token)
        for call in calls:
            assert validator.validate(call.url, call.form, call.headers["x-twilio-signature"]), call.form
            assert call.form["RoomSid"] == room.sid and call.form["RoomName"] == name
            assert call.form["AccountSid"] == tenant.account_sid
        ordered = sorted(calls, key=lambda c: int(c.form["SequenceNumber"]))
        numbers = [int(c.form["SequenceNumber"]) for c in ordered]
        assert numbers == list(range(len(numbers))), numbers
        events = [(c.form["StatusCallbackEvent"], c.form.get("ParticipantIdentity", "")) for c in ordered]
        assert events[0] == ("room-created", "")
        assert events[-1] == ("room-ended", "")
        assert ("participant-connected", "alice") in events and ("participant-connected", "bob") in events
        added = [e for e in events if e[0] == "track-added"]
        removed = [e for e in events if e[0] == "track-removed"]
        assert len(added) == 2 and len(removed) == 2
        alice_out = events.index(("participant-disconnected", "alice"))
        assert max(i for i, e in enumerate(events) if e[0] == "track-removed") < alice_out
        assert events.index(("participant-disconnected", "bob")) < len(events) - 1
        ended = ordered[-1].form
        assert ended["RoomStatus"] == "completed" and int(ended["RoomDuration"]) >= 60


async def test_tokens_are_checked(devstack: dict[str, str], tenant: Tenant) -> None:
    client = tenant.client()
    name = f"tokens-{uuid.uuid4().hex[:8]}"
    room = client.video.v1.rooms.create(unique_name=name)
    offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    try:
        async with httpx.AsyncClient(base_url=tenant.base_url, timeout=10) as http:

            async def post(tok: str | None, path: str = f"/whip/{name}") -> httpx.Response:
                headers = {"Content-Type": "application/sdp"}
                if tok is not None:
                    headers["Authorization"] = f"Bearer {tok}"
                return await http.post(path, content=offer, headers=headers)

            missing = await post(None)
            assert missing.status_code == 401 and missing.json()["code"] == 20101
            expired = AccessToken(
                tenant.account_sid, tenant.api_key, tenant.api_secret, identity="eve",
                nbf=int(time.time()) - 120, valid_until=int(time.time()) - 60,
            )  # fmt: skip
            expired.add_grant(VideoGrant(room=name))
            late = await post(str(expired.to_jwt()))
            assert late.status_code == 401 and late.json()["code"] == 20104
            forged = AccessToken(tenant.account_sid, tenant.api_key, "x" * 40, identity="eve")
            forged.add_grant(VideoGrant(room=name))
            bad = await post(str(forged.to_jwt()))
            assert bad.status_code == 401 and bad.json()["code"] == 20107
            elsewhere = await post(token(tenant, "eve", "another-room"))
            assert elsewhere.status_code == 403
            viewer_offer = await http.post(
                f"/whep/{name}",
                content=offer,
                headers={
                    "Authorization": f"Bearer {token(tenant, 'eve', name)}",
                    "Content-Type": "application/sdp",
                },
            )
            assert viewer_offer.status_code == 415
            empty = await http.post(
                f"/whep/{name}", headers={"Authorization": f"Bearer {token(tenant, 'eve', name)}"}
            )
            assert empty.status_code == 409 and empty.json()["code"] == 20409
        assert client.video.v1.rooms(room.sid).participants.list() == []
    finally:
        client.video.v1.rooms(room.sid).update(status="completed")


async def whip_publish(http: httpx.AsyncClient, peer: Peer, room: str, bearer: str) -> httpx.Response:
    offer = (await peer.until(lambda line: "offer" in line))["offer"]
    whip = await http.post(
        f"/whip/{room}", content=offer, headers={"Content-Type": "application/sdp", "Authorization": bearer}
    )
    assert whip.status_code == 201, whip.text
    await peer.send({"answer": whip.text})
    return whip


async def until_not_409(send: Any) -> httpx.Response:
    """Repeat a WHEP request while it answers 409 (documented as "retry later")."""
    response: httpx.Response = await send()
    for _ in range(20):
        if response.status_code != 409:
            break
        await asyncio.sleep(0.5)
        response = await send()
    return response


def last_tick(viewer: Peer) -> dict[str, Any]:
    return next((line for line in reversed(viewer.lines) if line.get("tick")), {})


async def answer_offer(viewer: Peer, offer: str) -> str:
    seen = len(viewer.lines)
    await viewer.send({"offer": offer})
    line = await viewer.until(lambda line: "answer" in line and viewer.lines.index(line) >= seen)
    return str(line["answer"])


async def test_a_whep_session_renegotiates_for_tracks_published_later(
    devstack: dict[str, str], tenant: Tenant, peer_addresses: None
) -> None:
    """One WHEP session (one participant, one PeerConnection) follows the room: a publisher who arrives later
    is added by a renegotiation (subscribe rules still pausing what they exclude), and removed again after
    it leaves, while the first publisher's media keeps flowing."""
    client = tenant.client()
    name = f"reneg-{uuid.uuid4().hex[:8]}"
    room = client.video.v1.rooms.create(unique_name=name)
    first = await coloured_publisher(PUBLISHER_IP, 60, COLOUR_RGB)
    second: Peer | None = None
    viewer = await Peer.start("subscribe", VIEWER_IP, 55)
    carol = f"Bearer {token(tenant, 'carol', name)}"
    try:
        async with httpx.AsyncClient(base_url=tenant.base_url, timeout=20) as http:
            await whip_publish(http, first, name, f"Bearer {token(tenant, 'alice', name)}")
            whep = await until_not_409(lambda: http.post(f"/whep/{name}", headers={"Authorization": carol}))
            assert whep.status_code == 201, whep.text
            session, first_etag = whep.headers["location"], whep.headers["etag"]
            carol_sid = whep.headers["x-participant-sid"]
            answer = await answer_offer(viewer, whep.text)
            patched = await http.patch(
                session, content=answer, headers={"Content-Type": "application/sdp", "Authorization": carol}
            )
            assert patched.status_code == 204, patched.text
            await viewer.until(lambda t: (video_of(t, COLOUR_RGB) or {}).get("frames", 0) >= 20)
            state = (await http.get(session, headers={"Authorization": carol})).json()
            assert state["stale"] is False and len(state["tracks"]) == 2
            alice_tracks = set(state["tracks"])

            # Carol's rules pause bob's video: a renegotiation must keep applying them to new streams.
            client.video.v1.rooms(room.sid).participants(carol_sid).subscribe_rules.update(
                rules=[
                    {"type": "include", "all": True},
                    {"type": "exclude", "publisher": "bob", "kind": "video"},
                ]
            )
            second = await coloured_publisher(SECOND_PUBLISHER_IP, 40, GREEN_RGB)
            bob = f"Bearer {token(tenant, 'bob', name)}"
            bob_session = (await whip_publish(http, second, name, bob)).headers["location"]

            async def stale() -> bool:
                got = await http.get(session, headers={"Authorization": carol})
                return bool(got.json()["stale"])

            deadline = time.monotonic() + 10
            while not await stale():
                assert time.monotonic() < deadline, "GET never reported the session stale"
                await asyncio.sleep(0.2)

            with_body = await http.post(
                session,
                content="v=0\r\n",
                headers={"Content-Type": "application/sdp", "Authorization": carol},
            )
            assert with_body.status_code == 415 and with_body.json()["code"] == 20415
            before = video_of(last_tick(viewer), COLOUR_RGB)
            assert before is not None
            renegotiated = await until_not_409(lambda: http.post(session, headers={"Authorization": carol}))
            assert renegotiated.status_code == 200, renegotiated.text
            assert renegotiated.headers["content-type"].startswith("application/sdp")
            second_etag = renegotiated.headers["etag"]
            assert second_etag != first_etag
            assert renegotiated.text.count("m=video") == 2 and renegotiated.text.count("m=audio") == 2
            answer = await answer_offer(viewer, renegotiated.text)
            outdated = await http.patch(
                session,
                content=answer,
                headers={"Content-Type": "application/sdp", "Authorization": carol, "If-Match": first_etag},
            )
            assert outdated.status_code == 412 and outdated.json()["code"] == 20412, outdated.text
            patched = await http.patch(
                session,
                content=answer,
                headers={"Content-Type": "application/sdp", "Authorization": carol, "If-Match": second_etag},
            )
            assert patched.status_code == 204, patched.text
            state = (await http.get(session, headers={"Authorization": carol})).json()
            assert state["stale"] is False and state["participant_sid"] == carol_sid
            assert len(state["tracks"]) == 4 and alice_tracks < set(state["tracks"])
            # Bob's audio arrives on the new m-line; his video is paused by the rule.
            audio_before = last_tick(viewer)["audio_frames"]
            await viewer.until(lambda t: t.get("audio_frames", 0) >= audio_before + 150)
            assert video_of(last_tick(viewer), GREEN_RGB) is None, "an excluded video was sent"
            during = video_of(last_tick(viewer), COLOUR_RGB)
            assert during is not None and during["frames"] > before["frames"] + 20, "alice's video stalled"

            client.video.v1.rooms(room.sid).participants(carol_sid).subscribe_rules.update(
                rules=[{"type": "include", "all": True}]
            )
            both = await viewer.until(
                lambda t: (
                    (video_of(t, GREEN_RGB) or {}).get("frames", 0) >= 20
                    and (video_of(t, COLOUR_RGB) or {}).get("frames", 0) >= during["frames"] + 20
                )
            )
            print(f"viewer decodes both colours on one session: {both['video']}")  # noqa: T201
            assert client.video.v1.rooms(room.sid).participants(carol_sid).fetch().status == "connected"
            subscribed = client.video.v1.rooms(room.sid).participants(carol_sid).subscribed_tracks.list()
            assert len(subscribed) == 4

            # Bob leaves: the next renegotiation removes his m-lines (inactive), alice keeps flowing.
            assert (await http.delete(bob_session, headers={"Authorization": bob})).status_code == 200
            await second.stop()
            deadline = time.monotonic() + 10
            while not await stale():
                assert time.monotonic() < deadline, "GET never reported the session stale after bob left"
                await asyncio.sleep(0.2)
            removed = await http.post(session, headers={"Authorization": carol})
            assert removed.status_code == 200, removed.text
            assert removed.text.count("a=inactive") == 2, removed.text
            answer = await answer_offer(viewer, removed.text)
            patched = await http.patch(
                session,
                content=answer,
                headers={
                    "Content-Type": "application/sdp",
                    "Authorization": carol,
                    "If-Match": removed.headers["etag"],
                },
            )
            assert patched.status_code == 204, patched.text
            state = (await http.get(session, headers={"Authorization": carol})).json()
            assert state["stale"] is False and set(state["tracks"]) == alice_tracks
            after = video_of(last_tick(viewer), COLOUR_RGB)
            assert after is not None
            await viewer.until(
                lambda t: (video_of(t, COLOUR_RGB) or {}).get("frames", 0) >= after["frames"] + 20
            )
            unchanged = await http.post(session, headers={"Authorization": carol})
            assert unchanged.status_code == 204, unchanged.text
            assert client.video.v1.rooms(room.sid).participants(carol_sid).fetch().status == "connected"
            ended = await http.delete(session, headers={"Authorization": carol})
            assert ended.status_code == 200
            assert client.video.v1.rooms(room.sid).participants(carol_sid).fetch().status == "disconnected"
    finally:
        for peer in (first, second, viewer):
            if peer is not None:
                await peer.stop()
        client.video.v1.rooms(room.sid).update(status="completed")


async def test_the_demo_page_renegotiates_instead_of_reconnecting(
    tenant: Tenant, browser: DevTools, peer_addresses: None
) -> None:
    """Chromium on /rooms-ui/ watches publisher A; B arrives and leaves. The page renegotiates its one
    WHEP session each time (its participant stays connected), shows B's video, then drops it, and A keeps
    playing."""
    client = tenant.client()
    name = f"page-reneg-{uuid.uuid4().hex[:6]}"
    room = client.video.v1.rooms.create(unique_name=name)
    first = await coloured_publisher(PUBLISHER_IP, 60, COLOUR_RGB)
    second: Peer | None = None
    playing = (
        "[...document.querySelectorAll('video.remote')].filter(v => v.videoWidth > 0 && !v.paused).length"
    )
    shown = "document.querySelectorAll('video.remote').length"
    log = "document.getElementById('log').textContent"
    try:
        async with httpx.AsyncClient(base_url=tenant.base_url, timeout=20) as http:
            await whip_publish(http, first, name, f"Bearer {token(tenant, 'alice', name)}")
            page_url = f"{EDGE_IN_NETNS}/rooms-ui/#room={quote(name)}&token={token(tenant, 'anna', name)}"
            target = browser.call("Target.createTarget", {"url": page_url})["targetId"]
            page = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

            async def until(expression: str, want: object, what: str) -> None:
                deadline = time.monotonic() + 40
                while browser.evaluate(page, expression) != want:
                    assert time.monotonic() < deadline, (what, browser.evaluate(page, log))
                    await asyncio.sleep(0.3)

            await until(playing, 1, "alice's video playing")
            anna = client.video.v1.rooms(room.sid).participants("anna").fetch()
            second = await coloured_publisher(SECOND_PUBLISHER_IP, 40, GREEN_RGB)
            bob = f"Bearer {token(tenant, 'bob', name)}"
            bob_session = (await whip_publish(http, second, name, bob)).headers["location"]
            await until(playing, 2, "bob's video playing after a renegotiation")
            assert str(browser.evaluate(page, log)).count("renegotiated the view") == 1
            assert (await http.delete(bob_session, headers={"Authorization": bob})).status_code == 200
            await until(
                f"{shown} === 1 && ({log}).split('renegotiated the view').length", 3, "bob's video removed"
            )
            await until(playing, 1, "alice's video still playing")
            assert str(browser.evaluate(page, log)).count("watching") == 1  # one WHEP session throughout
            same = client.video.v1.rooms(room.sid).participants("anna").fetch()
            assert same.sid == anna.sid and same.status == "connected"
    finally:
        for peer in (first, second):
            if peer is not None:
                await peer.stop()
        client.video.v1.rooms(room.sid).update(status="completed")
