"""Typed engine errors. Every failure a request can meet becomes one of these and is answered as
`{"ok": false, "error": {"type", "message", "hint"}}`; the process stays up."""

from __future__ import annotations

ERROR_TYPES: tuple[str, ...] = ("bad_request", "not_found", "unsupported", "oom", "not_loaded", "internal")


class EngineError(Exception):
    """An error with a protocol type, a message saying what is wrong and a hint saying what to do."""

    error_type: str = "internal"

    def __init__(self, message: str, *, hint: str | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if error_type is not None:
            if error_type not in ERROR_TYPES:
                raise ValueError(f"unknown error type {error_type!r}")
            self.error_type = error_type

    def to_json(self) -> dict[str, str]:
        out = {"type": self.error_type, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class BadRequest(EngineError):
    error_type = "bad_request"


class NotFound(EngineError):
    error_type = "not_found"


class Unsupported(EngineError):
    error_type = "unsupported"


class NotLoaded(EngineError):
    error_type = "not_loaded"


class OutOfMemory(EngineError):
    error_type = "oom"


class InternalError(EngineError):
    error_type = "internal"


class ModelError(EngineError):
    """A model the native engine cannot build or run as asked (`bad_request` unless `error_type` says else)."""

    error_type = "bad_request"
