"""Errors of the room service.

```
RoomError                   base of everything the room service raises on purpose
└── RoomRuleError           a request broke a Twilio rule (also a libs.twilio TwilioError: status, code)
```
`api.py` maps `RoomRuleError` to Twilio's JSON error body. Janus failures are `libs.janus.errors.JanusError`.
"""

from __future__ import annotations

from libs.twilio.errors import TwilioError


class RoomError(Exception):
    """Base of the room service's errors."""


class RoomRuleError(RoomError, TwilioError):
    """A Twilio rule was broken: `status` is the HTTP status, `code` the Twilio error code.

    It is a `TwilioError`, so the shared FastAPI handler answers it with Twilio's error JSON.
    """

    def __init__(self, status: int, code: int, message: str) -> None:
        TwilioError.__init__(self, status, code, message)

    def __repr__(self) -> str:
        return f"RoomRuleError(status={self.status}, code={self.code}, message={self.message!r})"


def invalid(code: int, message: str) -> RoomRuleError:
    """A 400 rule error with a Twilio code."""
    return RoomRuleError(400, code, message)
