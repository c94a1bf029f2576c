"""Errors as the OpenAI API answers them: an HTTP status and `{"error": {message, type, param, code}}`."""

from __future__ import annotations

from typing import Any

from ..errors import EngineError

INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
SERVER_ERROR = "server_error"


class ApiError(Exception):
    """One failed request: its status, one message saying what is wrong, and OpenAI's type / param / code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code

    def to_json(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


def bad_value(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    """400: a field's value cannot be used."""
    return ApiError(400, message, param=param, code=code)


def unsupported(param: str, what: str) -> ApiError:
    """400: a field this server does not implement (rather than silently ignoring it)."""
    return ApiError(400, f"{param}: {what}", param=param, code="unsupported_parameter")


def from_engine_error(exc: EngineError) -> ApiError:
    """The engine's typed errors (errors.py) as HTTP errors: the request's fault is 400, memory 503, bugs 500."""
    message = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
    if exc.error_type in ("bad_request", "unsupported", "not_found"):
        return ApiError(400, message, code=exc.error_type)
    if exc.error_type == "oom":
        return ApiError(503, message, error_type=SERVER_ERROR, code="out_of_memory")
    return ApiError(500, message, error_type=SERVER_ERROR, code="internal_error")
