"""Room creation rules: Twilio's parameters, defaults, limits and error codes, as a pure `RoomSpec`.

Inputs are the raw form values (strings, or lists for repeated keys) exactly as `api.py` receives
them, so every parse failure maps to the Twilio code of that parameter. No I/O here.

Decisions (documented in docs/rooms.md):
- Accounts follow Twilio's "new account" model: only `group` rooms, no `AudioOnly` (53126, 53127),
  unless `AccountPolicy` allows legacy features.
- `UniqueName`: 1..128 characters, valid UTF-8 without control characters, and not shaped like a room
  SID (it would shadow SID addressing).
- `MediaRegion`: one of `MEDIA_REGIONS`, default `us1`; the region is recorded, media stays local.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from services.room.errors import RoomRuleError, invalid
from services.room.rules import Rule, include_all, parse_recording_rules

RoomType = Literal["group", "go", "peer-to-peer", "group-small"]
VideoCodec = Literal["VP8", "H264"]
CallbackMethod = Literal["GET", "POST"]

ROOM_TYPES: Final[tuple[RoomType, ...]] = ("group", "go", "peer-to-peer", "group-small")
LEGACY_ROOM_TYPES: Final[frozenset[str]] = frozenset({"go", "peer-to-peer", "group-small"})
MEDIA_REGIONS: Final[tuple[str, ...]] = ("us1", "us2", "ie1", "de1", "au1", "br1", "jp1", "sg1", "in1", "gll")
DEFAULT_MEDIA_REGION: Final = "us1"

UNIQUE_NAME_MAX: Final = 128
STATUS_CALLBACK_MAX: Final = 1023  # "under 1024 characters"
MAX_PARTICIPANTS_LIMIT: Final = 50
# Per-type participant caps of the legacy types (Twilio's historical values).
TYPE_MAX_PARTICIPANTS: Final[dict[str, int]] = {
    "group": 50,
    "group-small": 4,
    "peer-to-peer": 10,
    "go": 2,
}
MAX_PARTICIPANT_DURATION_MIN: Final = 600
MAX_PARTICIPANT_DURATION_MAX: Final = 86_400
MAX_PARTICIPANT_DURATION_DEFAULT: Final = 14_400
ROOM_TIMEOUT_MIN: Final = 1
ROOM_TIMEOUT_MAX: Final = 60
ROOM_TIMEOUT_DEFAULT: Final = 5
# Twilio reports 170 for group rooms and 16 for its large-room example; 0 would mean unlimited.
GROUP_MAX_PUBLISHED_TRACKS: Final = 170
LARGE_ROOM_MAX_PUBLISHED_TRACKS: Final = 16

_ROOM_SID_SHAPE: Final = re.compile(r"^RM[0-9a-fA-F]{32}$")
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class AccountPolicy:
    """What an account may use beyond Twilio's current defaults."""

    allow_legacy_room_types: bool = False
    allow_audio_only: bool = False


@dataclass(frozen=True)
class RoomRequest:
    """Raw `POST /v1/Rooms` parameters (form strings; lists for repeated keys); `None` when absent."""

    type: str | None = None
    unique_name: str | None = None
    status_callback: str | None = None
    status_callback_method: str | None = None
    max_participants: str | None = None
    max_participant_duration: str | None = None
    empty_room_timeout: str | None = None
    unused_room_timeout: str | None = None
    record_participants_on_connect: str | None = None
    recording_rules: str | None = None
    video_codecs: Sequence[str] | None = None
    media_region: str | None = None
    audio_only: str | None = None
    large_room: str | None = None
    enable_turn: str | None = None


@dataclass(frozen=True)
class RoomSpec:
    """A room's normalized, validated configuration. `unique_name` is None when the client gave none
    (the room then reports its SID as the name)."""

    type: RoomType
    unique_name: str | None
    status_callback: str | None
    status_callback_method: CallbackMethod
    max_participants: int
    max_participant_duration: int  # seconds
    empty_room_timeout: int  # minutes
    unused_room_timeout: int  # minutes
    record_participants_on_connect: bool
    recording_rules: tuple[Rule, ...]
    video_codecs: tuple[VideoCodec, ...]
    media_region: str
    audio_only: bool
    large_room: bool
    max_concurrent_published_tracks: int
    enable_turn: bool = True  # Twilio ignores the parameter and always reports true


