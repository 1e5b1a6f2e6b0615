"""End-to-end fixtures: official twilio clients pointed at the running devstack, one per tenant."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from twilio.rest import Client

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Tenant:
    """An account with an API key, and a twilio client using that key against Mixdown."""

    account_sid: str
    auth_token: str
    api_key: str
    api_secret: str
    base_url: str

    def client(self, *, with_auth_token: bool = False) -> Client:
        if with_auth_token:
            client = Client(self.account_sid, self.auth_token)
        else:
            client = Client(self.api_key, self.api_secret, self.account_sid)
        client.video.base_url = self.base_url
        return client


def _mixdown(*args: str) -> dict[str, str]:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mixdown"), *args, "--json"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result: dict[str, str] = json.loads(out.stdout)
    return result


def new_tenant(base_url: str, name: str) -> Tenant:
    """A fresh account and API key created with the operator CLI."""
    account = _mixdown("accounts", "create", "--friendly-name", name)
    key = _mixdown("keys", "create", "--account-sid", account["sid"], "--friendly-name", name)
    return Tenant(account["sid"], account["auth_token"], key["sid"], key["secret"], base_url)


@pytest.fixture(scope="session")
def tenant(devstack: dict[str, str]) -> Tenant:
    """The dev account that `make up` created (var/dev.env)."""
    return Tenant(
        devstack["TWILIO_ACCOUNT_SID"],
        devstack["TWILIO_AUTH_TOKEN"],
        devstack["TWILIO_API_KEY"],
        devstack["TWILIO_API_SECRET"],
        devstack["MIXDOWN_URL"],
    )


@pytest.fixture(scope="session")
def other_tenant(devstack: dict[str, str]) -> Tenant:
    """A second, unrelated account: nothing of `tenant` may be visible to it."""
    return new_tenant(devstack["MIXDOWN_URL"], "e2e-other")
