"""Composition workers: claim jobs from the durable queue under a lease, render, publish the outcome.

Each instance runs ``COMPOSITOR_WORKERS`` loops. A loop picks the next job fairly across accounts
(domain.fair_order), claims it with a lease renewed while it renders, downloads the room's recordings to a
temporary directory, calls ``render.compose`` in a thread (the engine fans out to worker processes), streams
the output to the object store, then finishes with a conditional update: only the current lease holder can
complete or fail the composition, so exactly one composition-available is published even when a lease
expired and another instance re-rendered the job. A killed instance loses nothing: its lease expires and
any instance claims the job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TypedDict

import asyncpg

from libs.events.base import HttpMethod
from libs.events.models import (
    CompositionAvailable,
    CompositionFailed,
    CompositionProgressed,
    CompositionStarted,
)
from libs.events.sids import AccountSid, CompositionSid, HookSid, RoomSid
from libs.storage.errors import ObjectNotFound, StorageError
from libs.storage.port import ObjectStore
from services.compositor import render
from services.compositor.domain import (
    CODE_INTERNAL,
    CODE_NO_SOURCES,
    CODE_RECORDINGS_DELETED,
    CODE_TOO_LARGE,
    Composition,
    fair_order,
    media_key,
    next_progress,
)
from services.compositor.errors import CompositorError, PermanentError
from services.compositor.job import CompositionJob, CompositionResult, SourceTrack
from services.compositor.metrics import CompositorMetrics
from services.compositor.settings import JobSettings
from services.compositor.store import Claim, CompositionStore, Recording

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}


class Failure(Exception):  # noqa: N818  # an outcome, not a bug
    """The composition fails permanently with a Twilio error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RenderAborted(CompositorError):  # noqa: N818  # an outcome, not a bug
    """Raised inside the render thread (through its progress callback) to stop a render nobody wants:
    the lease was lost or the service is stopping. A CompositorError, so the engine passes it through
    unchanged (it wraps other exceptions into MediaError)."""


