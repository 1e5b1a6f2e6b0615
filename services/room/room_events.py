"""The `room.events` the room service publishes, built from lifecycle facts and track changes.

Every event carries the room's name, type, status, StatusCallback and method and its per-room
`sequence_number`, so the notifier can send Twilio's callback without reading our tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.events import models as ev
from libs.events.base import Event
from services.room import lifecycle
from services.room.records import RoomRecord, TrackRecord
from services.room.rules import rules_to_json


def _room_fields(room: RoomRecord, status: lifecycle.RoomStatus, seq: int) -> dict[str, object]:
    return {
        "account_sid": room.account_sid,
        "room_sid": room.sid,
        "room_name": room.name,
        "room_status": status,
        "room_type": room.spec.type,
        "sequence_number": seq,
        "status_callback": room.spec.status_callback,
        "status_callback_method": room.spec.status_callback_method,
    }


def recording_rules_json(room: RoomRecord) -> list[ev.RecordingRule]:
    return [ev.RecordingRule.model_validate(r) for r in rules_to_json(room.spec.recording_rules)]


def from_facts(room: RoomRecord, facts: Sequence[lifecycle.RoomFact]) -> list[Event]:
    """The events of lifecycle facts (in fact order; their sequence numbers come from the lifecycle)."""
    out: list[Event] = []
    for fact in facts:
        if isinstance(fact, lifecycle.RoomCreated):
            out.append(
                ev.RoomCreated.model_validate(
                    {
                        **_room_fields(room, "in-progress", fact.sequence_number),
                        "occurred_at": fact.at,
                        "recording_rules": recording_rules_json(room),
                        "max_participants": room.spec.max_participants,
                        "max_participant_duration": room.spec.max_participant_duration,
                        "empty_room_timeout": room.spec.empty_room_timeout,
                        "unused_room_timeout": room.spec.unused_room_timeout,
                        "media_region": room.spec.media_region,
                        "audio_only": room.spec.audio_only,
                    }
                )
            )
        elif isinstance(fact, lifecycle.RoomEnded):
            out.append(
                ev.RoomEnded.model_validate(
                    {
                        **_room_fields(room, fact.status, fact.sequence_number),
                        "occurred_at": fact.at,
                        "end_time": fact.at,
                        "room_duration": fact.duration,
                    }
                )
            )
        elif isinstance(fact, lifecycle.ParticipantConnected):
            out.append(
                ev.ParticipantConnected.model_validate(
                    {
                        **_room_fields(room, "in-progress", fact.sequence_number),
                        "occurred_at": fact.participant.connected_at,
                        "participant_sid": fact.participant.sid,
                        "participant_identity": fact.participant.identity,
                    }
                )
            )
        else:
            out.append(
                ev.ParticipantDisconnected.model_validate(
                    {
                        **_room_fields(room, "in-progress", fact.sequence_number),
                        "occurred_at": fact.at,
                        "participant_sid": fact.participant.sid,
                        "participant_identity": fact.participant.identity,
                        "participant_duration": fact.duration,
                    }
                )
            )
    return out


TrackEventKind = type[ev.TrackAdded] | type[ev.TrackRemoved] | type[ev.TrackEnabled] | type[ev.TrackDisabled]


def track_event(
    kind: TrackEventKind,
    room: RoomRecord,
    track: TrackRecord,
    identity: str,
    seq: int,
    at: datetime,
) -> Event:
    """A track-added / -removed / -enabled / -disabled event for `track` of participant `identity`."""
    fields: dict[str, object] = {
        **_room_fields(room, "in-progress", seq),
        "occurred_at": at,
        "participant_sid": track.participant_sid,
        "participant_identity": identity,
        "track_sid": track.sid,
        "track_kind": track.kind,
        "track_name": track.name,
        "track_enabled": track.enabled,
        "janus_publisher_id": str(track.participant_sid),
        "stream_mid": track.mid,
    }
    if kind is ev.TrackAdded:
        fields["codec"] = track.codec
    if kind is ev.TrackEnabled:
        fields["track_enabled"] = True
    if kind is ev.TrackDisabled:
        fields["track_enabled"] = False
    return kind.model_validate(fields)


def recording_rules_updated(room: RoomRecord, seq: int, at: datetime) -> Event:
    return ev.RecordingRulesUpdated.model_validate(
        {
            **_room_fields(room, "in-progress", seq),
            "occurred_at": at,
            "recording_rules": recording_rules_json(room),
        }
    )
