"""Recording and subscribe rule evaluation (Twilio §2.4, §2.6), shared by the room and recorder services.

A rule is `{"type": "include"|"exclude", "all": true}` or a filter rule with `publisher` (identity or PA
SID), `track` (name or MT SID) and `kind`. Filters inside a rule are ANDed; a track is selected when some
`include` rule matches it and no `exclude` rule does. Data tracks are never recorded. Validation of the
client's JSON stays with the room service (it owns the error codes); this module is pure evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from libs.events.models import RecordingRule
from libs.events.sids import ParticipantSid, TrackSid

RuleType = Literal["include", "exclude"]
TrackKind = Literal["audio", "video", "data"]


@dataclass(frozen=True)
class Rule:
    """One rule. `all` rules carry no filter; filter rules carry at least one of the three filters."""

    type: RuleType
    all: bool = False
    publisher: str | None = None
    track: str | None = None
    kind: TrackKind | None = None


@dataclass(frozen=True)
class TrackRef:
    """The facts rules match against: the track and its publisher."""

    track_sid: TrackSid
    track_name: str
    kind: TrackKind
    publisher_sid: ParticipantSid
    publisher_identity: str


def include_all() -> tuple[Rule, ...]:
    """`[{"type":"include","all":true}]`: what RecordParticipantsOnConnect=true installs, and the
    subscribe rules every participant starts with."""
    return (Rule(type="include", all=True),)


def from_event_rules(rules: Iterable[RecordingRule]) -> tuple[Rule, ...]:
    """The rules carried by RoomCreated / RecordingRulesUpdated, as evaluable rules."""
    return tuple(
        Rule(type=r.type, all=bool(r.all), publisher=r.publisher, track=r.track, kind=r.kind) for r in rules
    )


def rule_matches(rule: Rule, track: TrackRef) -> bool:
    """Does one rule select this track? `all` matches everything; filters are ANDed."""
    if rule.all:
        return True
    if rule.publisher is not None and rule.publisher not in (track.publisher_identity, track.publisher_sid):
        return False
    if rule.track is not None and rule.track not in (track.track_name, track.track_sid):
        return False
    return rule.kind is None or rule.kind == track.kind


def _selected(track: TrackRef, rules: Sequence[Rule]) -> bool:
    included = any(rule.type == "include" and rule_matches(rule, track) for rule in rules)
    return included and not any(rule.type == "exclude" and rule_matches(rule, track) for rule in rules)


def is_recorded(track: TrackRef, rules: Sequence[Rule]) -> bool:
    """Recording rules: data tracks are never recorded; otherwise include-matched and not excluded."""
    return track.kind != "data" and _selected(track, rules)


def is_subscribed(track: TrackRef, rules: Sequence[Rule]) -> bool:
    """Subscribe rules: include-matched and not excluded."""
    return _selected(track, rules)