def default_instance_id(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


class _Common(TypedDict):
    account_sid: AccountSid
    composition_sid: CompositionSid
    room_sid: RoomSid
    hook_sid: HookSid | None
    hook_friendly_name: str | None
    status_callback: str | None
    status_callback_method: HttpMethod


def _common(comp: Composition) -> _Common:
    spec = comp.spec
    return {
        "account_sid": comp.account_sid,
        "composition_sid": comp.sid,
        "room_sid": spec.room_sid,
        "hook_sid": spec.hook_sid,
        "hook_friendly_name": spec.hook_friendly_name,
        "status_callback": spec.status_callback,
        "status_callback_method": spec.status_callback_method,
    }


def _write_chunk(handle: IO[bytes], chunk: bytes) -> None:
    handle.write(chunk)


class JobRunner:
    """The worker loops of one compositor instance."""

    def __init__(
        self,
        store: CompositionStore,
        objects: ObjectStore,
        metrics: CompositorMetrics,
        settings: JobSettings,
        owner: str,
        clock: Clock,
    ) -> None:
        self._store = store
        self._objects = objects
        self._metrics = metrics
        self._settings = settings
        self._owner = owner
        self._now = clock
        self._wake = asyncio.Event()
        self._lease = timedelta(seconds=settings.lease_seconds)

    def wake(self) -> None:
        """New work may be claimable (called by the consumer's handlers)."""
        self._wake.set()

    @property
    def work_root(self) -> Path:
        """This instance's scratch directory (one per instance name, so a restart can clear it safely)."""
        base = Path(self._settings.work_dir or tempfile.gettempdir())
        return base / ("mixdown-compositor-" + re.sub(r"[^A-Za-z0-9_.-]", "_", self._owner))

    async def run(self) -> None:
        """Clear what a killed predecessor left on disk, expire its leases, then run the worker loops
        until cancelled."""
        await asyncio.to_thread(shutil.rmtree, self.work_root, True)
        await asyncio.to_thread(self.work_root.mkdir, parents=True, exist_ok=True)
        expired = await self._store.expire_leases_of(self._owner)
        if expired:
            logger.info("stale leases of this instance expired", extra={"jobs": expired})
        async with asyncio.TaskGroup() as group:
            for index in range(max(1, self._settings.workers)):
                group.create_task(self._loop(), name=f"compositor-worker-{index}")

    async def _loop(self) -> None:
        while True:
            try:
                claim = await self.claim_next()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("job claim failed", extra={"error": type(exc).__name__})
                claim = None
            if claim is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.poll_interval_s):
                        await self._wake.wait()
                continue
            await self.process(claim)

    async def claim_next(self) -> Claim | None:
        """The next job in fair order that this instance manages to claim, or None."""
        heads = await self._store.queue_heads(
            timedelta(seconds=self._settings.recordings_wait_s),
            timedelta(seconds=self._settings.room_settle_s),
            depth=max(1, self._settings.workers),  # concurrent loops of this instance may skip a head
        )
        for head in fair_order(heads):
            claim = await self._store.try_claim(head.composition_sid, self._owner, self._lease)
            if claim is not None:
                return claim
        return None

    async def process(self, claim: Claim) -> None:
        """Render one claimed job to its outcome (or give it back on a transient failure)."""
        comp = claim.composition
        log = {"composition_sid": str(comp.sid), "attempt": claim.attempts}
        try:
            if claim.attempts > self._settings.max_attempts:
                raise Failure(CODE_INTERNAL, "composition failed repeatedly")
            started = CompositionStarted(occurred_at=self._now(), **_common(comp))
            if not await self._store.start(claim, started):
                logger.info("composition no longer to process", extra=log)
                return
            logger.info("composition started", extra=log)
            await self._render_and_publish(claim)
        except Failure as exc:
            await self._fail(claim, exc.code, exc.message)
        except PermanentError as exc:
            await self._fail(claim, exc.code, exc.message)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.release(claim.lease_id))
            raise
        except (OSError, StorageError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("composition attempt failed, retrying", extra={**log, "error": type(exc).__name__})
            self._metrics.jobs.labels("retried").inc()
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._store.release(claim.lease_id)
        except Exception:
            logger.exception("composition attempt crashed", extra=log)
            self._metrics.jobs.labels("retried").inc()
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._store.release(claim.lease_id)

    async def _fail(self, claim: Claim, code: int, message: str) -> None:
        event = CompositionFailed(
            occurred_at=self._now(),
            error_code=code,
            error_message=message,
            **_common(claim.composition),
        )
        if await self._store.fail(claim, code=code, message=message, now=self._now(), event=event):
            self._metrics.jobs.labels("failed").inc()
            logger.info(
                "composition failed",
                extra={"composition_sid": str(claim.composition.sid), "error_code": code},
            )

    async def _sources(self, comp: Composition, workdir: Path) -> list[SourceTrack]:
        recordings = await self._store.completed_recordings(comp.spec.room_sid)
        if not recordings:
            counts = await self._store.recording_counts(comp.spec.room_sid)
            if counts.get("deleted"):
                raise Failure(CODE_RECORDINGS_DELETED, "the room's recordings were deleted")
            raise Failure(CODE_NO_SOURCES, "the room has no completed recordings")
        if sum(r.size_bytes for r in recordings) > self._settings.max_input_bytes:
            raise Failure(CODE_TOO_LARGE, "the combined size of the room's recordings exceeds the limit")
        return [await self._download(r, workdir) for r in recordings]

    async def _download(self, recording: Recording, workdir: Path) -> SourceTrack:
        if not recording.object_key:
            raise Failure(CODE_RECORDINGS_DELETED, "a recording of the room has no stored media")
        suffix = ".mkv" if recording.kind == "video" else ".mka"
        path = workdir / f"{recording.recording_sid}{suffix}"
        handle = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in self._objects.get_stream(recording.object_key):
                await asyncio.to_thread(_write_chunk, handle, chunk)
        except ObjectNotFound as exc:
            raise Failure(CODE_RECORDINGS_DELETED, "a recording of the room was deleted") from exc
        finally:
            await asyncio.to_thread(handle.close)
        return SourceTrack(
            path=str(path),
            kind="video" if recording.kind == "video" else "audio",
            track_name=recording.track_name,
            offset_ms=recording.offset_ms,
            sids=(recording.source_sid, recording.recording_sid, recording.participant_sid),
            codec=recording.codec,
        )

    async def _keep_lease(self, claim: Claim, lost: threading.Event) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_seconds / 3)
            try:
                if not await self._store.renew(claim.lease_id, self._lease):
                    lost.set()  # the render thread stops at its next progress report
                    return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("lease renewal failed", extra={"error": type(exc).__name__})

    async def _pump_progress(self, claim: Claim, fractions: asyncio.Queue[float], began: float) -> None:
        comp = claim.composition
        last = await self._store.last_progress(comp.sid)
        while True:
            fraction = await fractions.get()
            step = next_progress(last, fraction, time.monotonic() - began)
            if step is None:
                continue
            event = CompositionProgressed(
                occurred_at=self._now(),
                percentage_done=step.percentage_done,
                seconds_remaining=step.seconds_remaining,
                **_common(comp),
            )
            try:
                await self._store.report_progress(claim, step.percentage_done, event)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("progress update failed", extra={"error": type(exc).__name__})
                continue
            last = step.percentage_done

    async def _render_and_publish(self, claim: Claim) -> None:
        comp = claim.composition
        spec = comp.spec
        began = time.monotonic()
        job = CompositionJob.create(
            video_layout=spec.video_layout,
            resolution=spec.resolution,
            audio_sources=spec.audio_sources,
            audio_sources_excluded=spec.audio_sources_excluded,
            format=spec.format,
            trim=spec.trim,
            allow_hd=True,  # the API already enforced the account's limit
        )
        await asyncio.to_thread(self.work_root.mkdir, parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix=f"{comp.sid}-", dir=self.work_root))
        lost = threading.Event()
        stopping = threading.Event()
        fractions: asyncio.Queue[float] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_progress(fraction: float) -> None:  # called from the render thread
            if lost.is_set() or stopping.is_set():
                raise RenderAborted("render no longer wanted")
            loop.call_soon_threadsafe(fractions.put_nowait, fraction)

        keeper = asyncio.create_task(self._keep_lease(claim, lost))
        pump = asyncio.create_task(self._pump_progress(claim, fractions, began))
        try:
            sources = await self._sources(comp, workdir)
            out_path = workdir / f"{comp.sid}.{spec.format}"
            try:
                result: CompositionResult = await asyncio.to_thread(
                    render.compose,
                    job,
                    sources,
                    out_path,
                    workers=self._settings.render_processes or None,
                    memory_mb=self._settings.render_memory_mb,
                    progress=on_progress,
                )
            except RenderAborted:
                if not lost.is_set():
                    raise
            except asyncio.CancelledError:
                stopping.set()  # the thread cannot be cancelled: make it stop at its next progress report
                raise
            await asyncio.sleep(0)  # let the last progress values reach the pump
            pump.cancel()
            if lost.is_set():
                self._metrics.jobs.labels("lost_lease").inc()
                logger.warning("lease lost while rendering", extra={"composition_sid": str(comp.sid)})
                return
            key = media_key(comp.account_sid, comp.sid, spec.format)
            await self._objects.put_file(key, out_path, CONTENT_TYPES[spec.format])
            await self._complete(claim, key, result, time.monotonic() - began)
        finally:
            keeper.cancel()
            pump.cancel()
            await asyncio.gather(keeper, pump, return_exceptions=True)
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _complete(self, claim: Claim, key: str, result: CompositionResult, wall_s: float) -> None:
        comp = claim.composition
        event = CompositionAvailable(
            occurred_at=self._now(),
            duration_s=result.duration,
            size_bytes=result.size,
            bitrate_kbps=result.bitrate_kbps,
            media_uri=f"/v1/Compositions/{comp.sid}/Media",
            object_key=key,
            **_common(comp),
        )
        done = await self._store.complete(
            claim,
            object_key=key,
            duration=result.duration,
            size=result.size,
            bitrate=result.bitrate_kbps,
            now=self._now(),
            event=event,
        )
        if not done:
            self._metrics.jobs.labels("lost_lease").inc()
            current = await self._store.get(comp.account_sid, comp.sid)
            if current is not None and current.status == "deleted":
                await self._objects.delete(key)  # deleted while rendering: leave no media behind
            logger.warning(
                "composition finished elsewhere or deleted", extra={"composition_sid": str(comp.sid)}
            )
            return
        self._metrics.jobs.labels("completed").inc()
        self._metrics.render_seconds.observe(wall_s)
        if wall_s > 0:
            self._metrics.realtime_factor.observe(result.duration_s / wall_s)
        logger.info(
            "composition available",
            extra={
                "composition_sid": str(comp.sid),
                "duration_s": result.duration,
                "size": result.size,
                "wall_s": round(wall_s, 3),
            },
        )
