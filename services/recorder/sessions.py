"""Live captures of this process and the loop that makes them match the rules (the supervisor).

Every recorder process runs ``CaptureSupervisor.run``: on each tick (every ``interval`` seconds, or at once
when a handler calls ``wake``) it compares, per live room, the tracks the rules want with the open
recordings (``domain.plan``) and then

- claims and starts a capture for each wanted track without one: a ``recordings`` row with
  ``capture_open`` (a partial unique index allows one per track across all processes) and RecordingStarted
  in one transaction, then UDP sockets, a ``TrackRecorder`` and Janus ``rtp_forward``;
- stops its own captures that are no longer wanted: ``stop_rtp_forward``, stop the recorder, finalize the
  chunks into one file, then RecordingCompleted (or RecordingFailed when nothing playable arrived);
- adopts processing recordings whose owner process is gone and finalizes them from their chunks;
- emits RoomRecordingsFinalized for an ended room once none of its recordings is processing.

Ownership: each process holds a session-level Postgres advisory lock on its random ``owner_key`` for its
whole life. A process killed with ``kill -9`` loses its connection and so its lock; any other process (or its
own restart) sees the lock free and takes over. A taken-over capture is not resumed: its recording is
finalized from the chunks already stored, and the still-wanted track gets a new Recording (new RT SID and
offset) on the same tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from asyncpg.exceptions._base import InternalClientError
from asyncpg.pool import PoolConnectionProxy

from libs.events.sids import RecordingSid, TrackSid
from services.recorder.chunks import MediaStore
from services.recorder.depacketize import Codec
from services.recorder.domain import (
    ERROR_CAPTURE,
    ERROR_NO_MEDIA,
    MediaOutcome,
    OpenCapture,
    Recording,
    RoomView,
    TrackView,
    all_settled,
    complete,
    completed_event,
    fail,
    failed_event,
    finalized_event,
    new_recording,
    plan,
    started_event,
)
from services.recorder.errors import ChunkFormatError, EmptyRecordingError, RecorderError
from services.recorder.finalize import finalize
from services.recorder.forwarding import ForwardingError, StreamForwarder
from services.recorder.metrics import RecorderMetrics
from services.recorder.receiver import PortAllocator
from services.recorder.store import OwnedCapture, RecorderStore
from services.recorder.track_recorder import TrackRecorder, TrackRecorderConfig

logger = logging.getLogger(__name__)
MAX_FORWARD_BACKOFF_S = 300.0


class OwnerLock:
    """This process's ownership token: an advisory lock held on a dedicated connection."""

    def __init__(self, pool: asyncpg.Pool, key: int | None = None) -> None:
        self._pool = pool
        self.key = key if key is not None else secrets.randbits(62) + 1
        self._conn: PoolConnectionProxy[asyncpg.Record] | None = None
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        conn = await self._pool.acquire()
        await conn.execute("SELECT pg_advisory_lock($1)", self.key)
        self._conn = conn

    def _usable(self) -> bool:
        """Whether the lock's connection still lives. After a Postgres restart asyncpg detaches the broken
        connection from its pool proxy, and every call on the proxy (is_closed included) raises."""
        if self._conn is None:
            return False
        try:
            return not self._conn.is_closed()
        except asyncpg.InterfaceError:
            return False

    async def ensure(self) -> None:
        """Re-take the lock on a fresh connection if the old one broke (Postgres restart)."""
        if self._usable():
            return
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._pool.release(self._conn)
            self._conn = None
        await self.acquire()
        logger.warning("owner lock re-acquired", extra={"owner_key": self.key})

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute("SELECT pg_advisory_unlock($1)", self.key)
            await self._pool.release(self._conn)
            self._conn = None

    async def alive(self, key: int | None) -> bool:
        """Does a process still hold ``key``? (None: a row without owner counts as orphaned.)"""
        if key is None:
            return False
        if key == self.key:
            return True
        if self._conn is None:
            raise RuntimeError("owner lock not acquired")
        async with self._lock:
            try:
                free = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
                if free:
                    await self._conn.execute("SELECT pg_advisory_unlock($1)", key)
            except InternalClientError as exc:
                # a connection whose backend died mid-operation can be left "busy" for good: close it, so
                # ensure() takes the lock on a fresh one, and report it as the interface error it is
                with contextlib.suppress(Exception):
                    self._conn.terminate()
                raise asyncpg.InterfaceError(f"owner lock connection broken: {exc}") from exc
        return not free


