from __future__ import annotations

from libs.events.models import RecordingRule
from libs.events.sids import ParticipantSid, TrackSid
from libs.rooms.janus_secret import janus_room_secret
from libs.rooms.rules import TrackKind, TrackRef, from_event_rules, is_recorded

PA = ParticipantSid("PA" + "1" * 32)


def _track(kind: TrackKind, name: str = "cam", identity: str = "alice") -> TrackRef:
    return TrackRef(TrackSid("MT" + "2" * 32), name, kind, PA, identity)


def test_event_rules_evaluate_with_twilio_precedence() -> None:
    rules = from_event_rules(
        [RecordingRule(type="include", all=True), RecordingRule(type="exclude", kind="video")]
    )
    assert is_recorded(_track("audio"), rules)
    assert not is_recorded(_track("video"), rules)
    assert not is_recorded(_track("data"), from_event_rules([RecordingRule(type="include", all=True)]))


def test_filters_inside_a_rule_are_anded() -> None:
    rules = from_event_rules([RecordingRule(type="include", publisher="alice", kind="audio")])
    assert is_recorded(_track("audio"), rules)
    assert not is_recorded(_track("video"), rules)
    assert not is_recorded(_track("audio", identity="bob"), rules)
    assert is_recorded(_track("audio", identity=str(PA)), rules) is False
    assert not is_recorded(_track("audio"), ())


def test_janus_secret_is_stable_and_per_room() -> None:
    a = janus_room_secret("k", "RM1")
    assert a == janus_room_secret("k", "RM1")
    assert a != janus_room_secret("k", "RM2")
    assert a != janus_room_secret("k2", "RM1")
    assert len(a) == 64
