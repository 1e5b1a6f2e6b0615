"""Kafka -> notifier (in process) -> local receiver: retries, signature, isolation, order, SSRF refusal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from twilio.request_validator import RequestValidator

from libs.events.base import Event
from libs.events.sids import RoomSid
from libs.testing.callbacks import serve_receiver
from services.notifier.settings import Settings
from services.notifier.tests.integration.conftest import running_notifier, wait_state
from services.notifier.tests.integration.events import ACCOUNT, TOKEN, participant_connected, room_created

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Publish = Callable[[Event], Awaitable[None]]


async def test_failing_receiver_gets_the_callback_signed(
    notifier_settings: Settings, publish: Publish
) -> None:
    async with (
        serve_receiver() as receiver,
        running_notifier(notifier_settings, {ACCOUNT: TOKEN}) as notifier,
    ):
        receiver.on("/flaky", [500, 500, 500, 200])
        receiver.on("/get", [503, 200])
        post_event = room_created(receiver.url("/flaky?tenant=a%20b"))
        get_event = room_created(receiver.url("/get"), method="GET")
        await publish(post_event)
        await publish(get_event)
        await receiver.wait_for(lambda: len(receiver.at("/flaky")) >= 4 and len(receiver.at("/get")) >= 2)
        await wait_state(notifier.store, "delivered", 2)
        flaky = receiver.at("/flaky")
        assert [r.status for r in flaky] == [500, 500, 500, 200]
        validator = RequestValidator(TOKEN)
        for request in flaky:
            assert request.method == "POST"
            assert request.form["StatusCallbackEvent"] == "room-created"
            assert request.form["RoomSid"] == str(post_event.room_sid)
            assert request.headers["i-twilio-idempotency-token"] == str(post_event.event_id)
            assert request.headers["user-agent"] == "Mixdown-Notifier/1"
            assert validator.validate(request.url, request.form, request.headers["x-twilio-signature"])
        get = receiver.at("/get")[-1]
        assert get.method == "GET"
        assert get.query["RoomSid"] == str(get_event.room_sid)
        assert validator.validate(get.url, {}, get.headers["x-twilio-signature"])
        await asyncio.sleep(0.5)  # nothing more arrives after the 2xx
        assert len(receiver.at("/flaky")) == 4
        attempts = {r.event_id: r.attempts for r in await notifier.store.list(state="delivered")}
        assert attempts == {post_event.event_id: 4, get_event.event_id: 2}
        metrics = notifier.metrics.registry
        assert metrics.get_sample_value("notifier_deliveries_total", {"outcome": "delivered"}) == 2
        assert metrics.get_sample_value("notifier_deliveries_total", {"outcome": "retried"}) == 4


async def test_hanging_endpoint_does_not_delay_others(notifier_settings: Settings, publish: Publish) -> None:
    settings = notifier_settings.model_copy(update={"per_host_concurrency": 2, "global_concurrency": 4})
    async with serve_receiver() as receiver, running_notifier(settings, {ACCOUNT: TOKEN}):
        receiver.on("/hang", hang=True)
        # "localhost" and "127.0.0.1" are different hosts for the per-host limit.
        for _ in range(4):
            await publish(room_created(f"http://localhost:{receiver.port}/hang"))
        await receiver.wait_for(lambda: len(receiver.at("/hang")) >= 2, within_s=10)
        started = asyncio.get_running_loop().time()
        for _ in range(6):
            await publish(room_created(receiver.url("/fast")))
        await receiver.wait_for(lambda: len(receiver.at("/fast")) >= 6, within_s=10)
        elapsed = asyncio.get_running_loop().time() - started
        assert elapsed < 3.0
        assert len(receiver.at("/hang")) == 2  # the slow host got only its own two slots


async def test_order_per_room_is_kept_under_retries(notifier_settings: Settings, publish: Publish) -> None:
    async with (
        serve_receiver() as receiver,
        running_notifier(notifier_settings, {ACCOUNT: TOKEN}) as notifier,
    ):
        receiver.on("/room", [200, 500, 429, 500, 200])
        room = RoomSid.new()
        url = receiver.url("/room")
        await publish(room_created(url, room=room, seq=0))
        for seq in range(1, 6):
            await publish(participant_connected(url, room, seq))
        await wait_state(notifier.store, "delivered", 6)
        sequence = [int(r.form["SequenceNumber"]) for r in receiver.at("/room")]
        assert sequence == [0, 1, 1, 1, 1, 2, 3, 4, 5]
        delivered = [int(r.form["SequenceNumber"]) for r in receiver.at("/room") if r.status == 200]
        assert delivered == [0, 1, 2, 3, 4, 5]


async def test_loopback_refused_when_not_allowed(notifier_settings: Settings, publish: Publish) -> None:
    settings = notifier_settings.model_copy(update={"allow_private_callbacks": False})
    async with serve_receiver() as receiver, running_notifier(settings, {ACCOUNT: TOKEN}) as notifier:
        await publish(room_created(receiver.url("/private")))
        await wait_state(notifier.store, "dead", 1)
        (row,) = await notifier.store.list(state="dead")
        assert row.last_error == "refused: address refused: loopback"
        assert row.last_status is None
        assert receiver.received == []
