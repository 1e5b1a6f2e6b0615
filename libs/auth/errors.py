"""Errors of the identity layer.

AuthError
 ├── UnknownAccount     the account SID does not exist
 ├── SealingError       a sealed secret cannot be opened (wrong master key or tampered row)
 └── AccessTokenError   a client Access Token was refused (carries Twilio's 201xx code)
"""


class AuthError(Exception):
    """Base of libs.auth errors."""


class UnknownAccount(AuthError):  # noqa: N818  # reads as a fact, like the events
    """No account with that SID."""


class SealingError(AuthError):
    """The sealed value cannot be opened."""


class AccessTokenError(AuthError):
    """An Access Token was refused. ``code`` is Twilio's (20101–20107, 20157)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
