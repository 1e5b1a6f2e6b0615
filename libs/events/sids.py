"""Typed Twilio-style SIDs: two upper-case letters plus 32 lower-case hex digits.

Every resource identifier that crosses a module boundary is one of these types, never a bare ``str``.
They are ``str`` subclasses, so they compare, hash and serialize like the plain string.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, ClassVar, Self

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_BODY = re.compile(r"^([A-Z]{2})([0-9a-fA-F]{32})$")


class Sid(str):
    """Base SID. Subclasses set ``prefix``; the base accepts any two-letter prefix.

    Raises ValueError when the text is not ``<prefix>`` + 32 hex digits. Upper-case hex is accepted and
    normalized to lower case.
    """

    prefix: ClassVar[str] = ""

    def __new__(cls, value: str) -> Self:
        if not isinstance(value, str):
            raise TypeError("a SID must be a string")
        match = _BODY.match(value)
        if match is None:
            raise ValueError(f"invalid SID {value[:40]!r}: expected two letters and 32 hex digits")
        letters, digits = match.groups()
        if cls.prefix and letters != cls.prefix:
            raise ValueError(f"invalid SID {value[:40]!r}: expected prefix {cls.prefix}")
        return super().__new__(cls, letters + digits.lower())

    @classmethod
    def new(cls) -> Self:
        """A fresh random SID of this type (128 bits from ``secrets``)."""
        if not cls.prefix:
            raise TypeError("Sid.new() needs a concrete subclass with a prefix")
        return cls(cls.prefix + secrets.token_hex(16))

    @classmethod
    def is_valid(cls, value: str) -> bool:
        """True when ``value`` parses as this SID type."""
        try:
            cls(value)
        except (TypeError, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: str) -> Sid:
            return cls(value)

        from_str = core_schema.no_info_after_validator_function(validate, core_schema.str_schema())
        return core_schema.json_or_python_schema(
            json_schema=from_str,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_str]),
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="always"),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        letters = cls.prefix or "[A-Z]{2}"
        return {"type": "string", "pattern": f"^{letters}[0-9a-f]{{32}}$"}


class AccountSid(Sid):
    prefix = "AC"


class ApiKeySid(Sid):
    prefix = "SK"


class RoomSid(Sid):
    prefix = "RM"


class ParticipantSid(Sid):
    prefix = "PA"


class TrackSid(Sid):
    prefix = "MT"


class RecordingSid(Sid):
    prefix = "RT"


class CompositionSid(Sid):
    prefix = "CJ"


class HookSid(Sid):
    prefix = "HK"


class CredentialSid(Sid):
    prefix = "CR"


SID_TYPES: dict[str, type[Sid]] = {
    t.prefix: t
    for t in (
        AccountSid,
        ApiKeySid,
        RoomSid,
        ParticipantSid,
        TrackSid,
        RecordingSid,
        CompositionSid,
        HookSid,
        CredentialSid,
    )
}


def parse_sid(value: str) -> Sid | None:
    """The typed SID for ``value`` chosen by its prefix, or None when it is not a known SID."""
    if not isinstance(value, str) or len(value) != 34:
        return None
    sid_type = SID_TYPES.get(value[:2])
    if sid_type is None:
        return None
    try:
        return sid_type(value)
    except ValueError:
        return None
