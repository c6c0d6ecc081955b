"""One error root for everything a user can get wrong, with a code that maps to an HTTP status.

The server turns a ``StratoError`` into ``{"error": {"code", "message", "details"}}`` with the status
from ``HTTP_STATUS``; the SDK turns that body back into the same exception; the CLI prints ``message``
as one line. Anything that is not a ``StratoError`` is an internal error: logged with an id the user
can quote, never shown as a stack trace.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    CONFLICT = "CONFLICT"
    RESOURCES_IMPOSSIBLE = "RESOURCES_IMPOSSIBLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAVAILABLE = "UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    INTERNAL = "INTERNAL"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.RESOURCES_IMPOSSIBLE: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TIMEOUT: 408,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class StratoError(Exception):
    """An error the user can act on. ``message`` is one line that names what to fix."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StratoError:
        try:
            code = ErrorCode(data.get("code", "INTERNAL"))
        except ValueError:
            code = ErrorCode.INTERNAL
        return cls(str(data.get("message", "unknown error")), code=code, details=data.get("details") or {})

    def __str__(self) -> str:
        return self.message


class InvalidArgument(StratoError):
    code = ErrorCode.INVALID_ARGUMENT


class NotFound(StratoError):
    code = ErrorCode.NOT_FOUND


class AlreadyExists(StratoError):
    code = ErrorCode.ALREADY_EXISTS


class Conflict(StratoError):
    code = ErrorCode.CONFLICT


class ResourcesImpossible(StratoError):
    code = ErrorCode.RESOURCES_IMPOSSIBLE


class Unauthenticated(StratoError):
    code = ErrorCode.UNAUTHENTICATED


class Unavailable(StratoError):
    code = ErrorCode.UNAVAILABLE


class Timeout(StratoError):
    code = ErrorCode.TIMEOUT


class PayloadTooLarge(StratoError):
    code = ErrorCode.PAYLOAD_TOO_LARGE
