"""Recording rules (Twilio §2.6) and subscribe rules (§2.4): validation, output form and evaluation.

Both grammars are lists of `{"type": "include"|"exclude", "all": true}` or filter rules with
`publisher` (identity or PA SID), `track` (name or MT SID) and `kind`. Filters inside a rule are
ANDed; a track is selected when some `include` rule matches it and no `exclude` rule does.
Recording rules accept kinds audio|video (53120); subscribe rules audio|video|data (53215).
Pure: no I/O. The evaluation (`Rule`, `TrackRef`, `is_recorded`, …) lives in libs.rooms.rules, shared
with the recorder; this module adds the validation with the room service's error codes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from libs.rooms.rules import (
    Rule,
    RuleType,
    TrackKind,
    TrackRef,
    include_all,
    is_recorded,
    is_subscribed,
    rule_matches,
)
from services.room.errors import RoomRuleError, invalid

__all__ = [
    "MAX_RULES",
    "Rule",
    "RuleType",
    "TrackKind",
    "TrackRef",
    "include_all",
    "is_recorded",
    "is_subscribed",
    "parse_recording_rules",
    "parse_subscribe_rules",
    "rule_matches",
    "rules_to_json",
]

MAX_RULES: Final = 20
RECORDING_RULES_CODE: Final = 53120
SUBSCRIBE_RULES_CODE: Final = 53215
_RECORDING_KINDS: Final[frozenset[str]] = frozenset({"audio", "video"})
_SUBSCRIBE_KINDS: Final[frozenset[str]] = frozenset({"audio", "video", "data"})
_PRIORITIES: Final[frozenset[str]] = frozenset({"low", "standard", "high"})


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