@dataclass
class Session:
    """One capture running in this process."""

    recording: Recording
    recorder: TrackRecorder
    ports: list[int]
    janus_room: str
    publisher_id: str
    stream_id: int | None = None
    start_error: str | None = None  # capture never started (Janus refused): fail with ERROR_CAPTURE
    counted: dict[str, int] = field(default_factory=lambda: {"packets": 0, "bytes": 0, "lost": 0})


@dataclass(frozen=True)
class SupervisorConfig:
    forward_host: str = "10.77.0.254"
    interval: float = 1.0
    recorder: TrackRecorderConfig = field(default_factory=TrackRecorderConfig)


class CaptureSupervisor:
    """Starts, stops, adopts and finalizes captures; see the module docstring."""

    def __init__(
        self,
        store: RecorderStore,
        media: MediaStore,
        forwarder: StreamForwarder,
        ports: PortAllocator,
        owner: OwnerLock,
        metrics: RecorderMetrics,
        config: SupervisorConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._media = media
        self._forwarder = forwarder
        self._ports = ports
        self._owner = owner
        self._metrics = metrics
        self._config = config
        self._now = now
        self._sessions: dict[RecordingSid, Session] = {}
        self._finishing: dict[RecordingSid, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        # Tracks whose rtp_forward failed: (failures, monotonic time of the next attempt). Each failed
        # attempt is a failed Recording, so retries back off (2, 4, 8 … 300 s) instead of every tick.
        self._backoff: dict[TrackSid, tuple[int, float]] = {}

    @property
    def sessions(self) -> dict[RecordingSid, Session]:
        return self._sessions

    def wake(self) -> None:
        """Reconcile as soon as possible (a handler changed the projection)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until ``stop``; then stop and finalize this process's captures."""
        await self._owner.acquire()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self._owner.ensure()
                    await self.reconcile_once()
                except Exception:  # the supervisor is an edge: log, then retry on the next tick
                    logger.exception("reconcile failed")
                with contextlib.suppress(TimeoutError):
                    waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                    try:
                        await asyncio.wait(
                            waiters, timeout=self._config.interval, return_when="FIRST_COMPLETED"
                        )
                    finally:
                        for w in waiters:
                            w.cancel()
        finally:
            await self.shutdown()
            await self._owner.release()

    async def shutdown(self) -> None:
        """Graceful stop: end every capture and finish its recording."""
        for sid in list(self._sessions):
            self._spawn_stop(sid)
        if self._finishing:
            await asyncio.gather(*self._finishing.values(), return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the stops and finalizations in flight (tests)."""
        while self._finishing:
            await asyncio.gather(*list(self._finishing.values()), return_exceptions=True)

    # ---- one tick ---------------------------------------------------------------------------------------

    async def reconcile_once(self) -> None:
        self._count_traffic()
        processing = await self._store.processing()
        closed: set[RecordingSid] = set()
        for cap in processing:
            if await self._adopt_if_orphaned(cap):
                closed.add(cap.recording.sid)
        for room in await self._store.live_rooms():
            opens = [
                OpenCapture(c.recording.sid, c.recording.source_sid)
                for c in processing
                if c.recording.room_sid == room.room_sid
                and c.recording.capture_open
                and c.recording.sid not in closed
                and c.recording.sid not in self._finishing
            ]
            decided = plan(room, await self._store.tracks(room.room_sid), opens)
            for sid in decided.stop:
                if sid in self._sessions:
                    self._spawn_stop(sid)
            for track in decided.start:
                failures, retry_at = self._backoff.get(track.track_sid, (0, 0.0))
                if failures and time.monotonic() < retry_at:
                    continue
                await self._start(room, track)
            if room.ended:
                await self._maybe_finalize_room(room)

    async def _adopt_if_orphaned(self, cap: OwnedCapture) -> bool:
        sid = cap.recording.sid
        if sid in self._sessions or sid in self._finishing:
            return False
        if cap.owner_key == self._owner.key:
            # Ours, but no session and no task: a finalization that failed transiently. Retry it.
            self._spawn_finish(cap.recording)
            return True
        if await self._owner.alive(cap.owner_key):
            return False
        rec = await self._store.take_over(sid, cap.owner_key, self._owner.key)
        if rec is None:
            return False
        logger.info("adopted orphaned recording", extra={"recording_sid": sid, "owner_key": cap.owner_key})
        if cap.janus_room and cap.janus_publisher_id and cap.janus_stream_id is not None:
            await self._forwarder.stop(cap.janus_room, cap.janus_publisher_id, cap.janus_stream_id)
        self._spawn_finish(rec)
        return True

    async def _start(self, room: RoomView, track: TrackView) -> None:
        rec = new_recording(room, track, RecordingSid.new(), self._now())
        if not await self._store.claim(rec, self._owner.key, started_event(rec)):
            return  # another process captures this track
        codec = Codec(rec.codec)
        try:
            socks = self._ports.allocate(2 if codec.is_video else 1)
        except RecorderError:
            logger.exception("no port for capture", extra={"recording_sid": rec.sid})
            await self._store.close_capture(rec.sid)
            await self._record_failure(rec, ERROR_CAPTURE, "No free port to receive media")
            return
        recorder = TrackRecorder(
            codec,
            self._media,
            rec.prefix,
            socks[0],
            socks[1] if len(socks) > 1 else None,
            self._config.recorder,
        )
        ports = [recorder.rtp_port] + ([recorder.rtcp_port] if recorder.rtcp_port is not None else [])
        assert track.janus_publisher_id is not None and track.stream_mid is not None  # noqa: S101  # plan()
        session = Session(rec, recorder, ports, str(room.room_sid), track.janus_publisher_id)
        self._sessions[rec.sid] = session
        self._metrics.active_tracks.labels(rec.kind).inc()
        await recorder.start()
        try:
            session.stream_id = await self._forwarder.start(
                session.janus_room,
                session.publisher_id,
                track.stream_mid,
                self._config.forward_host,
                recorder.rtp_port,
                recorder.rtcp_port,
            )
        except ForwardingError as exc:
            failures = self._backoff.get(track.track_sid, (0, 0.0))[0] + 1
            delay = min(MAX_FORWARD_BACKOFF_S, 2.0**failures)
            self._backoff[track.track_sid] = (failures, time.monotonic() + delay)
            logger.warning(
                "rtp_forward failed",
                extra={"recording_sid": rec.sid, "error": str(exc), "retry_in_s": delay},
            )
            session.start_error = "Janus refused to forward the track"
            self._spawn_stop(rec.sid)
            return
        self._backoff.pop(track.track_sid, None)
        await self._store.set_forwarder(rec.sid, session.janus_room, session.publisher_id, session.stream_id)
        logger.info(
            "capture started",
            extra={"recording_sid": rec.sid, "track_sid": track.track_sid, "codec": rec.codec},
        )

    def _spawn_stop(self, sid: RecordingSid) -> None:
        session = self._sessions.pop(sid)
        self._finishing[sid] = asyncio.get_running_loop().create_task(self._stop(session), name=f"stop-{sid}")

    def _spawn_finish(self, rec: Recording) -> None:
        self._finishing[rec.sid] = asyncio.get_running_loop().create_task(
            self._finish_task(rec), name=f"finish-{rec.sid}"
        )

    async def _stop(self, session: Session) -> None:
        rec = session.recording
        try:
            await self._store.close_capture(rec.sid)
            if session.stream_id is not None:
                await self._forwarder.stop(session.janus_room, session.publisher_id, session.stream_id)
            try:
                await session.recorder.stop()
            except RecorderError as exc:  # uploads incomplete: finalize what is stored
                logger.warning("capture stop incomplete", extra={"recording_sid": rec.sid, "error": str(exc)})
            self._count_session(session)
            self._ports.release(session.ports)
            self._metrics.active_tracks.labels(rec.kind).dec()
            if session.start_error is not None:
                await self._media.delete_prefix(rec.prefix + "/")
                await self._record_failure(rec, ERROR_CAPTURE, session.start_error)
            else:
                await self._finish(rec)
        finally:
            self._finishing.pop(rec.sid, None)

    async def _finish_task(self, rec: Recording) -> None:
        try:
            await self._finish(rec)
        finally:
            self._finishing.pop(rec.sid, None)

    async def _finish(self, rec: Recording) -> None:
        started = time.monotonic()
        try:
            result = await finalize(self._media, rec.prefix)
        except EmptyRecordingError:
            await self._record_failure(rec, ERROR_NO_MEDIA, "No media was received for this track")
            return
        except ChunkFormatError:
            logger.exception("recording media unusable", extra={"recording_sid": rec.sid})
            await self._record_failure(rec, ERROR_CAPTURE, "The recorded media could not be stored")
            return
        except Exception:  # storage down: stays processing, the next tick retries
            logger.exception("finalize failed, will retry", extra={"recording_sid": rec.sid})
            return
        self._metrics.finalize_seconds.observe(time.monotonic() - started)
        media = MediaOutcome(result.key, result.duration_ms, result.size_bytes, result.start_wallclock_us)
        done = complete(rec, media, self._now())
        await self._store.finish(done, completed_event(done))
        self._metrics.recordings.labels("completed").inc()
        logger.info(
            "recording completed",
            extra={"recording_sid": rec.sid, "duration_s": done.duration_s, "size": done.size_bytes},
        )
        self.wake()

    async def _record_failure(self, rec: Recording, code: int, message: str) -> None:
        failed = fail(rec, self._now())
        await self._store.finish(failed, failed_event(failed, code, message))
        self._metrics.recordings.labels("failed").inc()
        logger.info("recording failed", extra={"recording_sid": rec.sid, "code": code})
        self.wake()

    async def _maybe_finalize_room(self, room: RoomView) -> None:
        if any(s.recording.room_sid == room.room_sid for s in self._sessions.values()):
            return
        recordings = await self._store.room_recordings(room.room_sid)
        if not all_settled(recordings):
            return
        fact = finalized_event(room, recordings, self._now())
        if await self._store.finalize_room(room.room_sid, fact.occurred_at, fact):
            logger.info(
                "room recordings finalized",
                extra={"room_sid": room.room_sid, "recordings": len(fact.completed_recording_sids)},
            )

    # ---- metrics ----------------------------------------------------------------------------------------

    def _count_traffic(self) -> None:
        for session in self._sessions.values():
            self._count_session(session)

    def _count_session(self, session: Session) -> None:
        stats = session.recorder.stats()
        kind = session.recording.kind
        now = {"packets": stats.packets, "bytes": stats.bytes, "lost": stats.lost}
        for name, counter in (
            ("packets", self._metrics.packets),
            ("bytes", self._metrics.bytes),
            ("lost", self._metrics.lost),
        ):
            delta = now[name] - session.counted[name]
            if delta > 0:
                counter.labels(kind).inc(delta)
        session.counted = now
