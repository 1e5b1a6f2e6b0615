"""Errors of the Janus client.

```
JanusError                  Janus refused or failed a request (code, reason from Janus)
├── JanusTimeoutError       no answer in time (transient)
└── JanusSessionLostError   the Janus session vanished (timeout, Janus restart); handles are gone
```
"""

from __future__ import annotations


class JanusError(Exception):
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
