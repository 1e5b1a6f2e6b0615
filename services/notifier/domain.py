"""Status-callback rules: which events produce a callback, its Twilio parameters, ordering and claim order.

Pure: no I/O. The parameter table is documented in docs/callbacks.md (keep both in step).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from libs.events.base import Event
from libs.events.models import (
    CompositionAvailable,
    CompositionEvent,
    CompositionFailed,
    CompositionHookFailed,
    CompositionProgressed,
    ParticipantDisconnected,
    ParticipantEvent,
    RecordingCompleted,
    RecordingEvent,
    RecordingFailed,
    RecordingRulesUpdated,
    RoomEnded,
    RoomEvent,
    TrackEvent,
)
from libs.events.sids import AccountSid

# Room facts that Twilio never reports through a status callback.
_SILENT_TYPES: frozenset[str] = frozenset({RecordingRulesUpdated.model_fields["type"].default})


@dataclass(frozen=True)
class Callback:
    """A status callback to deliver: where, how, what, and the key that orders it."""

    event_id: UUID
    event_type: str
    account_sid: AccountSid
    url: str
    method: str
    params: Mapping[str, str]
    ordering_key: str


def callback_timestamp(when: datetime) -> str:
    """Callback time: UTC ISO 8601, milliseconds and a literal Z (``2026-01-02T03:04:05.678Z``)."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def recording_uri(recording_sid: str) -> str:
    """Relative URI of a Recording resource, as in Twilio's ``RecordingUri``."""
    return f"/v1/Recordings/{recording_sid}"


def composition_uri(composition_sid: str) -> str:
    """Relative URI of a Composition resource, as in Twilio's ``CompositionUri``."""
    return f"/v1/Compositions/{composition_sid}"


def ordering_key(resource_sid: str, url: str) -> str:
    """Deliveries with the same key go out strictly in arrival order (one resource, one receiver URL)."""
    return f"{resource_sid} {url}"


def _room_params(event: RoomEvent) -> dict[str, str]:
    params = {
        "AccountSid": str(event.account_sid),
        "RoomName": event.room_name,
        "RoomSid": str(event.room_sid),
        "RoomStatus": event.room_status,
        "RoomType": event.room_type,
        "StatusCallbackEvent": event.type,
        "Timestamp": callback_timestamp(event.occurred_at),
        "SequenceNumber": str(event.sequence_number),
    }
    if isinstance(event, ParticipantEvent):
        params["ParticipantSid"] = str(event.participant_sid)
        params["ParticipantIdentity"] = event.participant_identity
        params["ParticipantStatus"] = event.participant_status
    if isinstance(event, ParticipantDisconnected):
        params["ParticipantDuration"] = str(event.participant_duration)
    if isinstance(event, TrackEvent):
        params["ParticipantSid"] = str(event.participant_sid)
        params["ParticipantIdentity"] = event.participant_identity
        params["TrackSid"] = str(event.track_sid)
        params["TrackKind"] = event.track_kind
        params["TrackName"] = event.track_name
    if isinstance(event, RoomEnded):
        params["RoomDuration"] = str(event.room_duration)
    return params


def _recording_params(event: RecordingEvent) -> dict[str, str]:
    grouping = dict(event.grouping_sids) or {
        "room_sid": str(event.room_sid),
        "participant_sid": str(event.participant_sid),
    }
    params = {
        "AccountSid": str(event.account_sid),
        "RoomName": event.room_name,
        "RoomSid": str(event.room_sid),
        "RoomType": event.room_type,
        "StatusCallbackEvent": event.type,
        "Timestamp": callback_timestamp(event.occurred_at),
        "ParticipantSid": str(event.participant_sid),
        "ParticipantIdentity": event.participant_identity,
        "RecordingSid": str(event.recording_sid),
        "RecordingUri": recording_uri(event.recording_sid),
        "SourceSid": str(event.source_sid),
        "TrackName": event.track_name,
        "Container": event.container,
        "Codec": event.codec.upper(),
        "GroupingSids": json.dumps(grouping),
        "OffsetFromTwilioVideoEpoch": str(event.offset_ms),
    }
    if event.sequence_number is not None:
        params["SequenceNumber"] = str(event.sequence_number)
    if isinstance(event, RecordingCompleted):
        params["Duration"] = str(event.duration_s)
        params["Size"] = str(event.size_bytes)
        params["MediaUri"] = event.media_uri
    if isinstance(event, RecordingFailed):
        params["ErrorCode"] = str(event.error_code)
        params["ErrorMessage"] = event.error_message
    return params


