"""HTTP Basic auth at the edge: both credential forms, Twilio's 401, and tenant isolation (404)."""

from __future__ import annotations

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from tests.e2e.conftest import Tenant

pytestmark = pytest.mark.e2e

API_PREFIXES = ["/v1/Rooms", "/v1/Recordings", "/v1/Compositions", "/v1/CompositionHooks"]


@pytest.mark.parametrize("with_auth_token", [True, False], ids=["account-sid+auth-token", "api-key+secret"])
def test_both_credential_forms_work(tenant: Tenant, with_auth_token: bool) -> None:
    client = tenant.client(with_auth_token=with_auth_token)
    hook = client.video.v1.composition_hooks.create(
        friendly_name=f"auth-form-{with_auth_token}-{tenant.api_key[-6:]}-{id(client)}", audio_sources=["*"]
    )
    assert hook.account_sid == tenant.account_sid


@pytest.mark.parametrize("path", API_PREFIXES)
@pytest.mark.parametrize("which", ["wrong-token", "wrong-secret", "unknown-sid", "none"])
def test_bad_credentials_get_401_20003(tenant: Tenant, path: str, which: str) -> None:
    auth = {
        "wrong-token": (tenant.account_sid, "0" * 32),
        "wrong-secret": (tenant.api_key, tenant.api_secret + "x"),
        "unknown-sid": ("SK" + "0" * 32, tenant.api_secret),
        "none": None,
    }[which]
    response = httpx.get(f"{tenant.base_url}{path}", auth=auth)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 20003
    assert body["status"] == 401
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"


def test_another_accounts_resource_is_404_20404(tenant: Tenant, other_tenant: Tenant) -> None:
    mine = tenant.client().video.v1.composition_hooks.create(
        friendly_name=f"isolated-{other_tenant.account_sid[-8:]}", audio_sources=["*"]
    )
    theirs = other_tenant.client()
    for action in ("fetch", "delete"):
        with pytest.raises(TwilioRestException) as info:
            getattr(theirs.video.v1.composition_hooks(mine.sid), action)()
        assert info.value.status == 404
        assert info.value.code == 20404
    listed = theirs.video.v1.composition_hooks.list()
    assert mine.sid not in {h.sid for h in listed}
    # Still there for its owner.
    assert tenant.client().video.v1.composition_hooks(mine.sid).fetch().sid == mine.sid
