"""Twilio-style error JSON and the FastAPI handlers that always answer with it.

TwilioError            one HTTP error: status, Twilio code, message (``to_json`` gives the wire body)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class TwilioError(Exception):
    """An error answered as ``{"code","message","more_info","status"}`` with HTTP ``status``."""

    def __init__(
        self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        """The Twilio error body."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }

    def response(self) -> JSONResponse:
        """A JSONResponse carrying this error."""
        return JSONResponse(self.to_json(), status_code=self.status, headers=self.headers or None)

    def __repr__(self) -> str:
        return f"TwilioError(status={self.status}, code={self.code}, message={self.message!r})"


def not_found(path: str) -> TwilioError:
    """404 / 20404 for ``path`` (the resource path as the client asked for it, without the /v1 prefix)."""
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def unauthorized() -> TwilioError:
    """401 / 20003 with a Basic challenge."""
    return TwilioError(401, 20003, "Authenticate", headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})


def forbidden(message: str = "Forbidden") -> TwilioError:
    """403 / 20403."""
    return TwilioError(403, 20403, message)


def bad_request(code: int, message: str) -> TwilioError:
    """400 with a caller-chosen Twilio code (20001 generic, 53xxx video-specific)."""
    return TwilioError(400, code, message)


def method_not_allowed(method: str) -> TwilioError:
    """405 / 20004."""
    return TwilioError(405, 20004, f"Method {method} not allowed")


def internal_error() -> TwilioError:
    """500 / 20500 without details (they go to the log)."""
    return TwilioError(500, 20500, "Internal Server Error")


def _resource_path(request: Request) -> str:
    path = request.url.path
    return path[3:] if path.startswith("/v1/") else path


async def _on_twilio_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TwilioError)  # noqa: S101  # registered for TwilioError only
    return exc.response()


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101  # registered for this type only
    names = [str(err["loc"][-1]) for err in exc.errors() if err.get("loc")]
    name = names[0] if names else "request"
    return bad_request(20001, f"Invalid parameter: {name}").response()


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101  # registered for this type only
    if exc.status_code == 404:
        return not_found(_resource_path(request)).response()
    if exc.status_code == 405:
        response = method_not_allowed(request.method).response()
        if exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    if exc.status_code == 401:
        return unauthorized().response()
    detail = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    return TwilioError(exc.status_code, exc.status_code, detail).response()


class _CatchAllMiddleware:
    """Turns any unhandled exception into a 500 / 20500 Twilio body, logged once with its traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception(
                "unhandled error", extra={"path": scope.get("path"), "method": scope.get("method")}
            )
            if started:
                raise
            response = internal_error().response()
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response of ``app`` a Twilio error JSON (see module docstring)."""
    app.add_exception_handler(TwilioError, _on_twilio_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_middleware(_CatchAllMiddleware)
