"""Typed SIDs: validation, normalization, pydantic integration."""

import pytest
from pydantic import BaseModel, ValidationError

from libs.events.sids import AccountSid, CompositionSid, RoomSid, Sid, TrackSid, parse_sid

HEX = "0123456789abcdef" * 2


def test_new_has_prefix_and_32_hex() -> None:
    sid = RoomSid.new()
    assert sid.startswith("RM") and len(sid) == 34
    assert int(sid[2:], 16) >= 0
    assert RoomSid.new() != sid


def test_upper_case_hex_is_normalized() -> None:
    sid = RoomSid("RM" + HEX.upper())
    assert sid == "RM" + HEX
    assert isinstance(sid, str) and isinstance(sid, RoomSid)


@pytest.mark.parametrize(
    "value", ["", "RM", "RM" + HEX[:-1], "RM" + HEX + "0", "rm" + HEX, "CJ" + HEX, "RM" + "g" * 32]
)
def test_invalid_room_sids_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        RoomSid(value)


def test_base_sid_accepts_any_prefix_but_cannot_mint() -> None:
    assert Sid("ZZ" + HEX) == "ZZ" + HEX
    with pytest.raises(TypeError):
        Sid.new()


def test_parse_sid_picks_subclass() -> None:
    assert type(parse_sid("CJ" + HEX)) is CompositionSid
    assert type(parse_sid("MT" + HEX.upper())) is TrackSid
    assert parse_sid("ZZ" + HEX) is None
    assert parse_sid("RM123") is None
    assert parse_sid("RM" + "x" * 32) is None


class _Model(BaseModel):
    room: RoomSid
    account: AccountSid | None = None


def test_pydantic_validates_and_serializes() -> None:
    model = _Model.model_validate({"room": "RM" + HEX.upper()})
    assert type(model.room) is RoomSid
    assert model.model_dump() == {"room": "RM" + HEX, "account": None}
    assert model.model_dump_json() == '{"room":"RM' + HEX + '","account":null}'
    with pytest.raises(ValidationError):
        _Model.model_validate({"room": "AC" + HEX})
    schema = _Model.model_json_schema()
    assert schema["properties"]["room"]["pattern"] == "^RM[0-9a-f]{32}$"


def test_sid_equals_and_hashes_like_str() -> None:
    sid = RoomSid("RM" + HEX)
    assert {str(sid): 1}["RM" + HEX] == 1 and hash(sid) == hash("RM" + HEX)
    assert repr(sid) == "RoomSid('RM" + HEX + "')"