def _composition_params(event: CompositionEvent) -> dict[str, str]:
    params = {
        "AccountSid": str(event.account_sid),
        "RoomSid": str(event.room_sid),
        "CompositionSid": str(event.composition_sid),
        "CompositionUri": composition_uri(event.composition_sid),
        "StatusCallbackEvent": event.type,
        "Timestamp": callback_timestamp(event.occurred_at),
    }
    if event.hook_sid is not None:
        params["CompositionHookSid"] = str(event.hook_sid)
        if event.hook_friendly_name is not None:
            params["CompositionHookFriendlyName"] = event.hook_friendly_name
    if isinstance(event, CompositionProgressed):
        params["PercentageDone"] = str(event.percentage_done)
        if event.seconds_remaining is not None:
            params["SecondsRemaining"] = str(event.seconds_remaining)
    if isinstance(event, CompositionAvailable):
        params["Duration"] = str(event.duration_s)
        params["Size"] = str(event.size_bytes)
        params["MediaUri"] = event.media_uri
    if isinstance(event, CompositionFailed):
        params["ErrorCode"] = str(event.error_code)
        params["ErrorMessage"] = event.error_message
    return params


def _hook_failed_params(event: CompositionHookFailed) -> dict[str, str]:
    params = {
        "AccountSid": str(event.account_sid),
        "RoomSid": str(event.room_sid),
    }
    if event.composition_sid is not None:
        params["CompositionSid"] = str(event.composition_sid)
        params["CompositionUri"] = composition_uri(event.composition_sid)
    params["CompositionHookSid"] = str(event.hook_sid)
    if event.hook_friendly_name is not None:
        params["CompositionHookFriendlyName"] = event.hook_friendly_name
    params["StatusCallbackEvent"] = event.type
    params["Timestamp"] = callback_timestamp(event.occurred_at)
    params["ErrorCode"] = str(event.error_code)
    params["ErrorMessage"] = event.error_message
    return params


def callback_params(event: Event) -> dict[str, str] | None:
    """The Twilio callback parameters for an event, or None when the event type has no callback."""
    if event.type in _SILENT_TYPES:
        return None
    if isinstance(event, RoomEvent):
        return _room_params(event)
    if isinstance(event, RecordingEvent):
        return _recording_params(event)
    if isinstance(event, CompositionEvent):
        return _composition_params(event)
    if isinstance(event, CompositionHookFailed):
        return _hook_failed_params(event)
    return None


def _callback_target(event: Event) -> tuple[str, str, str] | None:
    """(url, method, ordering resource sid) of an event that carries a status callback."""
    if isinstance(event, RoomEvent | RecordingEvent):
        resource = str(event.room_sid)
    elif isinstance(event, CompositionEvent):
        resource = str(event.composition_sid)
    elif isinstance(event, CompositionHookFailed):
        resource = str(event.composition_sid or event.hook_sid)
    else:
        return None
    url = (event.status_callback or "").strip()
    if not url:
        return None
    return url, event.status_callback_method, resource


def plan_callback(event: Event) -> Callback | None:
    """The callback an event asks for, or None (no StatusCallback URL, or a type Twilio never reports)."""
    target = _callback_target(event)
    if target is None:
        return None
    params = callback_params(event)
    if params is None:
        return None
    url, method, resource = target
    return Callback(
        event_id=event.event_id,
        event_type=event.type,
        account_sid=event.account_sid,
        url=url,
        method=method.upper(),
        params=params,
        ordering_key=ordering_key(resource, url),
    )


# ---------------------------------------------------------------- claim order (mirrored by store.claim_due)


@dataclass(frozen=True)
class QueuedDelivery:
    """The fields of an undelivered row that decide whether it may be claimed now."""

    id: int
    ordering_key: str
    sequence: int
    host: str
    state: str  # "pending" | "delivering"
    next_attempt_at: datetime
    lease_until: datetime | None


def claimable(
    queued: Iterable[QueuedDelivery], now: datetime, busy_hosts: Sequence[str], limit: int
) -> list[QueuedDelivery]:
    """Which undelivered rows may start an attempt now, soonest due first, at most ``limit``.

    Only the head (lowest sequence) of each ordering key is eligible, so a key's callbacks leave in order
    and a later one never overtakes a retrying one. The head is due when pending and
    ``next_attempt_at <= now``, or delivering with an expired lease (its worker died). Rows of
    ``busy_hosts`` (at their concurrency limit) are skipped so they do not hold a claim while waiting.
    """
    heads: dict[str, QueuedDelivery] = {}
    for row in queued:
        current = heads.get(row.ordering_key)
        if current is None or row.sequence < current.sequence:
            heads[row.ordering_key] = row
    busy = set(busy_hosts)
    due = [
        row
        for row in heads.values()
        if row.host not in busy
        and (
            (row.state == "pending" and row.next_attempt_at <= now)
            or (row.state == "delivering" and row.lease_until is not None and row.lease_until <= now)
        )
    ]
    due.sort(key=lambda r: (r.next_attempt_at, r.id))
    return due[: max(0, limit)]
