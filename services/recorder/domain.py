"""The recorder's pure rules: which tracks to record, recording lifecycle facts, offsets and durations.

The recorder keeps a projection of each room (recording rules, published tracks, ended or not) and a set of
open recordings (capture running). ``plan`` compares what the rules want with what is open: every track
that should be recorded and has no open recording gets a new Recording (a new RT SID with its own offset),
every open recording whose track should no longer be recorded is stopped. A track excluded and then
re-included therefore yields two Recordings, as in Twilio.

``offset`` (Twilio's, in ms): milliseconds from the Unix epoch (1970-01-01T00:00:00Z, an epoch shared by
every room) to the wallclock instant of the recording's first media frame. Each file starts at timestamp 0
at that frame, so ``offset - min(offset over the room's recordings)`` places every file on the room's
timeline. While the recording is ``processing`` the offset is the instant capture was requested; the
completed recording carries the measured value.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, Literal

from libs.events.base import HttpMethod
from libs.events.models import (
    Container,
    MediaKind,
    RecordingCompleted,
    RecordingFailed,
    RecordingStarted,
    RoomRecordingsFinalized,
    RoomType,
)
from libs.events.sids import AccountSid, ParticipantSid, RecordingSid, RoomSid, TrackSid
from libs.rooms.rules import Rule, TrackKind, TrackRef, is_recorded

RecordingStatus = Literal["processing", "completed", "failed", "deleted"]
RECORDING_STATUSES: Final[tuple[RecordingStatus, ...]] = ("processing", "completed", "failed", "deleted")
SUPPORTED_CODECS: Final[dict[str, MediaKind]] = {"VP8": "video", "H264": "video", "OPUS": "audio"}

ERROR_NO_MEDIA: Final = 53100
"""Twilio's generic recording error code family; used for "no media was received"."""
ERROR_CAPTURE: Final = 53101
"""Capture could not start (Janus refused rtp_forward, no free port) or the stored media was unusable."""


@dataclass(frozen=True)
class RoomView:
    """What the recorder knows about one room (from room.events)."""

    room_sid: RoomSid
    account_sid: AccountSid
    room_name: str
    room_type: RoomType
    status_callback: str | None
    status_callback_method: HttpMethod
    rules: tuple[Rule, ...]
    ended: bool = False


@dataclass(frozen=True)
class TrackView:
    """One published track of a room (from TrackAdded; ``published`` turns false on removal)."""

    track_sid: TrackSid
    room_sid: RoomSid
    participant_sid: ParticipantSid
    participant_identity: str
    track_name: str
    kind: TrackKind
    codec: str | None
    janus_publisher_id: str | None
    stream_mid: str | None
    published: bool = True

    def ref(self) -> TrackRef:
        return TrackRef(
            track_sid=self.track_sid,
            track_name=self.track_name,
            kind=self.kind,
            publisher_sid=self.participant_sid,
            publisher_identity=self.participant_identity,
        )


@dataclass(frozen=True)
class Recording:
    """One Recording resource (one start→stop of one track's capture)."""

    sid: RecordingSid
    account_sid: AccountSid
    room_sid: RoomSid
    room_name: str
    room_type: RoomType
    participant_sid: ParticipantSid
    participant_identity: str
    source_sid: TrackSid
    track_name: str
    kind: MediaKind
    codec: str
    container: Container
    status: RecordingStatus
    date_created: datetime
    date_updated: datetime
    offset_ms: int
    prefix: str
    status_callback: str | None
    status_callback_method: HttpMethod
    capture_open: bool = True
    duration_s: int = 0
    size_bytes: int = 0
    object_key: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def grouping_sids(self) -> dict[str, str]:
        return {"room_sid": str(self.room_sid), "participant_sid": str(self.participant_sid)}

    @property
    def media_uri(self) -> str:
        """Relative URI of the media sub-resource (as in Twilio's ``MediaUri`` callback parameter)."""
        return f"/v1/Recordings/{self.sid}/Media"


@dataclass(frozen=True)
class RecordingSettings:
    """An account's ``/v1/RecordingSettings/Default`` (the defaults when never set)."""

    friendly_name: str | None = None
    aws_credentials_sid: str | None = None
    aws_s3_url: str | None = None
    aws_storage_enabled: bool = False
    encryption_key_sid: str | None = None
    encryption_enabled: bool = False


@dataclass(frozen=True)
class Plan:
    """What to change: tracks to start recording, open recordings to stop."""

    start: tuple[TrackView, ...] = ()
    stop: tuple[RecordingSid, ...] = ()


@dataclass(frozen=True)
class OpenCapture:
    """An open recording as ``plan`` sees it: which track it captures."""

    sid: RecordingSid
    source_sid: TrackSid


def media_kind(track: TrackView) -> MediaKind | None:
    """The recorded kind, or None when the track cannot be recorded (data, unknown or unsupported codec)."""
    if track.kind == "data" or track.codec is None:
        return None
    kind = SUPPORTED_CODECS.get(track.codec.upper())
    return kind if kind == track.kind else None


def wants_recording(room: RoomView, track: TrackView) -> bool:
    """Should this track be captured now? Live room, published, recordable codec, selected by the rules."""
    return (
        not room.ended
        and track.published
        and track.room_sid == room.room_sid
        and track.janus_publisher_id is not None
        and track.stream_mid is not None
        and media_kind(track) is not None
        and is_recorded(track.ref(), room.rules)
    )


