"""Compositions through the edge with the official twilio client, against the running devstack.

There is no recorder in these tests: each test publishes RoomCreated / Recording* / RoomEnded facts for a
synthetic room to Kafka and uploads tiny synthesized recordings (solid-colour VP8 .mkv, Opus tone .mka) to
MinIO under the keys the events name. The compositor renders them; the notifier delivers the callbacks to a
local receiver, which checks their order and signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from libs.config import S3Settings
from libs.events.base import Event
from libs.events.codec import encode
from libs.events.models import (
    CompositionRequested,
    RecordingCompleted,
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
from libs.storage import MinioObjectStore
from libs.testing.callbacks import Receiver, serve_receiver
from libs.twilio.openapi import validate_list, validate_resource
from services.compositor.media_io import decode_output
from services.compositor.tests.media.synth import COLOURS, write_audio, write_video
from tests.e2e.conftest import REPO, Tenant, new_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.media]

DEVSTACK = REPO / "deploy" / "devstack" / "devstack"
PID_FILE = REPO / "var" / "run" / "compositor.pid"
TWO_UP = {
    "left": {"x_pos": 0, "y_pos": 0, "width": 160, "height": 240, "video_sources": ["alice"]},
    "right": {"x_pos": 160, "y_pos": 0, "width": 160, "height": 240, "video_sources": ["bob"]},
}


# ------------------------------------------------------------------ callback receiver


def events_of(receiver: Receiver, sid: str) -> list[str]:
    """The StatusCallbackEvent of every callback received for composition ``sid``, in arrival order."""
    return [
        c.form.get("StatusCallbackEvent", "")
        for c in receiver.received
        if c.form.get("CompositionSid") == sid
    ]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as app:
        yield app


@pytest.fixture(scope="module")
def tenant(devstack: dict[str, str]) -> Tenant:
    """A fresh account: the dev account may have enabled Composition Hooks that would compose our rooms."""
    return new_tenant(devstack["MIXDOWN_URL"], "e2e-compositions")


# ------------------------------------------------------------------ synthetic rooms


@dataclass
class SyntheticRoom:
    sid: RoomSid
    account_sid: str
    keys: list[str]
    recording_sids: list[RecordingSid]


def _store(env: dict[str, str]) -> MinioObjectStore:
    return MinioObjectStore(
        S3Settings(
            endpoint=env.get("S3_ENDPOINT", "127.0.0.1:9000"),
            access_key=env.get("S3_ACCESS_KEY", "minioadmin"),
            secret_key=SecretStr(env.get("S3_SECRET_KEY", "minioadmin")),
            bucket=env.get("S3_BUCKET", "mixdown-media"),
        )
    )


async def publish(env: dict[str, str], events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                event.topic,
                encode(event),
                key=event.key().encode(),
                headers=[("event_type", event.type.encode())],
            )
    finally:
        await producer.stop()


async def make_room(
    env: dict[str, str], tenant: Tenant, tmp: Path, seconds: float, *, size: tuple[int, int] = (160, 120)
) -> SyntheticRoom:
    """An ended room with two participants: alice (red video + 440 Hz) and bob (blue video, 1 s later)."""
    account = AccountSid(tenant.account_sid)
    room = RoomSid.new()
    now = datetime.now(UTC)
    width, height = size
    files = {
        ("alice", "video", 0): write_video(tmp / f"{room}-a.mkv", [(0, seconds, "red", width, height)]),
        ("alice-mic", "audio", 0): write_audio(tmp / f"{room}-a.mka", [(0, seconds, 440.0)]),
        ("bob", "video", 1000): write_video(tmp / f"{room}-b.mkv", [(0, seconds - 1, "blue", width, height)]),
    }
    store = _store(env)
    base = {"occurred_at": now, "account_sid": account, "room_sid": room, "room_name": f"e2e-{room[-6:]}"}
    events: list[Event] = [RoomCreated(**base, room_status="in-progress", sequence_number=0)]
    keys = []
    recordings = []
    for (name, kind, offset), path in files.items():
        recording = RecordingSid.new()
        recordings.append(recording)
        key = f"recordings/{account}/{room}/{recording}.{'mkv' if kind == 'video' else 'mka'}"
        await store.put_file(key, path, "video/x-matroska" if kind == "video" else "audio/x-matroska")
        keys.append(key)
        track = {
            **base,
            "recording_sid": recording,
            "participant_sid": ParticipantSid.new(),
            "participant_identity": name,
            "source_sid": TrackSid.new(),
            "track_name": name,
            "kind": kind,
            "codec": "VP8" if kind == "video" else "OPUS",
            "container": "mkv" if kind == "video" else "mka",
            "offset_ms": 1_700_000_000_000 + offset,
        }
        events.append(RecordingStarted.model_validate(track))
        events.append(
            RecordingCompleted.model_validate(
                {
                    **track,
                    "duration_s": round(seconds),
                    "size_bytes": path.stat().st_size,
                    "media_uri": f"/v1/Recordings/{recording}/Media",
                    "object_key": key,
                }
            )
        )
    events.append(
        RoomEnded(
            **base,
            room_status="completed",
            sequence_number=1,
            end_time=now + timedelta(seconds=seconds),
            room_duration=round(seconds),
        )
    )
    # What the recorder sends once every recording of the ended room has its outcome.
    events.append(
        RoomRecordingsFinalized(
            occurred_at=now,
            account_sid=account,
            room_sid=room,
            room_name=str(base["room_name"]),
            completed_recording_sids=recordings,
        )
    )
    await publish(env, events)
    return SyntheticRoom(room, account, keys, recordings)


async def aget(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url, **kwargs)


async def apost(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, **kwargs)


async def wait_for(check: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.25)


def fetch_status(tenant: Tenant, sid: str) -> str:
    """The composition's status; "unavailable" while the compositor restarts (the edge answers 502)."""
    try:
        status: str = tenant.client().video.v1.compositions(sid).fetch().status
    except TwilioRestException as exc:
        if exc.status >= 500:
            return "unavailable"
        raise
    return status


