"""Dead letters: listed and replayed with the operator CLI (a real subprocess), then delivered."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from libs.events.base import Event
from libs.testing.callbacks import serve_receiver
from services.notifier import domain
from services.notifier.api import internal_router
from services.notifier.settings import Settings
from services.notifier.store import DeliveryStore
from services.notifier.tests.integration.conftest import running_notifier, wait_state
from services.notifier.tests.integration.events import ACCOUNT, TOKEN, room_created

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


async def test_internal_api_lists_and_replays(pool: asyncpg.Pool, schema: str) -> None:
    store = DeliveryStore(pool, schema)
    wakes: list[int] = []
    app = FastAPI()
    app.include_router(internal_router(store, lambda: wakes.append(1)))
    callback = domain.plan_callback(room_created("https://hooks.example.com/cb"))
    assert callback is not None
    assert await store.record(callback.event_id, callback)
    (record,) = await store.claim_due(limit=1, host_slots={}, per_host_limit=1, lease=timedelta(seconds=30))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifier") as http:
        conflict = await http.post(f"/internal/callbacks/{record.id}/replay")
        assert conflict.status_code == 409
        assert await store.mark_dead(record, 400, "http status 400")
        listed = (await http.get("/internal/callbacks", params={"state": "dead"})).json()["callbacks"]
        assert [c["id"] for c in listed] == [record.id]
        assert listed[0]["params"]["StatusCallbackEvent"] == "room-created"
        assert (await http.get("/internal/callbacks", params={"state": "bogus"})).status_code == 422
        replayed = await http.post(f"/internal/callbacks/{record.id}/replay")
        assert replayed.status_code == 200
        assert replayed.json()["state"] == "pending"
        assert wakes == [1]
        assert (await http.post("/internal/callbacks/999999/replay")).status_code == 404
        assert (await http.get("/internal/callbacks/999999")).status_code == 404
        shown = (await http.get(f"/internal/callbacks/{record.id}")).json()
        assert (shown["state"], shown["attempts"], shown["last_error"]) == ("pending", 0, "http status 400")
