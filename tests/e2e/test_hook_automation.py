"""Composition Hooks compose finished rooms: one request per enabled hook, never twice for a room, and a
signed composition-hook-failed callback when a room has nothing to compose. Real Kafka, Postgres, the
running hook service and the notifier."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from twilio.request_validator import RequestValidator

from libs.events.base import Event
from libs.events.codec import decode, encode
from libs.events.models import CompositionHookFailed, CompositionRequested, RoomRecordingsFinalized
from libs.events.sids import RecordingSid, RoomSid
from libs.events.topics import ALL_TOPICS, COMPOSITION_EVENTS, COMPOSITION_JOBS
from libs.testing.callbacks import serve_receiver
from tests.e2e.conftest import Tenant, new_tenant

pytestmark = pytest.mark.e2e


async def _publish(bootstrap: str, event: Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            event.topic,
            encode(event),
            key=event.key().encode(),
            headers=[("event_type", event.type.encode()), ("event_id", str(event.event_id).encode())],
        )
    finally:
        await producer.stop()


async def _tail(bootstrap: str, topics: list[str]) -> AIOKafkaConsumer:
    """A consumer positioned at the current end of ``topics`` (sees only what is published from now)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        counts = {spec.name: spec.partitions for spec in ALL_TOPICS}
        partitions = [TopicPartition(topic, p) for topic in topics for p in range(counts[topic])]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before anything is published
            await consumer.position(tp)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _collect(consumer: AIOKafkaConsumer, account_sid: str, seconds: float) -> list[Event]:
    """Every event of ``account_sid`` that arrives within ``seconds``."""
    seen: list[Event] = []
    end = asyncio.get_running_loop().time() + seconds
    while (left := end - asyncio.get_running_loop().time()) > 0:
        batches = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
        for tp, records in batches.items():
            for record in records:
                event = decode(tp.topic, record.value)
                if event.account_sid == account_sid:
                    seen.append(event)
    return seen


def _finalized(tenant: Tenant, room: RoomSid, recordings: list[RecordingSid]) -> RoomRecordingsFinalized:
    return RoomRecordingsFinalized(
        occurred_at=datetime.now(UTC),
        account_sid=tenant.account_sid,
        room_sid=room,
        room_name=f"room-{room[-6:]}",
        completed_recording_sids=recordings,
    )


async def test_enabled_hooks_compose_a_finished_room_once(devstack: dict[str, str]) -> None:
    bootstrap = devstack["KAFKA_BOOTSTRAP_SERVERS"]
    tenant = new_tenant(devstack["MIXDOWN_URL"], f"hooks-{uuid.uuid4().hex[:6]}")
    hooks = tenant.client().video.v1.composition_hooks
    enabled = hooks.create(
        friendly_name="grid", video_layout={"grid": {"video_sources": ["*"]}}, format="mp4", trim=False
    )
    hooks.create(friendly_name="off", audio_sources=["*"], enabled=False)
    room, recordings = RoomSid.new(), [RecordingSid.new(), RecordingSid.new()]

    consumer = await _tail(bootstrap, [COMPOSITION_JOBS])
    try:
        event = _finalized(tenant, room, recordings)
        await _publish(bootstrap, event)
        await _publish(bootstrap, event)  # redelivery of the same fact
        await _publish(bootstrap, _finalized(tenant, room, recordings))  # a second fact for the same room
        seen = await _collect(consumer, tenant.account_sid, 12.0)
    finally:
        await consumer.stop()

    requests = [e for e in seen if isinstance(e, CompositionRequested)]
    assert len(requests) == 1, seen
    request = requests[0]
    assert request.hook_sid == enabled.sid
    assert request.room_sid == room
    assert request.recording_sids == recordings
    assert (request.format, request.trim, request.resolution) == ("mp4", False, "640x480")
    assert request.video_layout["grid"]["video_sources"] == ["*"]


async def test_a_room_without_recordings_sends_a_signed_hook_failed_callback(
    devstack: dict[str, str],
) -> None:
    bootstrap = devstack["KAFKA_BOOTSTRAP_SERVERS"]
    tenant = new_tenant(devstack["MIXDOWN_URL"], f"hookfail-{uuid.uuid4().hex[:6]}")
    async with serve_receiver() as receiver:
        receiver.on("/hook-events")
        hook = tenant.client().video.v1.composition_hooks.create(
            friendly_name="fails", audio_sources=["*"], status_callback=receiver.url("/hook-events")
        )
        room = RoomSid.new()
        consumer = await _tail(bootstrap, [COMPOSITION_EVENTS])
        try:
            await _publish(bootstrap, _finalized(tenant, room, []))
            seen = await _collect(consumer, tenant.account_sid, 8.0)
        finally:
            await consumer.stop()
        failed = [e for e in seen if isinstance(e, CompositionHookFailed)]
        assert len(failed) == 1
        assert failed[0].error_code == 53631

        await receiver.wait_for(lambda: bool(receiver.at("/hook-events")), within_s=30)
        callback = receiver.at("/hook-events")[0]
        assert callback.method == "POST"
        assert callback.form["StatusCallbackEvent"] == "composition-hook-failed"
        assert callback.form["AccountSid"] == tenant.account_sid
        assert callback.form["RoomSid"] == room
        assert callback.form["CompositionHookSid"] == hook.sid
        assert callback.form["ErrorCode"] == "53631"
        validator = RequestValidator(tenant.auth_token)
        assert validator.validate(callback.url, callback.form, callback.headers["x-twilio-signature"])