async def create_when_room_known(tenant: Tenant, **params: Any) -> Any:
    """The compositor learns the room from Kafka shortly after it is published: retry the 404 briefly."""
    client = tenant.client()
    deadline = time.monotonic() + 20
    while True:
        try:
            return client.video.v1.compositions.create(**params)
        except TwilioRestException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def colour_at(frame: Any, x: int, y: int, width: int, height: int) -> tuple[int, int, int]:
    flat = frame.reshape(-1)
    luma = width * height
    u = flat[luma : luma + luma // 4].reshape(height // 2, width // 2)
    v = flat[luma + luma // 4 :].reshape(height // 2, width // 2)
    return (
        round(float(frame[y - 2 : y + 2, x - 2 : x + 2].mean())),
        round(float(u[y // 2 - 1 : y // 2 + 1, x // 2 - 1 : x // 2 + 1].mean())),
        round(float(v[y // 2 - 1 : y // 2 + 1, x // 2 - 1 : x // 2 + 1].mean())),
    )


def near(actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 16) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# ------------------------------------------------------------------ tests


async def test_composition_lifecycle_media_and_callbacks(
    devstack: dict[str, str], tenant: Tenant, other_tenant: Tenant, receiver: Receiver, tmp_path: Path
) -> None:
    room = await make_room(devstack, tenant, tmp_path, 3.0)
    callback = receiver.url("/composition")
    comp = await create_when_room_known(
        tenant,
        room_sid=room.sid,
        video_layout=TWO_UP,
        audio_sources=["alice-mic"],
        resolution="320x240",
        format="mp4",
        trim=False,
        status_callback=callback,
    )
    assert comp.sid.startswith("CJ")
    assert comp.status == "enqueued"
    assert comp.room_sid == room.sid
    assert comp.duration == 0
    assert comp.size == 0
    assert comp.date_completed is None
    assert comp.video_layout["left"]["video_sources"] == ["alice"]
    assert comp.video_layout["left"]["reuse"] == "show_oldest"
    assert comp.links["media"] == f"{tenant.base_url}/v1/Compositions/{comp.sid}/Media"

    async def completed() -> bool:
        return fetch_status(tenant, comp.sid) in ("completed", "failed")

    await wait_for(completed, 90, "the composition to finish")
    done = tenant.client().video.v1.compositions(comp.sid).fetch()
    assert done.status == "completed"
    assert done.duration == 3
    assert done.size > 0
    assert done.bitrate > 0
    assert done.date_completed is not None

    auth = (tenant.api_key, tenant.api_secret)
    raw = await aget(f"{tenant.base_url}/v1/Compositions/{comp.sid}", auth=auth)
    validate_resource("video.v1.composition", raw.json(), require_all=True, forbid_extra=True)

    # Media: 302 + JSON redirect_to; the presigned URL downloads the file as an attachment.
    media = await aget(f"{tenant.base_url}/v1/Compositions/{comp.sid}/Media", auth=auth, params={"Ttl": 60})
    assert media.status_code == 302
    url = media.json()["redirect_to"]
    assert media.headers["location"] == url
    download = await aget(url)
    assert download.status_code == 200
    assert f"{comp.sid}.mp4" in download.headers["content-disposition"]
    assert download.headers["content-disposition"].startswith("attachment")
    out = tmp_path / "out.mp4"
    out.write_bytes(download.content)
    decoded = decode_output(out)
    assert decoded.video_codec == "h264"
    assert decoded.audio_codec == "aac"
    late = min(decoded.frames, key=lambda f: abs(f[0] - 2.0))[1]
    early = min(decoded.frames, key=lambda f: abs(f[0] - 0.5))[1]
    assert near(colour_at(late, 80, 120, 320, 240), COLOURS["red"])
    assert near(colour_at(late, 240, 120, 320, 240), COLOURS["blue"])
    assert near(colour_at(early, 240, 120, 320, 240), (16, 128, 128))  # bob has not joined yet at 0.5 s
    spectrum = np.abs(np.fft.rfft(decoded.audio[48000:96000]))
    assert abs(float(np.fft.rfftfreq(48000, 1 / 48000)[int(spectrum.argmax())]) - 440) < 5
    assert (
        await aget(f"{tenant.base_url}/v1/Compositions/{comp.sid}/Media", auth=auth, params={"Ttl": 0})
    ).status_code == 400

    # Callbacks, in order and signed with the account's auth token.
    async def available_arrived() -> bool:
        return "composition-available" in events_of(receiver, comp.sid)

    await wait_for(available_arrived, 30, "the composition-available callback")
    sequence = events_of(receiver, comp.sid)
    assert sequence[0] == "composition-enqueued"
    assert sequence[1] == "composition-started"
    assert sequence[-1] == "composition-available"
    assert sequence[2:-1] and set(sequence[2:-1]) == {"composition-progress"}
    validator = RequestValidator(tenant.auth_token)
    mine = [c for c in receiver.received if c.form.get("CompositionSid") == comp.sid]
    for call in mine:
        assert validator.validate(callback, call.form, call.headers["x-twilio-signature"]), call.form
    percents = [int(c.form["PercentageDone"]) for c in mine if "PercentageDone" in c.form]
    assert percents == sorted(set(percents))
    assert all(p % 10 == 0 and 0 < p < 100 for p in percents)
    assert all(int(c.form["SecondsRemaining"]) >= 0 for c in mine if "PercentageDone" in c.form)
    final = mine[-1].form
    assert final["Duration"] == "3"
    assert int(final["Size"]) == done.size
    assert final["MediaUri"] == f"/v1/Compositions/{comp.sid}/Media"
    assert final["RoomSid"] == room.sid

    # Another account sees nothing.
    with pytest.raises(TwilioRestException) as info:
        other_tenant.client().video.v1.compositions(comp.sid).fetch()
    assert info.value.status == 404

    # Delete: media gone, status deleted, metadata kept.
    store = _store(devstack)
    key = f"compositions/{tenant.account_sid}/{comp.sid}.mp4"
    assert await store.stat(key) is not None
    assert tenant.client().video.v1.compositions(comp.sid).delete() is True
    deleted = tenant.client().video.v1.compositions(comp.sid).fetch()
    assert deleted.status == "deleted"
    assert deleted.date_deleted is not None
    assert await store.stat(key) is None
    assert (await aget(f"{tenant.base_url}/v1/Compositions/{comp.sid}/Media", auth=auth)).status_code == 404


async def test_list_filters_paging_and_errors(
    devstack: dict[str, str], tenant: Tenant, other_tenant: Tenant, tmp_path: Path
) -> None:
    room = await make_room(devstack, tenant, tmp_path, 2.0)
    client = tenant.client()
    first = await create_when_room_known(tenant, room_sid=room.sid, audio_sources=["*"], format="webm")
    second = client.video.v1.compositions.create(
        room_sid=room.sid, video_layout={"grid": {"video_sources": ["*"]}}, resolution="320x240"
    )
    listed = client.video.v1.compositions.list(room_sid=room.sid, page_size=1)
    assert [c.sid for c in listed] == [first.sid, second.sid]  # two pages of one, oldest first
    auth = (tenant.api_key, tenant.api_secret)
    page = await aget(
        f"{tenant.base_url}/v1/Compositions", auth=auth, params={"RoomSid": room.sid, "PageSize": 1}
    )
    body = page.json()
    validate_list("/v1/Compositions", body)
    assert body["meta"]["key"] == "compositions"
    assert body["meta"]["next_page_url"] is not None
    assert f"RoomSid={room.sid}" in body["meta"]["next_page_url"]
    recent = client.video.v1.compositions.list(
        room_sid=room.sid, date_created_after=datetime.now(UTC) - timedelta(hours=1)
    )
    assert len(recent) == 2
    assert (
        client.video.v1.compositions.list(room_sid=room.sid, date_created_before=datetime(2020, 1, 1)) == []
    )
    assert client.video.v1.compositions.list(room_sid=room.sid, status="deleted") == []
    assert other_tenant.client().video.v1.compositions.list(room_sid=room.sid) == []
    assert (
        await aget(f"{tenant.base_url}/v1/Compositions", auth=auth, params={"PageSize": 101})
    ).status_code == 400
    assert (
        await aget(f"{tenant.base_url}/v1/Compositions", auth=auth, params={"Status": "nope"})
    ).status_code == 400

    def error(tenant_: Tenant, **params: Any) -> tuple[int, int]:
        with pytest.raises(TwilioRestException) as info:
            tenant_.client().video.v1.compositions.create(**params)
        return info.value.status, info.value.code

    grid = {"grid": {"video_sources": ["*"]}}
    assert error(tenant, room_sid=RoomSid.new(), video_layout=grid) == (404, 20404)
    assert error(other_tenant, room_sid=room.sid, video_layout=grid) == (404, 20404)
    assert error(tenant, room_sid="RM123", video_layout=grid) == (400, 20001)
    assert error(tenant, room_sid=room.sid) == (400, 20001)  # neither a layout nor audio sources
    assert error(tenant, room_sid=room.sid, video_layout={"r": {"video_sources": []}}) == (400, 53640)
    assert error(tenant, room_sid=room.sid, video_layout=grid, resolution="1920x1080") == (400, 53641)
    assert error(tenant, room_sid=room.sid, video_layout=grid, format="avi") == (400, 20001)
    hd = await apost(
        f"{tenant.base_url}/v1/Compositions",
        auth=auth,
        data={"RoomSid": room.sid, "AudioSources": "*", "Resolution": "1920x1080", "MixdownAllowHd": "true"},
    )
    assert hd.status_code == 201, hd.text
    assert hd.json()["resolution"] == "1920x1080"
    validate_resource("video.v1.composition", hd.json(), require_all=True, forbid_extra=True)
    for sid in (first.sid, second.sid, hd.json()["sid"]):
        assert client.video.v1.compositions(sid).delete() is True


def _compositor_pid() -> int:
    return int(PID_FILE.read_text().split()[0])  # "pid start-time"


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the engine's forkserver, its render workers, the resource tracker)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found.extend(children)
                todo.extend(children)
    return found


def _devstack(*args: str) -> None:
    subprocess.run([str(DEVSTACK), *args], cwd=REPO, check=True, capture_output=True, timeout=120)  # noqa: S603


async def test_killed_compositor_loses_nothing(
    devstack: dict[str, str], tenant: Tenant, receiver: Receiver, tmp_path: Path
) -> None:
    room = await make_room(devstack, tenant, tmp_path, 30.0, size=(320, 240))
    comp = await create_when_room_known(
        tenant,
        room_sid=room.sid,
        video_layout={"grid": {"video_sources": ["*"]}},
        audio_sources=["*"],
        resolution="640x480",
        format="mp4",
        status_callback=receiver.url("/killed"),
    )

    async def processing() -> bool:
        return fetch_status(tenant, comp.sid) == "processing"

    await wait_for(processing, 60, "the job to start")
    await asyncio.sleep(0.5)  # inside the render (about 5 s on 2 cores)
    assert fetch_status(tenant, comp.sid) == "processing"
    victim = _compositor_pid()
    helpers = _descendants(victim)
    os.kill(victim, signal.SIGKILL)
    for helper in helpers:  # what a container runtime would reap with the killed process
        with contextlib.suppress(ProcessLookupError):
            os.kill(helper, signal.SIGKILL)
    with contextlib.suppress(subprocess.CalledProcessError):
        await asyncio.to_thread(_devstack, "stop", "compositor")  # clears the stale pid file
    await asyncio.to_thread(_devstack, "start", "compositor")

    async def finished() -> bool:
        return fetch_status(tenant, comp.sid) in ("completed", "failed")

    await wait_for(finished, 120, "the retried job to finish")
    done = tenant.client().video.v1.compositions(comp.sid).fetch()
    assert done.status == "completed"
    assert done.duration == 30

    async def available_arrived() -> bool:
        return "composition-available" in events_of(receiver, comp.sid)

    await wait_for(available_arrived, 30, "the composition-available callback")
    await asyncio.sleep(2.0)  # a duplicate would arrive right behind it
    events = events_of(receiver, comp.sid)
    assert events.count("composition-available") == 1
    assert events.count("composition-started") == 1
    assert events[0] == "composition-enqueued"
    progress = [
        int(c.form["PercentageDone"])
        for c in receiver.received
        if c.form.get("CompositionSid") == comp.sid and "PercentageDone" in c.form
    ]
    assert progress == sorted(set(progress))  # the retry never reports a lower percentage again
    conn = await asyncpg.connect(
        devstack.get("POSTGRES_DSN", "postgresql://mixdown:mixdown@127.0.0.1:5433/mixdown")
    )
    try:
        attempts = await conn.fetchval(
            "SELECT attempts FROM compositor.jobs WHERE composition_sid = $1", comp.sid
        )
    finally:
        await conn.close()
    assert attempts == 2  # the job really was interrupted and taken up again
    port = devstack.get("COMPOSITOR_PORT", "8103")
    scratch = Path(tempfile.gettempdir()) / f"mixdown-compositor-{socket.gethostname()}_{port}"
    assert list(scratch.iterdir()) == []  # the restarted instance cleared what the killed one left
    objects = await _store(devstack).list(f"compositions/{tenant.account_sid}/{comp.sid}")
    assert [o.key for o in objects] == [f"compositions/{tenant.account_sid}/{comp.sid}.mp4"]
    assert tenant.client().video.v1.compositions(comp.sid).delete() is True


async def test_hook_requests_from_kafka_are_composed_once(
    devstack: dict[str, str], tenant: Tenant, receiver: Receiver, tmp_path: Path
) -> None:
    room = await make_room(devstack, tenant, tmp_path, 2.0)
    request = CompositionRequested(
        occurred_at=datetime.now(UTC),
        account_sid=AccountSid(tenant.account_sid),
        composition_sid=CompositionSid.new(),
        room_sid=room.sid,
        hook_sid=HookSid.new(),
        hook_friendly_name="e2e-hook",
        audio_sources=["*"],
        format="webm",
        status_callback=receiver.url("/hook"),
        recording_sids=room.recording_sids,
    )
    # Published twice (a producer retry after a crash): one composition, one enqueued callback.
    await publish(devstack, [request, request.model_copy(update={"event_id": uuid.uuid4()})])

    async def finished() -> bool:
        try:
            return fetch_status(tenant, request.composition_sid) in ("completed", "failed")
        except TwilioRestException:
            return False

    await wait_for(finished, 60, "the hook composition to finish")
    comp = tenant.client().video.v1.compositions(request.composition_sid).fetch()
    assert comp.status == "completed"
    assert comp.format == "webm"
    assert comp.video_layout == {}
    assert comp.status_callback == receiver.url("/hook")

    async def available_arrived() -> bool:
        return "composition-available" in events_of(receiver, request.composition_sid)

    await wait_for(available_arrived, 30, "the composition-available callback")
    events = events_of(receiver, request.composition_sid)
    assert events[:2] == ["composition-enqueued", "composition-started"]
    assert events.count("composition-enqueued") == 1
    hook_calls = [c for c in receiver.received if c.form.get("CompositionSid") == request.composition_sid]
    assert {c.form.get("CompositionHookSid") for c in hook_calls} == {request.hook_sid}
    metrics = (await aget(f"http://127.0.0.1:{devstack.get('COMPOSITOR_PORT', '8103')}/metrics")).text
    assert 'compositor_jobs_total{outcome="completed"}' in metrics
    assert "compositor_queue_depth" in metrics
    assert "compositor_realtime_factor_bucket" in metrics
    assert tenant.client().video.v1.compositions(request.composition_sid).delete() is True
