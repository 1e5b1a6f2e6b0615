"""Recording rules (Twilio §2.6) and subscribe rules (§2.4): validation, output form and evaluation.

Both grammars are lists of `{"type": "include"|"exclude", "all": true}` or filter rules with
`publisher` (identity or PA SID), `track` (name or MT SID) and `kind`. Filters inside a rule are
ANDed; a track is selected when some `include` rule matches it and no `exclude` rule does.
Recording rules accept kinds audio|video (53120); subscribe rules audio|video|data (53215).
Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from libs.events.sids import ParticipantSid, TrackSid
from services.room.errors import RoomRuleError, invalid

RuleType = Literal["include", "exclude"]
TrackKind = Literal["audio", "video", "data"]

MAX_RULES: Final = 20
RECORDING_RULES_CODE: Final = 53120
SUBSCRIBE_RULES_CODE: Final = 53215
_RECORDING_KINDS: Final[frozenset[str]] = frozenset({"audio", "video"})
_SUBSCRIBE_KINDS: Final[frozenset[str]] = frozenset({"audio", "video", "data"})
_PRIORITIES: Final[frozenset[str]] = frozenset({"low", "standard", "high"})


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


JsonRule = dict[str, str | bool]
_Fail = Callable[[str], RoomRuleError]


def rules_to_json(rules: Sequence[Rule]) -> list[JsonRule]:
    """Output form: null fields omitted, key order type, all, publisher, track, kind."""
    out: list[JsonRule] = []
    for rule in rules:
        item: JsonRule = {"type": rule.type}
        if rule.all:
            item["all"] = True
        if rule.publisher is not None:
            item["publisher"] = rule.publisher
        if rule.track is not None:
            item["track"] = rule.track
        if rule.kind is not None:
            item["kind"] = rule.kind
        out.append(item)
    return out


def parse_recording_rules(raw: str | object) -> tuple[Rule, ...]:
    """Validate recording rules (JSON text or already-decoded list); raises 53120."""
    return _parse(raw, kinds=_RECORDING_KINDS, code=RECORDING_RULES_CODE, allow_priority=False)


def parse_subscribe_rules(raw: str | object) -> tuple[Rule, ...]:
    """Validate subscribe rules (JSON text or already-decoded list); raises 53215."""
    return _parse(raw, kinds=_SUBSCRIBE_KINDS, code=SUBSCRIBE_RULES_CODE, allow_priority=True)


def _parse(raw: str | object, *, kinds: frozenset[str], code: int, allow_priority: bool) -> tuple[Rule, ...]:
    def fail(message: str) -> RoomRuleError:
        return invalid(code, f"Invalid rules: {message}")

    decoded: object = raw
    if isinstance(raw, str):
        try:
            decoded = json.loads(raw)
        except ValueError:
            raise fail("not valid JSON") from None
    # Lenient: some clients wrap the list as {"rules": [...]}.
    if isinstance(decoded, Mapping) and set(decoded) == {"rules"}:
        decoded = decoded["rules"]
    if not isinstance(decoded, list):
        raise fail("expected a JSON array of rules")
    if not decoded:
        raise fail("the rule list must not be empty")
    if len(decoded) > MAX_RULES:
        raise fail(f"at most {MAX_RULES} rules are allowed")
    return tuple(_parse_rule(item, kinds=kinds, fail=fail, allow_priority=allow_priority) for item in decoded)


def _truthy_all(value: object) -> bool | None:
    if value is True:
        return True
    # Twilio's own curl examples send "all": "true".
    if isinstance(value, str) and value.strip().lower() == "true":
        return True
    return None


def _parse_rule(
    item: object,
    *,
    kinds: frozenset[str],
    fail: _Fail,
    allow_priority: bool,
) -> Rule:
    if not isinstance(item, Mapping):
        raise fail("each rule must be an object")
    fields = {str(key): value for key, value in item.items() if value is not None}
    if allow_priority and "priority" in fields:
        # Legacy and output-only in Twilio; accepted and dropped.
        priority = fields.pop("priority")
        if not isinstance(priority, str) or priority.lower() not in _PRIORITIES:
            raise fail("priority must be low, standard or high")
    unknown = set(fields) - {"type", "all", "publisher", "track", "kind"}
    if unknown:
        raise fail(f"unknown field {sorted(unknown)[0]!r}")
    rule_type = fields.get("type")
    if rule_type == "include":
        typed: RuleType = "include"
    elif rule_type == "exclude":
        typed = "exclude"
    elif rule_type is None:
        raise fail("type is required")
    else:
        raise fail("type must be include or exclude")
    if "all" in fields:
        if _truthy_all(fields["all"]) is None:
            raise fail("all must be true")
        if len(fields) != 2:
            raise fail("all must be alone with type")
        return Rule(type=typed, all=True)
    publisher = _filter_value(fields.get("publisher"), "publisher", fail)
    track = _filter_value(fields.get("track"), "track", fail)
    kind_raw = _filter_value(fields.get("kind"), "kind", fail)
    kind: TrackKind | None = None
    if kind_raw is not None:
        if kind_raw not in kinds:
            raise fail(f"kind must be one of {', '.join(sorted(kinds))}")
        kind = "audio" if kind_raw == "audio" else "video" if kind_raw == "video" else "data"
    if publisher is None and track is None and kind is None:
        raise fail("a rule needs all, publisher, track or kind")
    return Rule(type=typed, publisher=publisher, track=track, kind=kind)


def _filter_value(value: object, name: str, fail: _Fail) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value == "":
        raise fail(f"{name} must be a non-empty string")
    return value


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
