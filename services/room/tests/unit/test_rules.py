"""Recording and subscribe rules: validation codes, output form and evaluation."""

from __future__ import annotations

import json

import pytest

from libs.events.sids import ParticipantSid, TrackSid
from services.room.errors import RoomRuleError
from services.room.rules import (
    Rule,
    TrackKind,
    TrackRef,
    include_all,
    is_recorded,
    is_subscribed,
    parse_recording_rules,
    parse_subscribe_rules,
    rules_to_json,
)

ALICE = ParticipantSid("PA" + "a" * 32)
BOB = ParticipantSid("PA" + "b" * 32)


def track(
    kind: TrackKind, name: str, publisher: ParticipantSid, identity: str, sid_char: str = "1"
) -> TrackRef:
    return TrackRef(
        track_sid=TrackSid("MT" + sid_char * 32),
        track_name=name,
        kind=kind,
        publisher_sid=publisher,
        publisher_identity=identity,
    )


ALICE_MIC = track("audio", "mic", ALICE, "alice", "1")
ALICE_CAM = track("video", "cam", ALICE, "alice", "2")
BOB_MIC = track("audio", "mic", BOB, "bob", "3")
BOB_CAM = track("video", "cam", BOB, "bob", "4")
BOB_DATA = track("data", "chat", BOB, "bob", "5")
ALL = (ALICE_MIC, ALICE_CAM, BOB_MIC, BOB_CAM)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "{}",
        "[]",
        '"include"',
        "[1]",
        '[{"all":true}]',
        '[{"type":"record","all":true}]',
        '[{"type":"include","all":false}]',
        '[{"type":"include","all":true,"kind":"audio"}]',
        '[{"type":"include"}]',
        '[{"type":"include","kind":"data"}]',
        '[{"type":"include","kind":"screen"}]',
        '[{"type":"include","publisher":""}]',
        '[{"type":"include","publisher":7}]',
        '[{"type":"include","colour":"red"}]',
        '[{"type":"include","kind":"audio","priority":"high"}]',
        json.dumps([{"type": "include", "kind": "audio"}] * 21),
    ],
)
def test_invalid_recording_rules_are_53120(raw: str) -> None:
    with pytest.raises(RoomRuleError) as caught:
        parse_recording_rules(raw)
    assert (caught.value.status, caught.value.code) == (400, 53120)


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        '[{"type":"include","all":true,"publisher":"bob"}]',
        '[{"type":"include","kind":"screen"}]',
        '[{"type":"include","kind":"audio","priority":"urgent"}]',
        json.dumps([{"type": "exclude", "publisher": "x"}] * 21),
    ],
)
def test_invalid_subscribe_rules_are_53215(raw: str) -> None:
    with pytest.raises(RoomRuleError) as caught:
        parse_subscribe_rules(raw)
    assert caught.value.code == 53215


def test_kinds_differ_between_grammars() -> None:
    assert parse_subscribe_rules('[{"type":"include","kind":"data"}]') == (Rule(type="include", kind="data"),)


def test_accepted_forms_and_output_omits_nulls() -> None:
    raw = json.dumps(
        {
            "rules": [
                {"type": "include", "all": "true"},
                {"type": "exclude", "publisher": "bob", "track": None, "kind": "audio"},
                {"type": "include", "track": "cam", "priority": "high"},
            ]
        }
    )
    rules = parse_subscribe_rules(raw)
    assert rules_to_json(rules) == [
        {"type": "include", "all": True},
        {"type": "exclude", "publisher": "bob", "kind": "audio"},
        {"type": "include", "track": "cam"},
    ]
    assert parse_recording_rules([{"type": "include", "all": True}]) == include_all()
    assert len(parse_recording_rules(json.dumps([{"type": "include", "kind": "audio"}] * 20))) == 20


@pytest.mark.parametrize(
    ("rules", "recorded"),
    [
        ([{"type": "include", "all": True}], ALL),
        ([{"type": "exclude", "all": True}], ()),
        ([{"type": "include", "kind": "audio"}], (ALICE_MIC, BOB_MIC)),
        (
            [{"type": "include", "publisher": "alice"}, {"type": "include", "kind": "audio"}],
            (ALICE_MIC, ALICE_CAM, BOB_MIC),
        ),
        (
            [{"type": "include", "all": True}, {"type": "exclude", "publisher": str(BOB)}],
            (ALICE_MIC, ALICE_CAM),
        ),
        (
            [{"type": "include", "all": True}, {"type": "exclude", "publisher": "bob", "kind": "audio"}],
            (ALICE_MIC, ALICE_CAM, BOB_CAM),
        ),
        ([{"type": "include", "track": "mic"}], (ALICE_MIC, BOB_MIC)),
        ([{"type": "include", "track": "M" + "T" + "2" * 32}], (ALICE_CAM,)),
        ([{"type": "include", "publisher": "alice", "track": "cam", "kind": "audio"}], ()),
        ([{"type": "exclude", "kind": "video"}], ()),
    ],
)
def test_recording_evaluation(rules: list[dict[str, object]], recorded: tuple[TrackRef, ...]) -> None:
    parsed = parse_recording_rules(rules)
    assert tuple(t for t in ALL if is_recorded(t, parsed)) == recorded


def test_data_tracks_never_recorded_but_can_be_subscribed() -> None:
    assert not is_recorded(BOB_DATA, include_all())
    assert is_subscribed(BOB_DATA, include_all())
    rules = parse_subscribe_rules('[{"type":"include","all":true},{"type":"exclude","kind":"data"}]')
    assert not is_subscribed(BOB_DATA, rules)
    assert is_subscribed(BOB_MIC, rules)
