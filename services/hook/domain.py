"""Composition Hook rules: what a hook definition is and how a request's values become one.

Pure: no I/O. The API layer reads Twilio's parameter names and hands plain values here; every validation
failure is a ``RequestError`` carrying the Twilio-style code the API answers with (decisions in
docs/compositions.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.composition.spec import (
    CODE_INVALID_PARAMETER,
    CompositionParams,
    RawParams,
    RequestError,
    define_params,
)
from libs.events.models import CompositionHookFailed, CompositionRequested
from libs.events.sids import AccountSid, CompositionSid, HookSid, RecordingSid, RoomSid

FRIENDLY_NAME_MAX = 100


@dataclass(frozen=True)
class HookRequest(RawParams):
    """The raw values of a create/update request (None = parameter absent)."""

    friendly_name: str | None
    enabled: bool | None


@dataclass(frozen=True)
class HookDefinition(CompositionParams):
    """A validated hook definition: the composition parameters plus the hook's own fields."""

    friendly_name: str
    enabled: bool


@dataclass(frozen=True)
class Hook:
    """A stored hook."""

    sid: HookSid
    account_sid: AccountSid
    definition: HookDefinition
    date_created: datetime
    date_updated: datetime | None


def _friendly_name(value: str | None) -> str:
    if value is None or not value.strip():
        raise RequestError(CODE_INVALID_PARAMETER, "Missing required parameter FriendlyName in the post body")
    if len(value) > FRIENDLY_NAME_MAX:
        raise RequestError(CODE_INVALID_PARAMETER, "FriendlyName must be at most 100 characters long")
    return value


def define_hook(request: HookRequest) -> HookDefinition:
    """Validate a create or update request (an update replaces the whole definition, as Twilio's does).

    Defaults as Twilio: enabled true, resolution 640x480, format webm, trim true, callback method POST.
    Raises RequestError with 20001 (parameters), 53640 (VideoLayout) or 53641 (Resolution).
    """
    name = _friendly_name(request.friendly_name)
    params = define_params(request)
    enabled = True if request.enabled is None else request.enabled
    return HookDefinition(**params.params(), friendly_name=name, enabled=enabled)


def friendly_name_pattern(value: str) -> str:
    """The SQL ILIKE pattern of a FriendlyName filter: ``*`` matches any run, everything else is literal."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


NO_RECORDINGS_CODE = 53631


def plan_room_composition(
    hook: Hook,
    *,
    room_sid: RoomSid,
    room_name: str,
    recording_sids: list[RecordingSid],
    now: datetime,
) -> CompositionRequested | CompositionHookFailed:
    """What a hook does for a room whose recordings are all finalized.

    A composition request carrying the hook's definition and callback when the room has completed
    recordings; otherwise a composition-hook-failed fact (Twilio's warning 53631).
    """
    d = hook.definition
    if not recording_sids:
        return CompositionHookFailed(
            occurred_at=now,
            account_sid=hook.account_sid,
            hook_sid=hook.sid,
            hook_friendly_name=d.friendly_name,
            room_sid=room_sid,
            error_code=NO_RECORDINGS_CODE,
            error_message="The room has no completed recordings to compose",
            status_callback=d.status_callback,
            status_callback_method=d.status_callback_method,
        )
    return CompositionRequested(
        occurred_at=now,
        account_sid=hook.account_sid,
        composition_sid=CompositionSid.new(),
        room_sid=room_sid,
        room_name=room_name,
        hook_sid=hook.sid,
        hook_friendly_name=d.friendly_name,
        video_layout=d.video_layout,
        audio_sources=list(d.audio_sources),
        audio_sources_excluded=list(d.audio_sources_excluded),
        resolution=d.resolution,
        format=d.format,
        trim=d.trim,
        status_callback=d.status_callback,
        status_callback_method=d.status_callback_method,
        recording_sids=list(recording_sids),
    )
