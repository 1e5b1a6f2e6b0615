"""Errors of the room service.

```
RoomError                   base of everything the room service raises on purpose
├── RoomRuleError           a request broke a Twilio rule (also a libs.twilio TwilioError: status, code)
└── JanusError              Janus refused or failed a request (code, reason from Janus)
    ├── JanusTimeoutError   no answer in time (transient)
    └── JanusSessionLostError  the Janus session vanished (timeout, Janus restart); handles are gone
```
`api.py` maps `RoomRuleError` to Twilio's JSON error body; `JanusError` is an infrastructure failure.
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


class JanusError(RoomError):
    """Janus answered with an error. `code` is Janus's numeric code (0 when it gave none)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusTimeoutError(JanusError):
    """Janus did not answer within the request timeout."""

    def __init__(self, reason: str) -> None:
        super().__init__(0, reason)


class JanusSessionLostError(JanusError):
    """The Janus session no longer exists; every handle attached to it is dead."""

    def __init__(self, reason: str) -> None:
        super().__init__(458, reason)


# Janus core and VideoRoom error codes the service reacts to.
JANUS_SESSION_NOT_FOUND = 458
JANUS_HANDLE_NOT_FOUND = 459
VIDEOROOM_NO_SUCH_ROOM = 426
VIDEOROOM_ROOM_EXISTS = 427
VIDEOROOM_NO_SUCH_FEED = 428
VIDEOROOM_ID_EXISTS = 436
