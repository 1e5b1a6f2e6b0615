"""Room and participant lifecycle: a pure state machine with injected time.

`RoomState` holds what the timers need (creation time, connected participants, when the room became
empty); every operation returns a `Transition` = new state + the facts that happened, each fact with
the room's next callback `sequence_number`. The service persists the state, turns facts into events,
and arms one timer at `next_deadline(state)`; after a restart it rebuilds the timer from the stored
state and calls `advance(state, now)`, which applies every deadline that passed meanwhile.

Rules: in-progress → completed (explicit, unused timeout, empty timeout, 24 h maximum room duration)
or → failed. Joining a full room is 53105; joining with a connected identity disconnects the earlier
participant (53205); a participant is disconnected after MaxParticipantDuration (53216).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal

from libs.events.sids import ParticipantSid, RoomSid
from services.room.domain import RoomSpec
from services.room.errors import RoomRuleError, invalid

RoomStatus = Literal["in-progress", "completed", "failed"]
EndReason = Literal["completed", "unused-timeout", "empty-timeout", "max-room-duration", "failed"]
DisconnectReason = Literal[
    "left", "kicked", "duplicate-identity", "max-participant-duration", "room-ended", "room-failed"
]
DeadlineKind = Literal["unused-timeout", "empty-timeout", "max-room-duration", "max-participant-duration"]

MAX_ROOM_DURATION: Final = timedelta(hours=24)
IDENTITY_MAX: Final = 128
DUPLICATE_IDENTITY_CODE: Final = 53205
MAX_PARTICIPANT_DURATION_CODE: Final = 53216


@dataclass(frozen=True)
class Participant:
    sid: ParticipantSid
    identity: str
    connected_at: datetime


@dataclass(frozen=True)
class RoomState:
    """Everything the lifecycle decides on. `participants` are the connected ones, in join order."""

    sid: RoomSid
    status: RoomStatus
    created_at: datetime
    max_participants: int
    max_participant_duration: int  # seconds
    empty_room_timeout: int  # minutes
    unused_room_timeout: int  # minutes
    participants: tuple[Participant, ...] = ()
    ever_joined: bool = False
    emptied_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    next_sequence: int = 0

    def participant(self, sid: ParticipantSid) -> Participant | None:
        return next((p for p in self.participants if p.sid == sid), None)

    def by_identity(self, identity: str) -> Participant | None:
        return next((p for p in self.participants if p.identity == identity), None)


@dataclass(frozen=True)
class RoomCreated:
    room_sid: RoomSid
    at: datetime
    sequence_number: int


@dataclass(frozen=True)
class RoomEnded:
    room_sid: RoomSid
    status: Literal["completed", "failed"]
    reason: EndReason
    at: datetime
    duration: int  # seconds
    sequence_number: int


@dataclass(frozen=True)
class ParticipantConnected:
    room_sid: RoomSid
    participant: Participant
    sequence_number: int


@dataclass(frozen=True)
class ParticipantDisconnected:
    room_sid: RoomSid
    participant: Participant
    at: datetime
    reason: DisconnectReason
    code: int | None  # Twilio code explaining a forced disconnect (53205, 53216)
    duration: int  # seconds connected
    sequence_number: int


RoomFact = RoomCreated | RoomEnded | ParticipantConnected | ParticipantDisconnected


@dataclass(frozen=True)
class Transition:
    state: RoomState
    facts: tuple[RoomFact, ...] = ()


@dataclass(frozen=True)
class Deadline:
    at: datetime
    kind: DeadlineKind
    participant_sid: ParticipantSid | None = None


def duration_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from start to end, truncated, never negative."""
    return max(0, int((end - start).total_seconds()))


def take_sequence(state: RoomState, count: int = 1) -> tuple[RoomState, tuple[int, ...]]:
    """Reserve `count` callback sequence numbers (monotonic per room, starting at 0)."""
    numbers = tuple(range(state.next_sequence, state.next_sequence + count))
    return replace(state, next_sequence=state.next_sequence + count), numbers


def validate_identity(identity: str) -> str:
    """Participant identity: non-empty (53200), at most 128 units where characters beyond Latin-1
    count as 2 (53201), valid UTF-8 without control characters (53202)."""
    if identity.strip() == "":
        raise invalid(53200, "Participant identity is invalid: it must not be empty")
    try:
        identity.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(53202, "Participant identity contains invalid characters") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in identity) or "\ufffd" in identity:
        raise invalid(53202, "Participant identity contains invalid characters")
    if sum(2 if ord(c) > 0xFF else 1 for c in identity) > IDENTITY_MAX:
        raise invalid(53201, "Participant identity is too long")
    return identity


def open_room(sid: RoomSid, spec: RoomSpec, now: datetime) -> Transition:
    """A new in-progress room and its `RoomCreated` fact (sequence number 0)."""
    state = RoomState(
        sid=sid,
        status="in-progress",
        created_at=now,
        max_participants=spec.max_participants,
        max_participant_duration=spec.max_participant_duration,
        empty_room_timeout=spec.empty_room_timeout,
        unused_room_timeout=spec.unused_room_timeout,
    )
    state, (seq,) = take_sequence(state)
    return Transition(state, (RoomCreated(sid, now, seq),))


def _require_in_progress(state: RoomState) -> None:
    if state.status != "in-progress":
        raise invalid(53118, "Room is no longer in progress")


