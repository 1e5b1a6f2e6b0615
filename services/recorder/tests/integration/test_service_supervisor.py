"""The recorder service against real Postgres: handlers → supervisor → RTP over UDP → finalize → outbox.

Janus is replaced by a fake forwarder (the test itself sends the RTP a forwarder would send), storage by
the in-memory object store. Checks recording intervals across rule changes, offsets, the outbox facts,
RoomRecordingsFinalized, adoption of an orphaned recording (owner lock released) and two supervisors
never capturing one track twice.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from prometheus_client import CollectorRegistry

from libs.db.migrate import migrate
from libs.db.testing import integration_env, temp_schema
from libs.events.base import Event
from libs.events.codec import decode
from libs.events.models import (
    RecordingCompleted,
    RecordingDeleted,
    RecordingFailed,
    RecordingRule,
    RecordingRulesUpdated,
    RecordingStarted,
    RoomCreated,
    RoomEnded,
    RoomRecordingsFinalized,
    TrackAdded,
    TrackRemoved,
)
from libs.events.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid
from libs.storage.memory import InMemoryObjectStore
from services.recorder.depacketize import Codec
from services.recorder.domain import (
    MediaOutcome,
    complete,
    completed_event,
    new_recording,
    recording_prefix,
    started_event,
)
from services.recorder.forwarding import ForwardingError
from services.recorder.handlers import handle
from services.recorder.metrics import RecorderMetrics
from services.recorder.receiver import PortAllocator
from services.recorder.sessions import CaptureSupervisor, OwnerLock, SupervisorConfig
from services.recorder.store import RecorderStore, RecordingFilter
from services.recorder.tests.media.synthetic import encode_tone, encode_video, rtp_stream
from services.recorder.track_recorder import TrackRecorder, TrackRecorderConfig

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
ACCOUNT = AccountSid("AC" + "c" * 32)


def now() -> datetime:
    return datetime.now(UTC)


class FakeForwarder:
    """Records forward requests; the test plays Janus by sending RTP to the requested port."""

    def __init__(self) -> None:
        self.active: dict[int, tuple[str, str, int, int | None]] = {}
        self.stopped: list[int] = []
        self.refuse = 0  # refuse this many start requests, like Janus without the feed
        self._ids = iter(range(1000, 10**6))

    async def start(
        self, room_id: str, publisher_id: str, mid: str, host: str, rtp_port: int, rtcp_port: int | None
    ) -> int:
        if self.refuse:
            self.refuse -= 1
            raise ForwardingError("janus error 428: No such feed")
        stream_id = next(self._ids)
        self.active[stream_id] = (room_id, mid, rtp_port, rtcp_port)
        return stream_id

    async def stop(self, room_id: str, publisher_id: str, stream_id: int) -> None:
        self.active.pop(stream_id, None)
        self.stopped.append(stream_id)

    def port_for(self, mid: str) -> int:
        ports = [port for (_, m, port, _) in self.active.values() if m == mid]
        assert len(ports) == 1, f"expected one forwarder for mid {mid}: {self.active}"
        return ports[0]


class Harness:
    def __init__(self, store: RecorderStore, media: InMemoryObjectStore, forwarder: FakeForwarder) -> None:
        self.store = store
        self.media = media
        self.forwarder = forwarder
        self.room = RoomSid.new()
        self.alice = ParticipantSid.new()
        self.seq = 0
        self.locks: list[OwnerLock] = []

    async def owner(self) -> OwnerLock:
        """An acquired owner lock, released at teardown (a held pool connection would block pool.close)."""
        lock = OwnerLock(self.store.pool)
        await lock.acquire()
        self.locks.append(lock)
        return lock

    def supervisor(self, owner: OwnerLock) -> CaptureSupervisor:
        first = 30000 + secrets.randbelow(1000) * 20
        return CaptureSupervisor(
            self.store,
            self.media,
            self.forwarder,
            PortAllocator("127.0.0.1", first, first + 19),
            owner,
            RecorderMetrics.create(CollectorRegistry()),
            SupervisorConfig(forward_host="127.0.0.1", recorder=TrackRecorderConfig(chunk_seconds=0.5)),
            now,
        )

    def common(self) -> dict[str, object]:
        self.seq += 1
        return {
            "occurred_at": now(),
            "account_sid": ACCOUNT,
            "room_sid": self.room,
            "room_name": "daily",
            "room_status": "in-progress",
            "sequence_number": self.seq,
            "status_callback": "https://cb.example/room",
        }

    def created(self, rules: list[RecordingRule]) -> RoomCreated:
        return RoomCreated.model_validate({**self.common(), "recording_rules": rules})

    def rules(self, rules: list[RecordingRule]) -> RecordingRulesUpdated:
        return RecordingRulesUpdated.model_validate({**self.common(), "recording_rules": rules})

    def track(self, sid: TrackSid, kind: str, codec: str, mid: str, *, removed: bool = False) -> Event:
        fields = {
            **self.common(),
            "participant_sid": self.alice,
            "participant_identity": "alice",
            "track_sid": sid,
            "track_kind": kind,
            "track_name": f"{kind}-{mid}",
            "janus_publisher_id": "4242",
            "stream_mid": mid,
        }
        if removed:
            return TrackRemoved.model_validate(fields)
        return TrackAdded.model_validate({**fields, "codec": codec})

    def ended(self) -> RoomEnded:
        return RoomEnded.model_validate(
            {**self.common(), "room_status": "completed", "end_time": now(), "room_duration": 9}
        )

    async def outbox(self) -> list[Event]:
        rows = await self.store.pool.fetch(
            f"SELECT topic, payload FROM {self.store.schema}.outbox ORDER BY id"  # noqa: S608
        )
        return [decode(r["topic"], bytes(r["payload"])) for r in rows]


async def send(port: int, datagrams: list[bytes], pace: float = 0.0) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for n, data in enumerate(datagrams):
            sock.sendto(data, ("127.0.0.1", port))
            if n % 20 == 19:
                await asyncio.sleep(pace)
    finally:
        sock.close()


def tone_rtp(seconds: float) -> list[bytes]:
    return [d.data for d in rtp_stream(Codec.OPUS, encode_tone(seconds), ssrc=0x1234)]


def vp8_rtp(frames: int) -> list[bytes]:
    encoded = [f.data for f in encode_video(Codec.VP8, frames, gop=15)]
    return [d.data for d in rtp_stream(Codec.VP8, encoded, ssrc=0x5678)]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with temp_schema(integration_env()["POSTGRES_DSN"], prefix="recorder_it_") as (pool, schema):
        await migrate(pool, schema, MIGRATIONS)
        h = Harness(RecorderStore(pool, schema), InMemoryObjectStore(), FakeForwarder())
        try:
            yield h
        finally:
            for lock in h.locks:
                await lock.release()


def noop() -> None:
    return None


async def test_rules_toggle_two_recordings_and_room_finalized(harness: Harness) -> None:
    h = harness
    sup = h.supervisor(await h.owner())
    mic, cam = TrackSid.new(), TrackSid.new()
    await handle(h.created([RecordingRule(type="include", all=True)]), store=h.store, wake=noop)
    await handle(h.track(mic, "audio", "opus", "0"), store=h.store, wake=noop)
    await handle(h.track(cam, "video", "VP8", "1"), store=h.store, wake=noop)
    await sup.reconcile_once()
    assert len(sup.sessions) == 2
    await asyncio.gather(
        send(h.forwarder.port_for("0"), tone_rtp(2.0)), send(h.forwarder.port_for("1"), vp8_rtp(45))
    )
    await asyncio.sleep(0.3)

    # Exclude video: the camera's recording stops and completes; the microphone keeps recording.
    exclude_video = [RecordingRule(type="include", all=True), RecordingRule(type="exclude", kind="video")]
    await handle(h.rules(exclude_video), store=h.store, wake=noop)
    await sup.reconcile_once()
    await sup.drain()
    assert [s.recording.source_sid for s in sup.sessions.values()] == [mic]
    # Include it again: a second Recording of the same track, with a later offset.
    await handle(h.rules([RecordingRule(type="include", all=True)]), store=h.store, wake=noop)
    await sup.reconcile_once()
    assert len(sup.sessions) == 2
    await send(h.forwarder.port_for("1"), vp8_rtp(30))
    await asyncio.sleep(0.3)
    # Redelivered events change nothing.
    await handle(h.track(cam, "video", "VP8", "1", removed=True), store=h.store, wake=noop)
    await sup.reconcile_once()
    await sup.drain()
    ended = h.ended()
    await handle(ended, store=h.store, wake=noop)
    await handle(ended, store=h.store, wake=noop)
    await sup.reconcile_once()
    await sup.drain()
    await sup.reconcile_once()

    events = await h.outbox()
    started = [e for e in events if isinstance(e, RecordingStarted)]
    completed = [e for e in events if isinstance(e, RecordingCompleted)]
    finalized = [e for e in events if isinstance(e, RoomRecordingsFinalized)]
    assert sorted(str(e.source_sid) for e in started) == sorted([str(mic), str(cam), str(cam)])
    assert started[-1].source_sid == cam, "the re-included camera starts last"
    assert sorted(str(e.source_sid) for e in completed) == sorted([str(mic), str(cam), str(cam)])
    assert all(e.status_callback == "https://cb.example/room" for e in started + completed)
    cams = sorted((e for e in completed if e.source_sid == cam), key=lambda e: e.offset_ms)
    assert cams[1].offset_ms - cams[0].offset_ms >= 300
    assert cams[0].recording_sid != cams[1].recording_sid
    audio = next(e for e in completed if e.source_sid == mic)
    assert audio.container == "mka" and audio.codec == "OPUS" and audio.duration_s == 2
    assert cams[0].container == "mkv" and cams[0].duration_s in (1, 2) and cams[0].size_bytes > 1000
    assert len(finalized) == 1
    assert sorted(finalized[0].completed_recording_sids) == sorted(e.recording_sid for e in completed)
    # The stored video decodes: 45 frames at 30 fps from the first keyframe.
    key = cams[0].object_key
    assert key is not None
    data = b"".join([c async for c in h.media.get_stream(key)])
    with av.open(io.BytesIO(data), mode="r") as container:
        frames = len(list(container.decode(video=0)))
    assert frames == 45
    assert not h.forwarder.active, "every forwarder was stopped"


async def test_orphan_is_adopted_and_a_second_supervisor_never_double_captures(harness: Harness) -> None:
    h = harness
    dead, alive_a, alive_b = await h.owner(), await h.owner(), await h.owner()
    a, b = h.supervisor(alive_a), h.supervisor(alive_b)
    mic = TrackSid.new()
    await handle(h.created([RecordingRule(type="include", kind="audio")]), store=h.store, wake=noop)
    # A recording owned by a process that is about to die, with 1 s of chunks already stored.
    room = (await h.store.live_rooms())[0]
    tracks = await h.store.tracks(h.room)
    assert tracks == []
    await handle(h.track(mic, "audio", "OPUS", "0"), store=h.store, wake=noop)
    tracks = await h.store.tracks(h.room)
    orphan = new_recording(room, tracks[0], RecordingSid.new(), now())
    assert await h.store.claim(orphan, dead.key, started_event(orphan))
    sock = PortAllocator("127.0.0.1", 31990, 31999).allocate(1)[0]
    rec = TrackRecorder(
        Codec.OPUS, h.media, orphan.prefix, sock, None, TrackRecorderConfig(chunk_seconds=0.5)
    )
    await rec.start()
    await send(rec.rtp_port, [d.data for d in rtp_stream(Codec.OPUS, encode_tone(1.0), ssrc=9)])
    await asyncio.sleep(0.3)
    await rec.stop()
    assert (
        await h.store.claim(
            new_recording(room, tracks[0], RecordingSid.new(), now()), alive_b.key, started_event(orphan)
        )
        is False
    ), "a track has one open capture"
    # While the owner lives, nobody touches its recording.
    await a.reconcile_once()
    await b.reconcile_once()
    assert not a.sessions and not b.sessions
    await dead.release()  # the process died: its connection (and lock) is gone
    await asyncio.gather(a.reconcile_once(), b.reconcile_once())
    await a.drain()
    await b.drain()
    await asyncio.gather(a.reconcile_once(), b.reconcile_once())
    assert len(a.sessions) + len(b.sessions) == 1, "the still-wanted track is captured again, once"
    events = await h.outbox()
    completed = [e for e in events if isinstance(e, RecordingCompleted)]
    assert [e.recording_sid for e in completed] == [orphan.sid]
    assert completed[0].duration_s == 1
    assert len([e for e in events if isinstance(e, RecordingStarted)]) == 2
    assert recording_prefix(ACCOUNT, orphan.sid) == orphan.prefix
    # Room ends with nothing received on the new capture: it fails, then the room is final.
    await handle(h.ended(), store=h.store, wake=noop)
    for sup in (a, b):
        await sup.reconcile_once()
        await sup.drain()
    for sup in (a, b):
        await sup.reconcile_once()
    events = await h.outbox()
    failed = [e for e in events if isinstance(e, RecordingFailed)]
    finals = [e for e in events if isinstance(e, RoomRecordingsFinalized)]
    assert len(failed) == 1 and failed[0].error_code == 53100
    assert len(finals) == 1 and finals[0].completed_recording_sids == [orphan.sid]
    assert finals[0].failed_recording_sids == [failed[0].recording_sid]


async def test_graceful_stop_completes_running_captures(harness: Harness) -> None:
    h = harness
    owner = OwnerLock(h.store.pool)
    sup = h.supervisor(owner)
    mic = TrackSid.new()
    await handle(h.created([RecordingRule(type="include", all=True)]), store=h.store, wake=noop)
    await handle(h.track(mic, "audio", "OPUS", "0"), store=h.store, wake=noop)
    stop = asyncio.Event()
    running = asyncio.create_task(sup.run(stop))

    async def capturing() -> None:
        while not sup.sessions:  # noqa: ASYNC110  # the supervisor exposes no event for this
            await asyncio.sleep(0.05)

    await asyncio.wait_for(capturing(), 10)
    await send(h.forwarder.port_for("0"), tone_rtp(1.0))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(running, 30)
    events = await h.outbox()
    completed = [e for e in events if isinstance(e, RecordingCompleted)]
    assert [e.source_sid for e in completed] == [mic]
    assert not h.forwarder.active
    assert await h.store.pool.fetchval("SELECT pg_try_advisory_lock($1)", owner.key), "lock released"


async def test_find_filters_paging_delete_and_purge(harness: Harness) -> None:
    h = harness
    await handle(h.created([RecordingRule(type="include", all=True)]), store=h.store, wake=noop)
    room = (await h.store.live_rooms())[0]
    mic, cam = TrackSid.new(), TrackSid.new()
    await handle(h.track(mic, "audio", "OPUS", "0"), store=h.store, wake=noop)
    await handle(h.track(cam, "video", "VP8", "1"), store=h.store, wake=noop)
    tracks = {t.track_sid: t for t in await h.store.tracks(h.room)}
    recs = []
    for sid in (mic, cam):
        rec = new_recording(room, tracks[sid], RecordingSid.new(), now())
        assert await h.store.claim(rec, 1, started_event(rec))
        recs.append(rec)
    done = complete(recs[0], MediaOutcome("k", 1000, 5, 1_000_000), now())
    assert await h.store.finish(done, completed_event(done))
    f = RecordingFilter
    assert [r.sid for r in await h.store.find(ACCOUNT, f(media_type="video"), after=None, limit=10)] == [
        recs[1].sid
    ]
    assert [r.sid for r in await h.store.find(ACCOUNT, f(status="completed"), after=None, limit=10)] == [
        recs[0].sid
    ]
    grouped = f(grouping_sids=(str(h.room), str(h.alice)))
    assert len(await h.store.find(ACCOUNT, grouped, after=None, limit=10)) == 2
    assert (
        await h.store.find(ACCOUNT, f(grouping_sids=(str(ParticipantSid.new()),)), after=None, limit=10) == []
    )
    assert await h.store.find(AccountSid.new(), f(), after=None, limit=10) == [], "other accounts see nothing"
    first = await h.store.find(ACCOUNT, f(), after=None, limit=1)
    rest = await h.store.find(ACCOUNT, f(), after=(first[0].date_created, first[0].sid), limit=10)
    assert len(first) == 1 and len(rest) == 1 and rest[0].sid != first[0].sid
    deleted = RecordingDeleted(
        occurred_at=now(), account_sid=ACCOUNT, recording_sid=done.sid, room_sid=h.room
    )
    assert not await h.store.mark_deleted(ACCOUNT, recs[1].sid, now(), deleted), "processing: not deletable"
    assert await h.store.mark_deleted(ACCOUNT, done.sid, now(), deleted)
    stored = await h.store.get(ACCOUNT, done.sid)
    assert stored is not None and stored.status == "deleted" and stored.deleted_at is not None
    assert await h.store.purge_deleted(now() - timedelta(days=30)) == 0
    assert await h.store.purge_deleted(now() + timedelta(seconds=1)) == 1
    assert await h.store.get(ACCOUNT, done.sid) is None
    assert [type(e).__name__ for e in await h.outbox()][-1] == "RecordingDeleted"


async def test_refused_forward_fails_once_then_backs_off(harness: Harness) -> None:
    h = harness
    sup = h.supervisor(await h.owner())
    h.forwarder.refuse = 1
    await handle(h.created([RecordingRule(type="include", all=True)]), store=h.store, wake=noop)
    await handle(h.track(TrackSid.new(), "audio", "OPUS", "0"), store=h.store, wake=noop)
    await sup.reconcile_once()
    await sup.drain()
    for _ in range(3):  # within the 2 s backoff: no new attempt
        await sup.reconcile_once()
    events = await h.outbox()
    failed = [e for e in events if isinstance(e, RecordingFailed)]
    assert len(failed) == 1 and failed[0].error_code == 53101
    assert not sup.sessions

    async def retried() -> None:
        while not sup.sessions:  # noqa: ASYNC110  # polling the supervisor's own tick
            await sup.reconcile_once()
            await asyncio.sleep(0.2)

    await asyncio.wait_for(retried(), 5)
    assert len([e for e in await h.outbox() if isinstance(e, RecordingStarted)]) == 2
    await sup.shutdown()
