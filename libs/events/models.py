"""Every event of the topic table in docs/architecture.md.

Each event carries what the matching Twilio status callback needs (including the StatusCallback URL and
method), so consumers never read another service's tables. Type names are Twilio's ``StatusCallbackEvent``
values where one exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from libs.events.base import Event, HttpMethod
from libs.events.sids import (
    CompositionSid,
    HookSid,
    ParticipantSid,
    RecordingSid,
    RoomSid,
    TrackSid,
)
from libs.events.topics import COMPOSITION_EVENTS, COMPOSITION_JOBS, RECORDING_EVENTS, ROOM_EVENTS

RoomStatus = Literal["in-progress", "completed", "failed"]
RoomType = Literal["group", "group-small", "peer-to-peer", "go"]
ParticipantStatus = Literal["connected", "disconnected"]
TrackKind = Literal["audio", "video", "data"]
MediaKind = Literal["audio", "video"]
Container = Literal["mka", "mkv"]
CompositionFormat = Literal["mp4", "webm"]


class RecordingRule(BaseModel):
    """One recording rule (Twilio RecordingRules item). Filters inside a rule are ANDed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["include", "exclude"]
    all: bool | None = None
    publisher: str | None = None
    track: str | None = None
    kind: MediaKind | None = None


# ---------------------------------------------------------------- room.events (key: room_sid)


class RoomEvent(Event):
    """Common part of every room.events fact. ``sequence_number`` increases per room from 0 (room service)."""

    topic = ROOM_EVENTS

    room_sid: RoomSid
    room_name: str
    room_status: RoomStatus
    room_type: RoomType = "group"
    sequence_number: int = Field(ge=0)
    status_callback: str | None = None
    status_callback_method: HttpMethod = "POST"

    def key(self) -> str:
        return str(self.room_sid)


class RoomCreated(RoomEvent):
    type: Literal["room-created"] = "room-created"
    recording_rules: list[RecordingRule] = Field(default_factory=list)
    max_participants: int | None = None
    max_participant_duration: int | None = None
    empty_room_timeout: int | None = None
    unused_room_timeout: int | None = None
    media_region: str | None = None
    audio_only: bool = False


class RoomEnded(RoomEvent):
    type: Literal["room-ended"] = "room-ended"
    end_time: datetime
    room_duration: int = Field(
        ge=0,
        description="seconds the room was in progress",
        validation_alias=AliasChoices("room_duration", "duration"),
    )

    @property
    def duration(self) -> int:
        """Alias of ``room_duration`` (seconds)."""
        return self.room_duration


class RecordingRulesUpdated(RoomEvent):
    type: Literal["recording-rules-updated"] = "recording-rules-updated"
    recording_rules: list[RecordingRule]


class ParticipantEvent(RoomEvent):
    participant_sid: ParticipantSid
    participant_identity: str
    participant_status: ParticipantStatus


class ParticipantConnected(ParticipantEvent):
    type: Literal["participant-connected"] = "participant-connected"
    participant_status: ParticipantStatus = "connected"


class ParticipantDisconnected(ParticipantEvent):
    type: Literal["participant-disconnected"] = "participant-disconnected"
    participant_status: ParticipantStatus = "disconnected"
    participant_duration: int = Field(ge=0, description="seconds connected")


class TrackEvent(RoomEvent):
    participant_sid: ParticipantSid
    participant_identity: str
    participant_status: ParticipantStatus = "connected"
    track_sid: TrackSid
    track_kind: TrackKind
    track_name: str
    track_enabled: bool = True
    janus_publisher_id: str | None = None
    stream_mid: str | None = None


class TrackAdded(TrackEvent):
    """A published track. ``codec`` is upper case ("VP8", "H264", "OPUS", "PCMU")."""

    type: Literal["track-added"] = "track-added"
    codec: str | None = None


class TrackRemoved(TrackEvent):
    type: Literal["track-removed"] = "track-removed"


class TrackEnabled(TrackEvent):
    type: Literal["track-enabled"] = "track-enabled"
    track_enabled: bool = True


class TrackDisabled(TrackEvent):
    type: Literal["track-disabled"] = "track-disabled"
    track_enabled: bool = False


# ---------------------------------------------------------------- recording.events (key: room_sid)


class RecordingEvent(Event):
    """A recording of one track. ``offset_ms`` is Twilio's ``offset``; ``sequence_number`` is per room."""

    topic = RECORDING_EVENTS

    recording_sid: RecordingSid
    room_sid: RoomSid
    room_name: str
    room_type: RoomType = "group"
    participant_sid: ParticipantSid
    participant_identity: str
    source_sid: TrackSid
    track_name: str
    kind: MediaKind
    codec: str
    container: Container
    offset_ms: int = 0
    duration_s: int | None = None
    size_bytes: int | None = None
    media_uri: str | None = None
    grouping_sids: dict[str, str] = Field(default_factory=dict)
    status_callback: str | None = None
    status_callback_method: HttpMethod = "POST"
    sequence_number: int | None = None

    def key(self) -> str:
        return str(self.room_sid)


class RecordingStarted(RecordingEvent):
    type: Literal["recording-started"] = "recording-started"


class RecordingCompleted(RecordingEvent):
    """Media is stored. ``object_key`` is the storage key in the platform bucket (for the compositor)."""

    type: Literal["recording-completed"] = "recording-completed"
    duration_s: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    media_uri: str
    object_key: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


class RecordingFailed(RecordingEvent):
    type: Literal["recording-failed"] = "recording-failed"
    error_code: int
    error_message: str