def _drop(state: RoomState, participant: Participant, now: datetime, reason: DisconnectReason) -> Transition:
    code = {
        "duplicate-identity": DUPLICATE_IDENTITY_CODE,
        "max-participant-duration": MAX_PARTICIPANT_DURATION_CODE,
    }
    remaining = tuple(p for p in state.participants if p.sid != participant.sid)
    state = replace(state, participants=remaining, emptied_at=now if not remaining else None)
    state, (seq,) = take_sequence(state)
    fact = ParticipantDisconnected(
        room_sid=state.sid,
        participant=participant,
        at=now,
        reason=reason,
        code=code.get(reason),
        duration=duration_seconds(participant.connected_at, now),
        sequence_number=seq,
    )
    return Transition(state, (fact,))


def connect(state: RoomState, sid: ParticipantSid, identity: str, now: datetime) -> Transition:
    """A participant joins. Raises 53118 when the room is over, 53105 when full, 532xx for a bad
    identity. An already-connected participant with the same identity is disconnected first (53205)."""
    _require_in_progress(state)
    validate_identity(identity)
    if state.participant(sid) is not None:
        return Transition(state)  # duplicate join signal: already connected
    facts: list[RoomFact] = []
    previous = state.by_identity(identity)
    if previous is not None:
        step = _drop(state, previous, now, "duplicate-identity")
        state, facts = step.state, [*step.facts]
    if len(state.participants) >= state.max_participants:
        raise RoomRuleError(400, 53105, "Room is full: the maximum number of participants is connected")
    participant = Participant(sid=sid, identity=identity, connected_at=now)
    state = replace(state, participants=(*state.participants, participant), ever_joined=True, emptied_at=None)
    state, (seq,) = take_sequence(state)
    facts.append(ParticipantConnected(state.sid, participant, seq))
    return Transition(state, tuple(facts))


def disconnect(
    state: RoomState, sid: ParticipantSid, now: datetime, reason: DisconnectReason = "left"
) -> Transition:
    """A participant leaves (or is kicked). Unknown or already-gone participants change nothing, so
    repeated Janus signals (unpublished, leaving, hangup) are harmless."""
    participant = state.participant(sid)
    if participant is None:
        return Transition(state)
    return _drop(state, participant, now, reason)


def _end(state: RoomState, now: datetime, reason: EndReason) -> Transition:
    facts: list[RoomFact] = []
    drop_reason: DisconnectReason = "room-failed" if reason == "failed" else "room-ended"
    for participant in state.participants:
        step = _drop(state, participant, now, drop_reason)
        state = step.state
        facts.extend(step.facts)
    status: Literal["completed", "failed"] = "failed" if reason == "failed" else "completed"
    state = replace(state, status=status, ended_at=now, end_reason=reason, emptied_at=None)
    state, (seq,) = take_sequence(state)
    facts.append(RoomEnded(state.sid, status, reason, now, duration_seconds(state.created_at, now), seq))
    return Transition(state, tuple(facts))


def complete(state: RoomState, now: datetime) -> Transition:
    """`Status=completed`: disconnect everyone and end the room. 53112 when not in progress."""
    if state.status != "in-progress":
        raise invalid(53112, "Room is not in progress")
    return _end(state, now, "completed")


def fail(state: RoomState, now: datetime) -> Transition:
    """Internal failure: the room ends `failed`. No-op when already ended."""
    if state.status != "in-progress":
        return Transition(state)
    return _end(state, now, "failed")


def deadlines(state: RoomState) -> list[Deadline]:
    """All armed deadlines, earliest first. None once the room has ended."""
    if state.status != "in-progress":
        return []
    found = [Deadline(state.created_at + MAX_ROOM_DURATION, "max-room-duration")]
    if not state.participants:
        if not state.ever_joined:
            found.append(
                Deadline(state.created_at + timedelta(minutes=state.unused_room_timeout), "unused-timeout")
            )
        elif state.emptied_at is not None:
            found.append(
                Deadline(state.emptied_at + timedelta(minutes=state.empty_room_timeout), "empty-timeout")
            )
    limit = timedelta(seconds=state.max_participant_duration)
    found.extend(
        Deadline(p.connected_at + limit, "max-participant-duration", p.sid) for p in state.participants
    )
    found.sort(key=lambda d: (d.at, d.kind != "max-participant-duration"))
    return found


def next_deadline(state: RoomState) -> Deadline | None:
    """The earliest deadline the service must wake up for, or None (room ended)."""
    found = deadlines(state)
    return found[0] if found else None


def advance(state: RoomState, now: datetime) -> Transition:
    """Apply every deadline at or before `now`, in time order (participant expiries before a room end
    due at the same instant). Each fact carries the deadline's time, not `now`, so a service that
    wakes late (or after a restart) still reports accurate end times and durations."""
    facts: list[RoomFact] = []
    while (deadline := next_deadline(state)) is not None and deadline.at <= now:
        if deadline.kind == "max-participant-duration" and deadline.participant_sid is not None:
            participant = state.participant(deadline.participant_sid)
            if participant is None:  # pragma: no cover - deadlines only list connected participants
                break
            step = _drop(state, participant, deadline.at, "max-participant-duration")
        elif deadline.kind == "max-room-duration":
            step = _end(state, deadline.at, "max-room-duration")
        elif deadline.kind == "unused-timeout":
            step = _end(state, deadline.at, "unused-timeout")
        else:
            step = _end(state, deadline.at, "empty-timeout")
        state = step.state
        facts.extend(step.facts)
    return Transition(state, tuple(facts))
