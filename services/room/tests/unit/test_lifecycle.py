"""Room lifecycle state machine: joins, leaves, timers, durations and sequence numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.events.sids import ParticipantSid, RoomSid
from services.room.domain import RoomRequest, build_room_spec
from services.room.errors import RoomRuleError
from services.room.lifecycle import (
    Deadline,
    ParticipantConnected,
    ParticipantDisconnected,
    RoomCreated,
    RoomEnded,
    RoomState,
    advance,
    complete,
    connect,
    disconnect,
    fail,
    next_deadline,
    open_room,
    take_sequence,
    validate_identity,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOM = RoomSid("RM" + "0" * 32)
P1 = ParticipantSid("PA" + "1" * 32)
P2 = ParticipantSid("PA" + "2" * 32)
P3 = ParticipantSid("PA" + "3" * 32)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_room(**params: str) -> RoomState:
    transition = open_room(ROOM, build_room_spec(RoomRequest(**params)), T0)
    assert transition.facts == (RoomCreated(ROOM, T0, 0),)
    return transition.state


def sequences(facts: tuple[object, ...]) -> list[int]:
    return [f.sequence_number for f in facts]  # type: ignore[attr-defined]  # every fact has one


def test_unused_room_ends_after_unused_timeout() -> None:
    state = new_room(unused_room_timeout="3")
    assert next_deadline(state) == Deadline(at(180), "unused-timeout")
    assert advance(state, at(179)).facts == ()
    step = advance(state, at(500))
    assert step.state.status == "completed"
    assert step.state.end_reason == "unused-timeout"
    assert step.facts == (RoomEnded(ROOM, "completed", "unused-timeout", at(180), 180, 1),)
    assert next_deadline(step.state) is None


def test_empty_timeout_starts_when_last_participant_leaves() -> None:
    state = new_room(empty_room_timeout="2")
    state = connect(state, P1, "alice", at(10)).state
    state = connect(state, P2, "bob", at(20)).state
    assert next_deadline(state) == Deadline(at(10 + 14_400), "max-participant-duration", P1)
    step = disconnect(state, P1, at(100))
    (left,) = step.facts
    assert isinstance(left, ParticipantDisconnected)
    assert (left.duration, left.reason, left.code) == (90, "left", None)
    state = disconnect(step.state, P2, at(130)).state
    assert next_deadline(state) == Deadline(at(130 + 120), "empty-timeout")
    # Rejoining cancels the empty timeout.
    rejoined = connect(state, P3, "carol", at(200)).state
    assert all(d.kind != "empty-timeout" for d in [next_deadline(rejoined)] if d)
    ended = advance(state, at(10_000))
    assert ended.facts[-1] == RoomEnded(ROOM, "completed", "empty-timeout", at(250), 250, 5)


def test_full_room_refuses_with_53105_but_same_identity_replaces() -> None:
    state = new_room(max_participants="2")
    state = connect(state, P1, "alice", at(1)).state
    state = connect(state, P2, "bob", at(2)).state
    with pytest.raises(RoomRuleError) as caught:
        connect(state, P3, "carol", at(3))
    assert caught.value.code == 53105
    step = connect(state, P3, "alice", at(4))
    kicked, joined = step.facts
    assert isinstance(kicked, ParticipantDisconnected)
    assert (kicked.participant.sid, kicked.reason, kicked.code, kicked.duration) == (
        P1,
        "duplicate-identity",
        53205,
        3,
    )
    assert isinstance(joined, ParticipantConnected)
    assert joined.participant.sid == P3
    assert [p.sid for p in step.state.participants] == [P2, P3]
    assert sequences(step.facts) == [3, 4]


def test_duplicate_signals_are_idempotent() -> None:
    state = connect(new_room(), P1, "alice", at(1)).state
    assert connect(state, P1, "alice", at(2)).facts == ()
    gone = disconnect(state, P1, at(3)).state
    assert disconnect(gone, P1, at(4)).facts == ()


def test_max_participant_duration_disconnects_with_53216() -> None:
    state = new_room(max_participant_duration="600")
    state = connect(state, P1, "alice", at(0)).state
    state = connect(state, P2, "bob", at(300)).state
    step = advance(state, at(700))
    (expired,) = step.facts
    assert isinstance(expired, ParticipantDisconnected)
    assert (expired.participant.sid, expired.code, expired.at, expired.duration) == (P1, 53216, at(600), 600)
    assert [p.sid for p in step.state.participants] == [P2]


def test_explicit_complete_disconnects_everyone_then_ends() -> None:
    state = connect(new_room(), P1, "alice", at(5)).state
    step = complete(state, at(65))
    dropped, ended = step.facts
    assert isinstance(dropped, ParticipantDisconnected)
    assert (dropped.reason, dropped.duration) == ("room-ended", 60)
    assert ended == RoomEnded(ROOM, "completed", "completed", at(65), 65, 3)
    assert step.state.participants == ()
    with pytest.raises(RoomRuleError) as caught:
        complete(step.state, at(70))
    assert caught.value.code == 53112
    with pytest.raises(RoomRuleError) as caught:
        connect(step.state, P2, "bob", at(70))
    assert caught.value.code == 53118


def test_room_ends_after_24_hours_even_when_busy() -> None:
    state = new_room(max_participant_duration="86400")
    state = connect(state, P1, "alice", at(3600)).state
    step = advance(state, at(2 * 86_400))
    assert step.state.end_reason == "max-room-duration"
    assert step.state.ended_at == at(86_400)
    assert isinstance(step.facts[0], ParticipantDisconnected)
    assert step.facts[0].duration == 86_400 - 3600


def test_fail_and_restart_rebuild() -> None:
    state = connect(new_room(), P1, "alice", at(1)).state
    failed = fail(state, at(2))
    assert failed.state.status == "failed"
    assert isinstance(failed.facts[-1], RoomEnded)
    assert failed.facts[-1].status == "failed"
    assert fail(failed.state, at(3)).facts == ()
    # A restarted service only has the stored state: advance() catches up on missed deadlines.
    idle = new_room()
    assert advance(idle, at(86_400 * 3)).facts[-1] == RoomEnded(
        ROOM, "completed", "unused-timeout", at(300), 300, 1
    )


def test_sequence_numbers_are_monotonic() -> None:
    state = new_room()
    state, numbers = take_sequence(state, 3)
    assert numbers == (1, 2, 3)
    step = connect(state, P1, "alice", at(1))
    assert sequences(step.facts) == [4]


@pytest.mark.parametrize(
    ("identity", "code"),
    [
        ("", 53200),
        ("  ", 53200),
        ("a" * 129, 53201),
        ("界" * 65, 53201),
        ("tab\there", 53202),
        ("x\udc80", 53202),
    ],
)
def test_identity_rules(identity: str, code: int) -> None:
    with pytest.raises(RoomRuleError) as caught:
        validate_identity(identity)
    assert caught.value.code == code


def test_identity_limits_accept_edges() -> None:
    assert validate_identity("a" * 128) == "a" * 128
    assert validate_identity("界" * 64) == "界" * 64
