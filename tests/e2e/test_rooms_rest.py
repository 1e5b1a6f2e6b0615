"""Rooms REST through the edge with the official twilio client: rooms, participants, tracks, rules, errors.

Media-free parts only; joins, tracks and callbacks with real WebRTC peers are in test_rooms_media.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from libs.twilio.openapi import validate_list, validate_resource
from tests.e2e.conftest import Tenant

pytestmark = pytest.mark.e2e


def _name(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _http(tenant: Tenant) -> httpx.Client:
    return httpx.Client(base_url=tenant.base_url, auth=(tenant.api_key, tenant.api_secret), timeout=10)


def test_create_fetch_by_sid_and_name_then_complete(tenant: Tenant) -> None:
    client = tenant.client()
    name = _name()
    room = client.video.v1.rooms.create(
        unique_name=name,
        status_callback="https://example.com/room-events",
        status_callback_method="GET",
        max_participants=7,
        max_participant_duration=3600,
        empty_room_timeout=2,
        unused_room_timeout=3,
        record_participants_on_connect=True,
        video_codecs=["VP8", "H264"],
        media_region="de1",
    )
    assert room.sid.startswith("RM")
    assert room.status == "in-progress"
    assert room.unique_name == name
    assert room.account_sid == tenant.account_sid
    assert room.type == "group"
    assert room.max_participants == 7
    assert room.max_participant_duration == 3600
    assert room.empty_room_timeout == 2
    assert room.unused_room_timeout == 3
    assert room.record_participants_on_connect is True
    assert room.video_codecs == ["VP8", "H264"]
    assert room.media_region == "de1"
    assert room.status_callback_method == "GET"
    assert room.max_concurrent_published_tracks == 170
    assert room.enable_turn is True
    assert room.end_time is None and room.duration is None
    assert room.url == f"{tenant.base_url}/v1/Rooms/{room.sid}"
    assert room.links["participants"] == f"{tenant.base_url}/v1/Rooms/{room.sid}/Participants"

    by_sid = client.video.v1.rooms(room.sid).fetch()
    by_name = client.video.v1.rooms(name).fetch()
    assert by_sid.sid == by_name.sid == room.sid

    rules = client.video.v1.rooms(room.sid).recording_rules.fetch()
    assert rules.rules == [{"type": "include", "all": True}]

    # A second in-progress room with the same name is 53113.
    with pytest.raises(TwilioRestException) as taken:
        client.video.v1.rooms.create(unique_name=name)
    assert taken.value.status == 400 and taken.value.code == 53113

    done = client.video.v1.rooms(room.sid).update(status="completed")
    assert done.status == "completed"
    assert done.end_time is not None
    assert done.duration is not None and done.duration >= 0

    # Completing again: 53112. By name it is no longer addressable: 20404.
    with pytest.raises(TwilioRestException) as again:
        client.video.v1.rooms(room.sid).update(status="completed")
    assert again.value.code == 53112
    with pytest.raises(TwilioRestException) as gone:
        client.video.v1.rooms(name).fetch()
    assert gone.value.status == 404 and gone.value.code == 20404

    # The name is free again once the first room has ended.
    second = client.video.v1.rooms.create(unique_name=name)
    assert second.sid != room.sid
    client.video.v1.rooms(second.sid).update(status="completed")


def test_defaults_and_openapi_shapes(tenant: Tenant) -> None:
    with _http(tenant) as http:
        created = http.post("/v1/Rooms", data={})
        assert created.status_code == 201
        body = created.json()
        validate_resource("video.v1.room", body, require_all=True, forbid_extra=True)
        assert body["unique_name"] == body["sid"]
        assert body["empty_room_timeout"] == 5 and body["unused_room_timeout"] == 5
        assert body["max_participants"] == 50 and body["max_participant_duration"] == 14400
        assert body["video_codecs"] == ["VP8"] and body["record_participants_on_connect"] is False
        sid = body["sid"]

        rules = http.get(f"/v1/Rooms/{sid}/RecordingRules").json()
        validate_resource("video.v1.room.room_recording_rule", rules, require_all=True, forbid_extra=True)
        assert rules["rules"] == [] and rules["date_created"] is None

        listed = http.get("/v1/Rooms", params={"PageSize": 5}).json()
        validate_list("/v1/Rooms", listed)
        participants = http.get(f"/v1/Rooms/{sid}/Participants").json()
        validate_list("/v1/Rooms/{RoomSid}/Participants", participants)
        assert participants["participants"] == []

        ended = http.post(f"/v1/Rooms/{sid}", data={"Status": "completed"})
        assert ended.status_code == 202
        validate_resource("video.v1.room", ended.json(), require_all=True, forbid_extra=True)


def test_recording_rules_update_and_validation(tenant: Tenant) -> None:
    client = tenant.client()
    room = client.video.v1.rooms.create(unique_name=_name())
    try:
        updated = client.video.v1.rooms(room.sid).recording_rules.update(
            rules=[{"type": "include", "publisher": "alice"}, {"type": "include", "kind": "audio"}]
        )
        assert updated.rules == [
            {"type": "include", "publisher": "alice"},
            {"type": "include", "kind": "audio"},
        ]
        assert updated.date_updated is not None
        assert client.video.v1.rooms(room.sid).recording_rules.fetch().rules == updated.rules

        for bad in (
            [],
            [{"type": "include", "all": True, "kind": "audio"}],
            [{"type": "keep", "all": True}],
            [{"type": "include", "kind": "data"}],
            [{"type": "include", "all": True}] * 21,
        ):
            with pytest.raises(TwilioRestException) as refused:
                client.video.v1.rooms(room.sid).recording_rules.update(rules=bad)
            assert refused.value.status == 400 and refused.value.code == 53120, bad
    finally:
        client.video.v1.rooms(room.sid).update(status="completed")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Type": "bogus"}, 53108),
        ({"Type": "peer-to-peer"}, 53126),
        ({"MaxParticipants": "51"}, 53107),
        ({"MaxParticipants": "0"}, 53107),
        ({"MaxParticipantDuration": "599"}, 53123),
        ({"EmptyRoomTimeout": "61"}, 53109),
        ({"UnusedRoomTimeout": "0"}, 53109),
        ({"StatusCallback": "not a url"}, 53111),
        ({"StatusCallbackMethod": "PUT"}, 53110),
        ({"MediaRegion": "mars1"}, 53115),
        ({"UniqueName": "x" * 129}, 53101),
        ({"RecordingRules": "[]"}, 53120),
        ({"AudioOnly": "true"}, 53127),
    ],
)
def test_create_errors_are_twilio_json(tenant: Tenant, params: dict[str, str], code: int) -> None:
    with _http(tenant) as http:
        response = http.post("/v1/Rooms", data=params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"].endswith(str(code))


def test_list_filters_and_paging(tenant: Tenant) -> None:
    client = tenant.client()
    tag = _name("page")
    started = datetime.now(UTC) - timedelta(seconds=2)
    sids = [client.video.v1.rooms.create(unique_name=f"{tag}-{i}").sid for i in range(5)]
    try:
        listed = client.video.v1.rooms.list(date_created_after=started, page_size=2)
        mine = [r.sid for r in listed if r.unique_name.startswith(tag)]
        assert mine == sids  # in creation order, across three pages of 2

        by_name = client.video.v1.rooms.list(unique_name=f"{tag}-3")
        assert [r.sid for r in by_name] == [sids[3]]

        client.video.v1.rooms(sids[0]).update(status="completed")
        in_progress = {r.sid for r in client.video.v1.rooms.list(date_created_after=started)}
        assert sids[0] not in in_progress and set(sids[1:]) <= in_progress  # default: in-progress
        completed = {
            r.sid for r in client.video.v1.rooms.list(status="completed", date_created_after=started)
        }
        assert sids[0] in completed and not set(sids[1:]) & completed
        before = client.video.v1.rooms.list(date_created_before=started - timedelta(days=3650))
        assert not {r.sid for r in before} & set(sids)
    finally:
        for sid in sids[1:]:
            client.video.v1.rooms(sid).update(status="completed")
    with _http(tenant) as http:
        assert http.get("/v1/Rooms", params={"PageSize": 1001}).json()["code"] == 20001


def test_rooms_are_private_to_their_account(tenant: Tenant, other_tenant: Tenant) -> None:
    room = tenant.client().video.v1.rooms.create(unique_name=_name())
    try:
        with pytest.raises(TwilioRestException) as hidden:
            other_tenant.client().video.v1.rooms(room.sid).fetch()
        assert hidden.value.status == 404
        assert room.sid not in {r.sid for r in other_tenant.client().video.v1.rooms.list()}
    finally:
        tenant.client().video.v1.rooms(room.sid).update(status="completed")


def test_unknown_participant_and_bad_updates(tenant: Tenant) -> None:
    client = tenant.client()
    room = client.video.v1.rooms.create(unique_name=_name())
    try:
        with pytest.raises(TwilioRestException) as missing:
            client.video.v1.rooms(room.sid).participants("nobody").fetch()
        assert missing.value.status == 404
        with _http(tenant) as http:
            bad = http.post(f"/v1/Rooms/{room.sid}", data={"Status": "in-progress"})
            assert bad.status_code == 400 and bad.json()["code"] == 53112
            unauth = httpx.get(f"{tenant.base_url}/v1/Rooms/{room.sid}")
            assert unauth.status_code == 401 and unauth.json()["code"] == 20003
    finally:
        client.video.v1.rooms(room.sid).update(status="completed")
