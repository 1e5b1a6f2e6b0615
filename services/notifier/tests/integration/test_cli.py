"""Dead letters: listed and replayed with the operator CLI (a real subprocess), then delivered."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from libs.events.base import Event
from services.notifier.settings import Settings
from services.notifier.tests.integration.conftest import running_notifier, wait_state
from services.notifier.tests.integration.events import ACCOUNT, TOKEN, room_created
from services.notifier.tests.integration.receiver import serve_receiver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[4]


async def cli(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "POSTGRES_DSN": settings.postgres.dsn,
        "NOTIFIER_DB_SCHEMA": settings.db_schema,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.notifier.cli", "callbacks", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_dead_letter_listed_and_replayed_via_cli(
    notifier_settings: Settings, publish: Callable[[Event], Awaitable[None]]
) -> None:
    async with (
        serve_receiver() as receiver,
        running_notifier(notifier_settings, {ACCOUNT: TOKEN}) as notifier,
    ):
        gone = receiver.on("/gone", [410])
        event = room_created(receiver.url("/gone"))
        await publish(event)
        await wait_state(notifier.store, "dead", 1)

        code, out = await cli(notifier_settings, "list", "--state", "dead", "--json")
        assert code == 0, out
        (dead,) = json.loads(out)["callbacks"]
        assert dead["event_id"] == str(event.event_id)
        assert dead["last_status"] == 410
        assert dead["params"]["StatusCallbackEvent"] == "room-created"

        code, out = await cli(notifier_settings, "list", "--state", "dead")
        assert code == 0 and "http status 410" in out

        code, out = await cli(notifier_settings, "show", str(dead["id"]))
        assert code == 0 and json.loads(out)["state"] == "dead"

        code, out = await cli(notifier_settings, "replay", "999999999")
        assert code == 1 and "no delivery" in out

        gone.statuses = [200]
        code, out = await cli(notifier_settings, "replay", str(dead["id"]))
        assert code == 0, out
        await receiver.wait_for(lambda: any(r.status == 200 for r in receiver.at("/gone")))
        await wait_state(notifier.store, "delivered", 1)
        assert [r.status for r in receiver.at("/gone")] == [410, 200]

        code, out = await cli(notifier_settings, "replay", "--all-dead")
        assert code == 0 and "replayed 0" in out