class RecordingDeleted(Event):
    """The recording's media was deleted (DELETE on the Recording). Internal: Twilio sends no callback."""

    topic = RECORDING_EVENTS

    type: Literal["recording-deleted"] = "recording-deleted"
    recording_sid: RecordingSid
    room_sid: RoomSid

    def key(self) -> str:
        return str(self.room_sid)


class RoomRecordingsFinalized(Event):
    """Every recording of an ended room is finalized: completed or failed. No Twilio callback.

    Emitted once per room by the recorder after RoomEnded and the last recording's outcome, so the hook
    service (and the compositor) know that the room's recording set is complete.
    """

    topic = RECORDING_EVENTS

    type: Literal["room-recordings-finalized"] = "room-recordings-finalized"
    room_sid: RoomSid
    room_name: str
    completed_recording_sids: list[RecordingSid] = Field(default_factory=list)
    failed_recording_sids: list[RecordingSid] = Field(default_factory=list)

    def key(self) -> str:
        return str(self.room_sid)


# ---------------------------------------------------------------- composition.events (key: composition_sid)


class CompositionEvent(Event):
    topic = COMPOSITION_EVENTS

    composition_sid: CompositionSid
    room_sid: RoomSid
    hook_sid: HookSid | None = None
    hook_friendly_name: str | None = None
    status_callback: str | None = None
    status_callback_method: HttpMethod = "POST"

    def key(self) -> str:
        return str(self.composition_sid)


class CompositionEnqueued(CompositionEvent):
    type: Literal["composition-enqueued"] = "composition-enqueued"


class CompositionStarted(CompositionEvent):
    type: Literal["composition-started"] = "composition-started"


class CompositionProgressed(CompositionEvent):
    type: Literal["composition-progress"] = "composition-progress"
    percentage_done: int = Field(ge=0, le=100)
    seconds_remaining: int | None = Field(default=None, ge=0)


class CompositionAvailable(CompositionEvent):
    type: Literal["composition-available"] = "composition-available"
    duration_s: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    media_uri: str
    bitrate_kbps: int | None = None
    object_key: str | None = None


class CompositionFailed(CompositionEvent):
    type: Literal["composition-failed"] = "composition-failed"
    error_code: int
    error_message: str


class CompositionHookFailed(Event):
    """A hook could not create or enqueue its composition (Twilio warning 53631)."""

    topic = COMPOSITION_EVENTS

    type: Literal["composition-hook-failed"] = "composition-hook-failed"
    hook_sid: HookSid
    hook_friendly_name: str | None = None
    room_sid: RoomSid
    composition_sid: CompositionSid | None = None
    error_code: int
    error_message: str
    status_callback: str | None = None
    status_callback_method: HttpMethod = "POST"

    def key(self) -> str:
        return str(self.composition_sid or self.hook_sid)


# ---------------------------------------------------------------- composition.jobs (key: account_sid)


class CompositionRequested(Event):
    """A composition to render. Recordings are not listed: the compositor resolves them from the
    RecordingCompleted events it consumed for ``room_sid``.

    ``video_layout`` is the normalized layout JSON (``{}`` for audio-only); ``resolution`` is ``"WxH"``.
    """

    topic = COMPOSITION_JOBS

    type: Literal["composition-requested"] = "composition-requested"
    composition_sid: CompositionSid
    room_sid: RoomSid
    room_name: str | None = None
    hook_sid: HookSid | None = None
    hook_friendly_name: str | None = None
    video_layout: dict[str, Any] = Field(default_factory=dict)
    audio_sources: list[str] = Field(default_factory=list)
    audio_sources_excluded: list[str] = Field(default_factory=list)
    resolution: str = "640x480"
    format: CompositionFormat = "webm"
    trim: bool = True
    status_callback: str | None = None
    status_callback_method: HttpMethod = "POST"
    recording_sids: list[RecordingSid] = Field(
        default_factory=list,
        description="when set (hook compositions), the recordings to wait for before rendering",
    )

    @model_validator(mode="after")
    def _resolution_shape(self) -> CompositionRequested:
        width, sep, height = self.resolution.partition("x")
        if not (sep and width.isdigit() and height.isdigit()):
            raise ValueError("resolution must look like 640x480")
        return self

    @property
    def width(self) -> int:
        return int(self.resolution.partition("x")[0])

    @property
    def height(self) -> int:
        return int(self.resolution.partition("x")[2])


ROOM_EVENT_TYPES: tuple[type[Event], ...] = (
    RoomCreated,
    RoomEnded,
    ParticipantConnected,
    ParticipantDisconnected,
    TrackAdded,
    TrackRemoved,
    TrackEnabled,
    TrackDisabled,
    RecordingRulesUpdated,
)
RECORDING_EVENT_TYPES: tuple[type[Event], ...] = (
    RecordingStarted,
    RecordingCompleted,
    RecordingFailed,
    RecordingDeleted,
    RoomRecordingsFinalized,
)
COMPOSITION_EVENT_TYPES: tuple[type[Event], ...] = (
    CompositionEnqueued,
    CompositionStarted,
    CompositionProgressed,
    CompositionAvailable,
    CompositionFailed,
    CompositionHookFailed,
)
COMPOSITION_JOB_TYPES: tuple[type[Event], ...] = (CompositionRequested,)

ALL_EVENT_TYPES: tuple[type[Event], ...] = (
    *ROOM_EVENT_TYPES,
    *RECORDING_EVENT_TYPES,
    *COMPOSITION_EVENT_TYPES,
    *COMPOSITION_JOB_TYPES,
)
