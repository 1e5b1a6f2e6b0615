"""A real `python -m services.notifier` process, SIGKILLed mid-retry and mid-attempt, loses nothing and
delivers each callback exactly once after a restart."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from twilio.request_validator import RequestValidator

from libs.auth.store import IdentityStore, migrate_identity
from libs.events.base import Event
from libs.events.models import RoomCreated
from libs.testing.callbacks import Received, Receiver, serve_receiver
from services.notifier.store import DeliveryStore
from services.notifier.tests.integration.events import room_created

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[4]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_notifier(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    handle = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.notifier", cwd=REPO, env=env, stdout=handle, stderr=handle
        )
    finally:
        handle.close()


def ok_for(receiver: Receiver, path: str, event: Event) -> list[Received]:
    return [
        r
        for r in receiver.at(path)
        if r.status == 200 and r.headers.get("i-twilio-idempotency-token") == str(event.event_id)
    ]


@pytest.fixture
async def account(pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str, str]]:
    """(account SID, auth token, master key) of a fresh account in the identity schema."""
    key = secrets.token_bytes(32)
    await migrate_identity(pool)
    identity = IdentityStore(pool, key)
    sid, token = await identity.create_account("notifier-it")
    yield str(sid), token, base64.urlsafe_b64encode(key).decode()
    await pool.execute("DELETE FROM identity.accounts WHERE sid = $1", sid)


async def test_sigkill_mid_retry_then_restart_delivers_exactly_once(
    stack_env: dict[str, str],
    schema: str,
    run_id: str,
    pool: asyncpg.Pool,
    account: tuple[str, str, str],
    publish: Callable[[Event], Awaitable[None]],
    tmp_path: Path,
) -> None:
    account_sid, token, master_key = account
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NOTIFIER_", "POSTGRES_", "KAFKA_"))},
        "POSTGRES_DSN": stack_env["POSTGRES_DSN"],
        "KAFKA_BOOTSTRAP_SERVERS": stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        "MIXDOWN_MASTER_KEY": master_key,
        "NOTIFIER_PORT": str(free_port()),
        "NOTIFIER_DB_SCHEMA": schema,
        "NOTIFIER_CONSUMER_GROUP": f"notifier-it-{run_id}",
        "NOTIFIER_TOPIC_SUFFIX": f"-{run_id}",
        "NOTIFIER_ALLOW_PRIVATE_CALLBACKS": "true",
        "NOTIFIER_BACKOFF_BASE_S": "0.3",
        "NOTIFIER_BACKOFF_CAP_S": "0.6",
        "NOTIFIER_POLL_INTERVAL_S": "0.1",
        "NOTIFIER_LEASE_S": "3",
        "NOTIFIER_HTTP_TIMEOUT_S": "2",
    }
    log = tmp_path / "notifier.log"

    def event(url: str) -> RoomCreated:
        return room_created(url).model_copy(update={"account_sid": account_sid})

    async with serve_receiver() as receiver:
        crashy = receiver.on("/crashy", [500])
        slow = receiver.on("/slow", [503, 200], hang_calls=1)
        first = event(receiver.url("/crashy"))
        second = event(receiver.url("/slow"))
        process = await start_notifier(env, log)
        try:
            await publish(first)
            await publish(second)
            await receiver.wait_for(
                lambda: len(receiver.at("/crashy")) >= 2 and len(receiver.at("/slow")) >= 1
            )
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        assert process.returncode == -signal.SIGKILL
        store = DeliveryStore(pool, schema)
        states = sorted(r.state for r in await store.list())
        assert states == ["delivering", "pending"] or states == ["delivering", "delivering"]

        crashy.statuses = [200]
        crashy.calls = 0
        slow.release.set()  # the killed attempt's connection is gone; its answer is lost
        third = event(receiver.url("/crashy"))
        await publish(third)  # published while the notifier is down: consumed after the restart

        process = await start_notifier(env, log)
        try:
            await receiver.wait_for(
                lambda: all(
                    ok_for(receiver, p, e)
                    for p, e in (("/crashy", first), ("/slow", second), ("/crashy", third))
                ),
                within_s=30,
            )
            await asyncio.sleep(1.0)  # nothing further may arrive
            for path, sent in (("/crashy", first), ("/slow", second), ("/crashy", third)):
                delivered = ok_for(receiver, path, sent)
                assert len(delivered) == 1, (path, sent.event_id)
                assert RequestValidator(token).validate(
                    delivered[0].url, delivered[0].form, delivered[0].headers["x-twilio-signature"]
                )
            rows = await store.list()
            assert sorted(r.state for r in rows) == ["delivered"] * 3
            base = f"http://127.0.0.1:{env['NOTIFIER_PORT']}"
            async with httpx.AsyncClient(base_url=base, timeout=5) as http:
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                metrics = (await http.get("/metrics")).text
                assert 'notifier_deliveries_total{outcome="delivered"}' in metrics
                listed = (await http.get("/internal/callbacks", params={"state": "delivered"})).json()
                assert len(listed["callbacks"]) == 3
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
                raise
        assert process.returncode == 0, log.read_text()[-3000:]
        assert '"service stopped"' in log.read_text()
