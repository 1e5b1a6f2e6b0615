"""Composition Hooks through the edge with the official twilio client: CRUD, filters, paging, errors."""

from __future__ import annotations

import uuid

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from libs.twilio.openapi import validate_list, validate_resource
from tests.e2e.conftest import Tenant

pytestmark = pytest.mark.e2e

GRID = {"grid": {"video_sources": ["*"]}}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_create_fetch_update_delete_with_twilio_client(tenant: Tenant) -> None:
    client = tenant.client()
    name = _name("hook")
    hook = client.video.v1.composition_hooks.create(
        friendly_name=name,
        video_layout=GRID,
        audio_sources=["*"],
        audio_sources_excluded=["screen*"],
        resolution="1280x720",
        format="mp4",
        status_callback="https://example.com/callbacks",
    )
    assert hook.sid.startswith("HK")
    assert hook.account_sid == tenant.account_sid
    assert hook.enabled is True
    assert hook.trim is True
    assert hook.format == "mp4"
    assert hook.resolution == "1280x720"
    assert hook.audio_sources == ["*"]
    assert hook.audio_sources_excluded == ["screen*"]
    assert hook.video_layout["grid"]["reuse"] == "show_oldest"
    assert hook.video_layout["grid"]["cells_excluded"] == []
    assert hook.status_callback_method == "POST"
    assert hook.date_updated is None
    assert hook.url == f"{tenant.base_url}/v1/CompositionHooks/{hook.sid}"

    fetched = client.video.v1.composition_hooks(hook.sid).fetch()
    assert fetched.friendly_name == name
    assert fetched.date_created == hook.date_created

    # An update replaces the whole definition: what is not sent goes back to its default.
    updated = client.video.v1.composition_hooks(hook.sid).update(
        friendly_name=name + "-v2", audio_sources=["alice*"], enabled=False
    )
    assert updated.friendly_name == name + "-v2"
    assert updated.enabled is False
    assert updated.video_layout == {}
    assert updated.format == "webm"
    assert updated.status_callback is None
    assert updated.date_updated is not None

    assert client.video.v1.composition_hooks(hook.sid).delete() is True
    with pytest.raises(TwilioRestException) as info:
        client.video.v1.composition_hooks(hook.sid).fetch()
    assert info.value.status == 404
    assert info.value.code == 20404


def test_responses_validate_against_twilios_openapi(tenant: Tenant) -> None:
    auth = (tenant.api_key, tenant.api_secret)
    created = httpx.post(
        f"{tenant.base_url}/v1/CompositionHooks",
        auth=auth,
        data={"FriendlyName": _name("spec"), "AudioSources": "*", "Trim": "false"},
    )
    assert created.status_code == 201, created.text
    validate_resource("video.v1.composition_hook", created.json(), require_all=True, forbid_extra=True)
    listed = httpx.get(f"{tenant.base_url}/v1/CompositionHooks", auth=auth, params={"PageSize": 5})
    assert listed.status_code == 200
    validate_list("/v1/CompositionHooks", listed.json())


def test_list_filters_and_pages(tenant: Tenant) -> None:
    client = tenant.client()
    tag = uuid.uuid4().hex[:8]
    made = [
        client.video.v1.composition_hooks.create(
            friendly_name=f"Page{tag}-{i}", audio_sources=["*"], enabled=i != 1
        )
        for i in range(3)
    ]
    pattern = f"*page{tag}*"  # case-insensitive, with wildcards
    everything = client.video.v1.composition_hooks.list(friendly_name=pattern, page_size=2)
    assert [h.sid for h in everything] == [h.sid for h in made]
    first_page = client.video.v1.composition_hooks.page(friendly_name=pattern, page_size=2)
    assert len(list(first_page)) == 2
    assert first_page.next_page_url is not None
    assert f"FriendlyName=%2Apage{tag}%2A" in first_page.next_page_url  # filters repeated
    enabled = client.video.v1.composition_hooks.list(friendly_name=pattern, enabled=True)
    assert {h.sid for h in enabled} == {made[0].sid, made[2].sid}
    none = client.video.v1.composition_hooks.list(friendly_name=f"nothing-{tag}")
    assert none == []


def test_duplicate_friendly_name_is_refused(tenant: Tenant, other_tenant: Tenant) -> None:
    name = _name("dup")
    tenant.client().video.v1.composition_hooks.create(friendly_name=name, audio_sources=["*"])
    with pytest.raises(TwilioRestException) as info:
        tenant.client().video.v1.composition_hooks.create(friendly_name=name.upper(), audio_sources=["*"])
    assert info.value.status == 409
    # Another account may use the same name.
    other = other_tenant.client().video.v1.composition_hooks.create(friendly_name=name, audio_sources=["*"])
    assert other.account_sid == other_tenant.account_sid


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"friendly_name": "", "audio_sources": ["*"]}, 20001),  # no FriendlyName
        ({"friendly_name": "x", "video_layout": {"grid": {"video_sources": []}}}, 53640),
        ({"friendly_name": "x", "audio_sources": ["*"], "resolution": "4000x3000"}, 53641),
        ({"friendly_name": "x"}, 20001),  # neither layout nor audio
    ],
)
def test_bad_input_gets_twilio_errors(tenant: Tenant, params: dict[str, object], code: int) -> None:
    with pytest.raises(TwilioRestException) as info:
        tenant.client().video.v1.composition_hooks.create(**params)
    assert info.value.status == 400
    assert info.value.code == code


def test_invalid_json_layout_is_a_400_with_twilio_body(tenant: Tenant) -> None:
    response = httpx.post(
        f"{tenant.base_url}/v1/CompositionHooks",
        auth=(tenant.api_key, tenant.api_secret),
        data={"FriendlyName": _name("bad"), "VideoLayout": "{not json"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 53640
    assert body["status"] == 400
    assert body["more_info"] == "https://www.twilio.com/docs/errors/53640"