def parse_bool(raw: str | None, name: str, *, default: bool) -> bool:
    """Twilio booleans are the strings `true`/`false` (any case). Raises 20001 otherwise."""
    if raw is None:
        return default
    value = raw.strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    raise invalid(20001, f"{name} must be true or false")


def _parse_int(raw: str | None, *, default: int, low: int, high: int, code: int, message: str) -> int:
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise invalid(code, message) from None
    if not low <= value <= high:
        raise invalid(code, message)
    return value


def validate_unique_name(raw: str) -> str:
    """Check a `UniqueName`: 53100 empty or SID-shaped, 53101 too long, 53102 invalid characters."""
    if raw == "" or raw.strip() == "":
        raise invalid(53100, "Room name is invalid: it must not be empty")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(53102, "Room name contains invalid characters") from None
    if _CONTROL_CHARS.search(raw) or "\ufffd" in raw:
        raise invalid(53102, "Room name contains invalid characters")
    if len(raw) > UNIQUE_NAME_MAX:
        raise invalid(53101, f"Room name is too long (at most {UNIQUE_NAME_MAX} characters)")
    if _ROOM_SID_SHAPE.match(raw):
        raise invalid(53100, "Room name is invalid: it must not look like a room SID")
    return raw


def validate_status_callback(raw: str) -> str:
    """Absolute http(s) URL with a host and fewer than 1024 characters, else 53111."""
    if len(raw) > STATUS_CALLBACK_MAX:
        raise invalid(53111, "StatusCallback must be a valid URL under 1024 characters")
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise invalid(53111, "StatusCallback must be a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in raw):
        raise invalid(53111, "StatusCallback must be a valid http or https URL")
    return raw


def validate_callback_method(raw: str | None) -> CallbackMethod:
    """GET or POST (any case); default POST; else 53110."""
    if raw is None:
        return "POST"
    value = raw.strip().upper()
    if value == "GET":
        return "GET"
    if value == "POST":
        return "POST"
    raise invalid(53110, "StatusCallbackMethod must be GET or POST")


def _room_type(raw: str | None, policy: AccountPolicy) -> RoomType:
    if raw is None:
        return "group"
    value = raw.strip().lower()
    for room_type in ROOM_TYPES:
        if value == room_type:
            if room_type in LEGACY_ROOM_TYPES and not policy.allow_legacy_room_types:
                raise invalid(53126, "Room type is not available for this account; use group")
            return room_type
    raise invalid(53108, "Room type is invalid")


def _video_codecs(raw: Sequence[str] | None) -> tuple[VideoCodec, ...]:
    if raw is None:
        return ("VP8",)
    codecs: list[VideoCodec] = []
    for item in raw:
        # A single form value may also carry a comma-separated list.
        for token in item.split(","):
            value = token.strip().upper()
            if value == "":
                continue
            if value == "VP8":
                codec: VideoCodec = "VP8"
            elif value == "H264":
                codec = "H264"
            else:
                raise invalid(20001, "VideoCodecs must be VP8 or H264")
            if codec not in codecs:
                codecs.append(codec)
    return tuple(codecs) if codecs else ("VP8",)


def _media_region(raw: str | None) -> str:
    if raw is None:
        return DEFAULT_MEDIA_REGION
    value = raw.strip().lower()
    if value not in MEDIA_REGIONS:
        raise invalid(53115, "MediaRegion is invalid")
    return value


def build_room_spec(request: RoomRequest, policy: AccountPolicy | None = None) -> RoomSpec:
    """Validate `POST /v1/Rooms` parameters into a `RoomSpec`; raises `RoomRuleError` with Twilio's code.

    Checks run in a fixed order so the first broken parameter decides the error.
    The uniqueness of `UniqueName` among in-progress rooms is the store's check (`unique_name_taken`).
    """
    policy = policy or AccountPolicy()
    room_type = _room_type(request.type, policy)
    unique_name = None if request.unique_name is None else validate_unique_name(request.unique_name)
    status_callback = None
    if request.status_callback is not None and request.status_callback != "":
        status_callback = validate_status_callback(request.status_callback)
    method = validate_callback_method(request.status_callback_method)
    type_cap = TYPE_MAX_PARTICIPANTS[room_type]
    max_participants = _parse_int(
        request.max_participants,
        default=type_cap,
        low=1,
        high=min(type_cap, MAX_PARTICIPANTS_LIMIT),
        code=53107,
        message=f"MaxParticipants must be between 1 and {min(type_cap, MAX_PARTICIPANTS_LIMIT)}",
    )
    max_duration = _parse_int(
        request.max_participant_duration,
        default=MAX_PARTICIPANT_DURATION_DEFAULT,
        low=MAX_PARTICIPANT_DURATION_MIN,
        high=MAX_PARTICIPANT_DURATION_MAX,
        code=53123,
        message="MaxParticipantDuration must be between 600 and 86400 seconds",
    )
    timeouts = [
        _parse_int(
            raw,
            default=ROOM_TIMEOUT_DEFAULT,
            low=ROOM_TIMEOUT_MIN,
            high=ROOM_TIMEOUT_MAX,
            code=53109,
            message=f"{name} must be between 1 and 60 minutes",
        )
        for raw, name in (
            (request.empty_room_timeout, "EmptyRoomTimeout"),
            (request.unused_room_timeout, "UnusedRoomTimeout"),
        )
    ]
    record_on_connect = parse_bool(
        request.record_participants_on_connect, "RecordParticipantsOnConnect", default=False
    )
    if request.recording_rules is not None:
        if room_type != "group":
            raise invalid(53122, "Recording rules are not supported for this room type")
        recording_rules = parse_recording_rules(request.recording_rules)
    elif record_on_connect:
        if room_type == "peer-to-peer":
            raise invalid(53122, "Recording is not supported for peer-to-peer rooms")
        recording_rules = include_all()
    else:
        recording_rules = ()
    audio_only = parse_bool(request.audio_only, "AudioOnly", default=False)
    if audio_only and not policy.allow_audio_only:
        raise invalid(53127, "AudioOnly is not available for this account")
    if audio_only and room_type == "peer-to-peer":
        raise invalid(53124, "AudioOnly is not supported for peer-to-peer rooms")
    video_codecs = () if audio_only else _video_codecs(request.video_codecs)
    media_region = _media_region(request.media_region)
    large_room = parse_bool(request.large_room, "LargeRoom", default=False)
    if large_room and room_type != "group":
        raise invalid(53114, "LargeRoom is only available for group rooms")
    parse_bool(request.enable_turn, "EnableTurn", default=True)  # validated, then ignored
    if room_type == "group":
        tracks_cap = LARGE_ROOM_MAX_PUBLISHED_TRACKS if large_room else GROUP_MAX_PUBLISHED_TRACKS
    else:
        tracks_cap = 0
    return RoomSpec(
        type=room_type,
        unique_name=unique_name,
        status_callback=status_callback,
        status_callback_method=method,
        max_participants=max_participants,
        max_participant_duration=max_duration,
        empty_room_timeout=timeouts[0],
        unused_room_timeout=timeouts[1],
        record_participants_on_connect=record_on_connect,
        recording_rules=recording_rules,
        video_codecs=video_codecs,
        media_region=media_region,
        audio_only=audio_only,
        large_room=large_room,
        max_concurrent_published_tracks=tracks_cap,
    )


def unique_name_taken(unique_name: str) -> RoomRuleError:
    """The 53113 error the store raises when an in-progress room already has this name."""
    return invalid(53113, f"Room exists: a room named {unique_name!r} is already in progress")


def room_not_found(ref: str) -> RoomRuleError:
    """20404 for an unknown room SID or name."""
    return RoomRuleError(404, 20404, f"The requested resource /Rooms/{ref} was not found")


def janus_codecs(spec: RoomSpec) -> tuple[str, str]:
    """Janus `videocodec` and `audiocodec` strings for the room (comma lists, preference order)."""
    video = ",".join(codec.lower() for codec in spec.video_codecs) or "vp8"
    return video, "opus"
