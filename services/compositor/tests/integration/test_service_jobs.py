"""The compositor's store, handlers and workers against real PostgreSQL (a uuid-named schema per test):
projections and job intake are idempotent, claims are fair across accounts, only the lease holder finishes
a job, and a worker renders synthesized recordings from an object store into one published output."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from libs.db.migrate import migrate
from libs.db.testing import integration_env, temp_schema
from libs.events.models import (
    CompositionAvailable,
    CompositionRequested,
    CompositionStarted,
    RecordingCompleted,
    RecordingDeleted,
    RecordingStarted,
    RoomCreated,
    RoomEnded,
    RoomRecordingsFinalized,
)
from libs.events.sids import (
    AccountSid,
    CompositionSid,
    HookSid,
    ParticipantSid,
    RecordingSid,
    RoomSid,
    TrackSid,
)
from libs.storage.memory import InMemoryObjectStore
from services.compositor import handlers
from services.compositor.media_io import decode_output
from services.compositor.metrics import CompositorMetrics
from services.compositor.settings import JobSettings
from services.compositor.store import CompositionStore
from services.compositor.tests.media.synth import write_audio, write_video
from services.compositor.worker import JobRunner

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
GRID = {"grid": {"video_sources": ["*"]}}
WORK_DIR = Path(tempfile.gettempdir()) / "compositor-it"


def now() -> datetime:
    return datetime.now(UTC)


def noop() -> None:
    return None


@pytest.fixture
async def store() -> AsyncIterator[CompositionStore]:
    async with temp_schema(integration_env()["POSTGRES_DSN"], prefix="compositor_it_") as (pool, schema):
        await migrate(pool, schema, MIGRATIONS)
        yield CompositionStore(pool, schema, "compositor")


async def outbox_types(store: CompositionStore, sid: str | None = None) -> list[str]:
    rows = await store.pool.fetch(f"SELECT event_type, key FROM {store.schema}.outbox ORDER BY id")  # noqa: S608
    return [r["event_type"] for r in rows if sid is None or r["key"] == sid]


def room_events(account: AccountSid, room: RoomSid) -> tuple[RoomCreated, RoomEnded]:
    created = RoomCreated(
        occurred_at=now(),
        account_sid=account,
        room_sid=room,
        room_name="r",
        room_status="in-progress",
        sequence_number=0,
    )
    ended = RoomEnded(
        occurred_at=now(),
        account_sid=account,
        room_sid=room,
        room_name="r",
        room_status="completed",
        sequence_number=1,
        end_time=now(),
        room_duration=3,
    )
    return created, ended


def recording(
    account: AccountSid, room: RoomSid, kind: str, name: str, key: str | None, offset_ms: int = 0
) -> tuple[RecordingStarted, RecordingCompleted]:
    common = {
        "occurred_at": now(),
        "account_sid": account,
        "recording_sid": RecordingSid.new(),
        "room_sid": room,
        "room_name": "r",
        "participant_sid": ParticipantSid.new(),
        "participant_identity": "alice",
        "source_sid": TrackSid.new(),
        "track_name": name,
        "kind": kind,
        "codec": "VP8" if kind == "video" else "OPUS",
        "container": "mkv" if kind == "video" else "mka",
        "offset_ms": offset_ms,
    }
    started = RecordingStarted.model_validate(common)
    completed = RecordingCompleted.model_validate(
        {**common, "duration_s": 2, "size_bytes": 1, "media_uri": "/v1/Recordings/x/Media", "object_key": key}
    )
    return started, completed


def requested(
    account: AccountSid, room: RoomSid, *, sid: CompositionSid | None = None, hook: bool = True
) -> CompositionRequested:
    return CompositionRequested(
        occurred_at=now(),
        account_sid=account,
        composition_sid=sid or CompositionSid.new(),
        room_sid=room,
        hook_sid=HookSid.new() if hook else None,
        hook_friendly_name="hook" if hook else None,
        video_layout=GRID,
        audio_sources=["*"],
        resolution="320x240",
        format="mp4",
        status_callback="http://127.0.0.1:9/cb",
    )


async def ended_room_with_recordings(
    store: CompositionStore, account: AccountSid, keys: dict[str, str]
) -> RoomSid:
    room = RoomSid.new()
    created, ended = room_events(account, room)
    await handlers.on_event(created, store, now, noop)
    for kind, key in keys.items():
        started, completed = recording(account, room, kind, kind, key)
        await handlers.on_event(started, store, now, noop)
        await handlers.on_event(completed, store, now, noop)
    await handlers.on_event(ended, store, now, noop)
    return room


def runner(
    store: CompositionStore,
    objects: InMemoryObjectStore,
    owner: str = "it-1",
    registry: CollectorRegistry | None = None,
    **settings: object,
) -> JobRunner:
    values: dict[str, object] = {
        "work_dir": str(WORK_DIR),
        "lease_seconds": 30,
        "render_processes": 1,
        "recordings_wait_s": 600,
        "room_settle_s": 0,
    }
    values.update(settings)
    return JobRunner(
        store,
        objects,
        CompositorMetrics(registry or CollectorRegistry()),
        JobSettings.model_validate(values),
        owner,
        now,
    )


async def test_projections_and_hook_requests_are_idempotent(store: CompositionStore) -> None:
    account = AccountSid.new()
    room = RoomSid.new()
    created, ended = room_events(account, room)
    started, completed = recording(account, room, "audio", "mic", "recordings/x.mka")
    for event in (created, started, completed, completed, ended, ended, started):  # redeliveries, reordering
        await handlers.on_event(event, store, now, noop)
    assert await store.recording_counts(room) == {"completed": 1}  # a late "started" never regresses it
    assert await store.room_account(room) == account

    request = requested(account, room)
    await handlers.on_event(request, store, now, noop)
    await handlers.on_event(request, store, now, noop)  # redelivery
    again = request.model_copy(update={"event_id": requested(account, room).event_id})  # re-published
    await handlers.on_event(again, store, now, noop)
    comp = await store.get(account, request.composition_sid)
    assert comp is not None
    assert comp.status == "enqueued"
    assert comp.spec.hook_sid == request.hook_sid
    assert await outbox_types(store, request.composition_sid) == ["composition-enqueued"]
    assert await store.queue_depth() == {"queued": 1}

    await handlers.on_event(
        RecordingDeleted(
            occurred_at=now(), account_sid=account, recording_sid=completed.recording_sid, room_sid=room
        ),
        store,
        now,
        noop,
    )
    assert await store.recording_counts(room) == {"deleted": 1}


async def test_jobs_wait_for_the_recording_set(store: CompositionStore) -> None:
    account = AccountSid.new()
    room = RoomSid.new()
    created, ended = room_events(account, room)
    started, completed = recording(account, room, "audio", "mic", "k")
    for event in (created, started, ended):
        await handlers.on_event(event, store, now, noop)
    await handlers.on_event(requested(account, room), store, now, noop)
    wait = timedelta(minutes=10)
    assert await store.queue_heads(wait) == []  # a recording is still in progress
    await handlers.on_event(completed, store, now, noop)
    assert await store.queue_heads(wait, settle=timedelta(hours=1)) == []  # recording facts may still lag
    assert len(await store.queue_heads(wait)) == 1

    # A request naming its recordings waits for exactly those, even before the room is known to be over.
    other_account = AccountSid.new()
    other = RoomSid.new()
    s2, c2 = recording(other_account, other, "audio", "mic", "k2")
    await handlers.on_event(s2, store, now, noop)
    named = requested(other_account, other).model_copy(update={"recording_sids": [c2.recording_sid]})
    await handlers.on_event(named, store, now, noop)
    assert {h.account_sid for h in await store.queue_heads(wait)} == {account}
    await handlers.on_event(c2, store, now, noop)
    assert {h.account_sid for h in await store.queue_heads(wait)} == {account, other_account}

    # RoomRecordingsFinalized releases the jobs of a room whatever else is known.
    third_account = AccountSid.new()
    third = RoomSid.new()
    s3, _ = recording(third_account, third, "audio", "mic", "k3")
    await handlers.on_event(s3, store, now, noop)
    await handlers.on_event(requested(third_account, third), store, now, noop)
    assert third_account not in {h.account_sid for h in await store.queue_heads(wait)}
    finalized = RoomRecordingsFinalized(
        occurred_at=now(), account_sid=third_account, room_sid=third, room_name="t"
    )
    await handlers.on_event(finalized, store, now, noop)
    assert third_account in {h.account_sid for h in await store.queue_heads(wait)}
    # …and a job that waited longer than the limit is claimable anyway.
    assert len(await store.queue_heads(timedelta(0))) == 3


async def test_claims_are_fair_across_accounts(store: CompositionStore) -> None:
    objects = InMemoryObjectStore()
    busy, quiet = AccountSid.new(), AccountSid.new()
    busy_room = await ended_room_with_recordings(store, busy, {"audio": "a"})
    quiet_room = await ended_room_with_recordings(store, quiet, {"audio": "b"})
    busy_jobs = [requested(busy, busy_room) for _ in range(3)]
    for event in busy_jobs:
        await handlers.on_event(event, store, now, noop)
        await asyncio.sleep(0.01)
    quiet_job = requested(quiet, quiet_room)
    await handlers.on_event(quiet_job, store, now, noop)

    worker = runner(store, objects)
    order = []
    for _ in range(4):
        claim = await worker.claim_next()
        assert claim is not None
        order.append(claim.composition.sid)
    assert order == [busy_jobs[0].composition_sid, quiet_job.composition_sid] + [
        e.composition_sid for e in busy_jobs[1:]
    ]
    assert await worker.claim_next() is None  # everything is leased
    assert await store.queue_depth() == {"running": 4}


async def test_concurrent_workers_of_one_busy_account_all_get_work(store: CompositionStore) -> None:
    objects = InMemoryObjectStore()
    account = AccountSid.new()
    room = await ended_room_with_recordings(store, account, {"audio": "a"})
    for _ in range(3):
        await handlers.on_event(requested(account, room), store, now, noop)
    workers = [runner(store, objects, f"it-{i}", workers=3) for i in range(3)]
    claims = await asyncio.gather(*(w.claim_next() for w in workers))
    assert [c is not None for c in claims] == [True, True, True]
    assert len({c.composition.sid for c in claims if c is not None}) == 3


async def test_only_the_current_lease_holder_finishes(store: CompositionStore) -> None:
    objects = InMemoryObjectStore()
    account = AccountSid.new()
    room = await ended_room_with_recordings(store, account, {"audio": "a"})
    request = requested(account, room)
    await handlers.on_event(request, store, now, noop)
    first = await runner(store, objects, "it-1").claim_next()
    assert first is not None
    assert await runner(store, objects, "it-2").claim_next() is None  # leased
    # The first holder stalls: its lease expires and another instance takes the job over.
    await store.pool.execute(f"UPDATE {store.schema}.jobs SET lease_expires = now() - interval '1 second'")  # noqa: S608
    second = await runner(store, objects, "it-2").claim_next()
    assert second is not None
    assert second.attempts == 2
    assert not await store.renew(first.lease_id, timedelta(seconds=30))

    def available() -> CompositionAvailable:
        return CompositionAvailable(
            occurred_at=now(),
            account_sid=account,
            composition_sid=request.composition_sid,
            room_sid=room,
            duration_s=1,
            size_bytes=1,
            media_uri="/m",
        )

    started = CompositionStarted(
        occurred_at=now(), account_sid=account, composition_sid=request.composition_sid, room_sid=room
    )
    assert await store.start(second, started) is True
    done = {"object_key": "k", "duration": 1, "size": 1, "bitrate": 1, "now": now()}
    assert await store.complete(first, event=available(), **done) is False  # type: ignore[arg-type]  # kwargs
    assert await store.complete(second, event=available(), **done) is True  # type: ignore[arg-type]  # kwargs
    assert await store.complete(second, event=available(), **done) is False  # type: ignore[arg-type]  # kwargs
    types = await outbox_types(store, request.composition_sid)
    assert types == ["composition-enqueued", "composition-started", "composition-available"]
    comp = await store.get(account, request.composition_sid)
    assert comp is not None
    assert comp.status == "completed"


@pytest.mark.media
async def test_worker_renders_and_publishes_once(store: CompositionStore, tmp_path: Path) -> None:
    objects = InMemoryObjectStore()
    account = AccountSid.new()
    video = write_video(tmp_path / "v.mkv", [(0, 2, "red", 160, 120)])
    audio = write_audio(tmp_path / "a.mka", [(0, 2, 440.0)])
    await objects.put_file("recordings/v.mkv", video, "video/x-matroska")
    await objects.put_file("recordings/a.mka", audio, "audio/x-matroska")
    room = await ended_room_with_recordings(
        store, account, {"video": "recordings/v.mkv", "audio": "recordings/a.mka"}
    )
    request = requested(account, room, hook=False)
    await handlers.on_event(request, store, now, noop)
    worker = runner(store, objects)
    claim = await worker.claim_next()
    assert claim is not None
    await worker.process(claim)

    comp = await store.get(account, request.composition_sid)
    assert comp is not None
    assert comp.status == "completed", await outbox_types(store)
    assert comp.duration == 2
    assert comp.size > 0
    assert comp.bitrate > 0
    assert comp.object_key == f"compositions/{account}/{request.composition_sid}.mp4"
    types = await outbox_types(store, request.composition_sid)
    assert types[:2] == ["composition-enqueued", "composition-started"]
    assert types[-1] == "composition-available"
    assert set(types[2:-1]) == {"composition-progress"}
    percents = [
        json.loads(r["payload"])["percentage_done"]
        for r in await store.pool.fetch(
            f"SELECT payload FROM {store.schema}.outbox WHERE event_type = 'composition-progress' ORDER BY id"  # noqa: S608
        )
    ]
    assert percents == sorted(set(percents))
    assert all(p % 10 == 0 and 0 < p < 100 for p in percents)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"".join([c async for c in objects.get_stream(comp.object_key)]))
    decoded = decode_output(out)
    assert decoded.video_codec == "h264"
    assert decoded.audio_codec == "aac"
    assert list(worker.work_root.iterdir()) == []  # scratch files removed
    luma = int(decoded.frames[len(decoded.frames) // 2][1][120, 160])
    assert 60 < luma < 100  # red luma (81) fills the single grid cell


async def test_worker_failures_carry_twilio_codes(store: CompositionStore) -> None:
    objects = InMemoryObjectStore()
    account = AccountSid.new()
    missing = await ended_room_with_recordings(store, account, {"audio": "recordings/gone.mka"})
    empty = RoomSid.new()
    created, ended = room_events(account, empty)
    await handlers.on_event(created, store, now, noop)
    await handlers.on_event(ended, store, now, noop)
    big = await ended_room_with_recordings(store, account, {"audio": "recordings/big.mka"})
    outcomes = {}
    for room in (missing, empty, big):
        request = requested(account, room)
        await handlers.on_event(request, store, now, noop)
        worker = runner(store, objects, max_input_bytes=0 if room == big else 10**9)
        claim = await worker.claim_next()
        assert claim is not None
        await worker.process(claim)
        comp = await store.get(account, request.composition_sid)
        assert comp is not None
        assert comp.status == "failed"
        code = await store.pool.fetchval(
            f"SELECT error_code FROM {store.schema}.compositions WHERE sid = $1",  # noqa: S608
            request.composition_sid,
        )
        outcomes[room] = code
        assert (await outbox_types(store, request.composition_sid))[-1] == "composition-failed"
    assert outcomes == {missing: 53628, empty: 53630, big: 53633}


async def test_deleting_cancels_the_job_and_purge_removes_old_metadata(store: CompositionStore) -> None:
    account = AccountSid.new()
    room = await ended_room_with_recordings(store, account, {"audio": "a"})
    request = requested(account, room)
    await handlers.on_event(request, store, now, noop)
    before = await store.mark_deleted(account, request.composition_sid, now() - timedelta(days=31))
    assert before is not None
    assert before.status == "enqueued"
    assert await store.queue_depth() == {}
    assert await store.mark_deleted(AccountSid.new(), request.composition_sid, now()) is None  # other account
    assert await store.purge_deleted(now() - timedelta(days=30)) == []
    assert await store.get(account, request.composition_sid) is None


@pytest.mark.media
async def test_a_worker_that_lost_its_lease_stops_and_publishes_nothing(
    store: CompositionStore, tmp_path: Path
) -> None:
    objects = InMemoryObjectStore()
    account = AccountSid.new()
    video = write_video(tmp_path / "v.mkv", [(0, 20, "red", 320, 240)])
    await objects.put_file("recordings/long.mkv", video, "video/x-matroska")
    room = await ended_room_with_recordings(store, account, {"video": "recordings/long.mkv"})
    request = requested(account, room)
    await handlers.on_event(request, store, now, noop)
    registry = CollectorRegistry()
    worker = runner(store, objects, registry=registry, lease_seconds=0.3)
    claim = await worker.claim_next()
    assert claim is not None
    task = asyncio.create_task(worker.process(claim))

    async def processing() -> None:
        while True:
            comp = await store.get(account, request.composition_sid)
            if comp is not None and comp.status == "processing":
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(processing(), 10)
    # Another instance takes the job over (as after an expired lease).
    await store.pool.execute(f"UPDATE {store.schema}.jobs SET lease_id = gen_random_uuid()")  # noqa: S608
    started = time.monotonic()
    await asyncio.wait_for(task, 30)
    assert time.monotonic() - started < 10  # stopped early, not after a full render
    assert registry.get_sample_value("compositor_jobs_total", {"outcome": "lost_lease"}) == 1
    comp = await store.get(account, request.composition_sid)
    assert comp is not None
    assert comp.status == "processing"  # still the new holder's to finish
    assert "composition-available" not in await outbox_types(store, request.composition_sid)
    assert await objects.list("compositions/") == []