def plan(room: RoomView, tracks: Sequence[TrackView], open_captures: Collection[OpenCapture]) -> Plan:
    """Starts for wanted tracks without an open capture; stops for open captures no longer wanted.

    A track has at most one open capture; extra ones (never expected) are stopped.
    """
    wanted = {t.track_sid: t for t in tracks if wants_recording(room, t)}
    kept: set[TrackSid] = set()
    stop: list[RecordingSid] = []
    for capture in sorted(open_captures, key=lambda c: c.sid):
        if capture.source_sid in wanted and capture.source_sid not in kept:
            kept.add(capture.source_sid)
        else:
            stop.append(capture.sid)
    start = tuple(t for sid, t in wanted.items() if sid not in kept)
    return Plan(start=start, stop=tuple(stop))


def container_for(kind: MediaKind) -> Container:
    return "mkv" if kind == "video" else "mka"


def recording_prefix(account_sid: AccountSid, sid: RecordingSid) -> str:
    """Object-store prefix of one recording's chunks, media file and manifest."""
    return f"recordings/{account_sid}/{sid}"


def twilio_duration(duration_ms: int) -> int:
    """Whole seconds, rounded half up; anything recorded under one second reports 1."""
    return max(1, (duration_ms + 500) // 1000)


def offset_from_wallclock(start_wallclock_us: int) -> int:
    """Twilio ``offset`` (ms since the Unix epoch) of a file whose first frame has this wallclock (µs)."""
    return start_wallclock_us // 1000


def offset_at(instant: datetime) -> int:
    """Provisional ``offset`` (ms since the Unix epoch) of a capture requested at ``instant``."""
    return int(instant.timestamp() * 1000)


def relative_offsets(offsets: Sequence[int]) -> list[int]:
    """Each recording's start on the room's timeline: ``offset - min(offset)`` in ms."""
    if not offsets:
        return []
    base = min(offsets)
    return [o - base for o in offsets]


def new_recording(room: RoomView, track: TrackView, sid: RecordingSid, now: datetime) -> Recording:
    """A ``processing`` Recording for ``track``. Raises ValueError if the track is not recordable."""
    kind = media_kind(track)
    if kind is None or track.codec is None:
        raise ValueError("track is not recordable")
    return Recording(
        sid=sid,
        account_sid=room.account_sid,
        room_sid=room.room_sid,
        room_name=room.room_name,
        room_type=room.room_type,
        participant_sid=track.participant_sid,
        participant_identity=track.participant_identity,
        source_sid=track.track_sid,
        track_name=track.track_name or str(track.track_sid),
        kind=kind,
        codec=track.codec.upper(),
        container=container_for(kind),
        status="processing",
        date_created=now,
        date_updated=now,
        offset_ms=offset_at(now),
        prefix=recording_prefix(room.account_sid, sid),
        status_callback=room.status_callback,
        status_callback_method=room.status_callback_method,
    )


@dataclass(frozen=True)
class MediaOutcome:
    """What finalization measured (a subset of the media core's FinalizeResult)."""

    key: str
    duration_ms: int
    size_bytes: int
    start_wallclock_us: int


def complete(rec: Recording, media: MediaOutcome, now: datetime) -> Recording:
    """The completed Recording: measured offset, Twilio duration, size and object key."""
    start = datetime.fromtimestamp(media.start_wallclock_us / 1e6, tz=now.tzinfo)
    return replace(
        rec,
        status="completed",
        capture_open=False,
        date_updated=now,
        offset_ms=offset_from_wallclock(media.start_wallclock_us),
        duration_s=twilio_duration(media.duration_ms),
        size_bytes=media.size_bytes,
        object_key=media.key,
        start_time=start,
        end_time=now,
    )


def fail(rec: Recording, now: datetime) -> Recording:
    return replace(rec, status="failed", capture_open=False, date_updated=now, end_time=now)


def _fields(rec: Recording) -> dict[str, object]:
    return {
        "occurred_at": rec.date_updated,
        "account_sid": rec.account_sid,
        "recording_sid": rec.sid,
        "room_sid": rec.room_sid,
        "room_name": rec.room_name,
        "room_type": rec.room_type,
        "participant_sid": rec.participant_sid,
        "participant_identity": rec.participant_identity,
        "source_sid": rec.source_sid,
        "track_name": rec.track_name,
        "kind": rec.kind,
        "codec": rec.codec,
        "container": rec.container,
        "offset_ms": rec.offset_ms,
        "grouping_sids": rec.grouping_sids,
        "status_callback": rec.status_callback,
        "status_callback_method": rec.status_callback_method,
    }


def started_event(rec: Recording) -> RecordingStarted:
    return RecordingStarted.model_validate(_fields(rec))


def completed_event(rec: Recording) -> RecordingCompleted:
    return RecordingCompleted.model_validate(
        {
            **_fields(rec),
            "duration_s": rec.duration_s,
            "size_bytes": rec.size_bytes,
            "media_uri": rec.media_uri,
            "object_key": rec.object_key,
            "start_time": rec.start_time,
            "end_time": rec.end_time,
        }
    )


def failed_event(rec: Recording, code: int, message: str) -> RecordingFailed:
    return RecordingFailed.model_validate({**_fields(rec), "error_code": code, "error_message": message})


def finalized_event(
    room: RoomView, recordings: Sequence[Recording], now: datetime
) -> RoomRecordingsFinalized:
    """The room's recording set is final: every recording is completed, failed or deleted."""
    return RoomRecordingsFinalized(
        occurred_at=now,
        account_sid=room.account_sid,
        room_sid=room.room_sid,
        room_name=room.room_name,
        completed_recording_sids=[r.sid for r in recordings if r.status == "completed"],
        failed_recording_sids=[r.sid for r in recordings if r.status == "failed"],
    )


def all_settled(recordings: Sequence[Recording]) -> bool:
    """No recording of the room is still processing."""
    return all(r.status != "processing" for r in recordings)
