"""What the room service persists about rooms, participants and tracks, as immutable records.

`RoomRecord` joins a room's configuration (`RoomSpec`) and its lifecycle fields; `room_state` rebuilds the
pure `lifecycle.RoomState` from it plus the connected participants, and `RoomRecord.with_state` folds a new
state back. No I/O here (the SQL is in `store.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from libs.events.sids import AccountSid, ParticipantSid, RoomSid, TrackSid
from services.room.domain import RoomSpec
from services.room.lifecycle import EndReason, Participant, RoomState, RoomStatus, next_deadline
from services.room.rules import Rule, TrackKind, TrackRef

ParticipantStatus = Literal["connected", "disconnected"]


def spec_to_json(spec: RoomSpec) -> dict[str, Any]:
    """The spec as a JSON object (recording rules are stored separately: they change over time)."""
    data = asdict(spec)
    data.pop("recording_rules")
    data["video_codecs"] = list(spec.video_codecs)
    return data


def spec_from_json(data: dict[str, Any], recording_rules: tuple[Rule, ...]) -> RoomSpec:
    """Inverse of `spec_to_json`."""
    values = dict(data)
    values["video_codecs"] = tuple(values.get("video_codecs") or ())
    return RoomSpec(**values, recording_rules=recording_rules)


def rules_from_json(items: list[dict[str, Any]] | None) -> tuple[Rule, ...]:
    """Rules as stored (output form of `rules.rules_to_json`)."""
    return tuple(
        Rule(
            type="exclude" if item.get("type") == "exclude" else "include",
            all=bool(item.get("all", False)),
            publisher=item.get("publisher"),
            track=item.get("track"),
            kind=item.get("kind"),
        )
        for item in items or []
    )


@dataclass(frozen=True)
class RoomRecord:
    sid: RoomSid
    account_sid: AccountSid
    spec: RoomSpec
    status: RoomStatus
    janus_secret: str
    ad_hoc: bool
    date_created: datetime
    date_updated: datetime
    recording_rules_updated: datetime | None = None
    end_time: datetime | None = None
    end_reason: EndReason | None = None
    ever_joined: bool = False
    emptied_at: datetime | None = None
    next_sequence: int = 0

    @property
    def name(self) -> str:
        """The room's `unique_name`: the given name, or the SID when none was given (Twilio's rule)."""
        return self.spec.unique_name or self.sid

    @property
    def duration(self) -> int | None:
        if self.end_time is None:
            return None
        return max(0, int((self.end_time - self.date_created).total_seconds()))

    def with_state(self, state: RoomState, now: datetime) -> RoomRecord:
        """This record updated from a lifecycle state."""
        return replace(
            self,
            status=state.status,
            end_time=state.ended_at,
            end_reason=state.end_reason,
            ever_joined=state.ever_joined,
            emptied_at=state.emptied_at,
            next_sequence=state.next_sequence,
            date_updated=now,
        )


@dataclass(frozen=True)
class ParticipantRecord:
    sid: ParticipantSid
    room_sid: RoomSid
    account_sid: AccountSid
    identity: str
    status: ParticipantStatus
    date_created: datetime
    date_updated: datetime
    start_time: datetime
    end_time: datetime | None = None
    duration: int | None = None
    subscribe_rules: tuple[Rule, ...] | None = None  # None: the default, include all
    subscribe_rules_updated: datetime | None = None


@dataclass(frozen=True)
class TrackRecord:
    sid: TrackSid
    room_sid: RoomSid
    participant_sid: ParticipantSid
    name: str
    kind: TrackKind
    mid: str
    codec: str | None
    enabled: bool
    published: bool
    date_created: datetime
    date_updated: datetime

    def ref(self, publisher_identity: str) -> TrackRef:
        """What rules match against."""
        return TrackRef(
            track_sid=self.sid,
            track_name=self.name,
            kind=self.kind,
            publisher_sid=self.participant_sid,
            publisher_identity=publisher_identity,
        )


def room_state(room: RoomRecord, connected: list[ParticipantRecord]) -> RoomState:
    """The lifecycle state of a stored room (connected participants in join order)."""
    ordered = sorted(connected, key=lambda p: (p.start_time, p.sid))
    return RoomState(
        sid=room.sid,
        status=room.status,
        created_at=room.date_created,
        max_participants=room.spec.max_participants,
        max_participant_duration=room.spec.max_participant_duration,
        empty_room_timeout=room.spec.empty_room_timeout,
        unused_room_timeout=room.spec.unused_room_timeout,
        participants=tuple(Participant(p.sid, p.identity, p.start_time) for p in ordered),
        ever_joined=room.ever_joined,
        emptied_at=room.emptied_at,
        ended_at=room.end_time,
        end_reason=room.end_reason,
        next_sequence=room.next_sequence,
    )


def deadline_of(state: RoomState) -> datetime | None:
    """When the timer loop must look at this room next (None once it has ended)."""
    found = next_deadline(state)
    return None if found is None else found.at
