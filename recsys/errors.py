"""Expected failures: each carries a one-line message, a hint, and a stable error code.

The CLI turns a `RecsysError` into one line on stderr (or a JSON error on stdout under `--json`)
and a non-zero exit code; handlers map them to 4xx/5xx responses. Anything else is a bug.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The fixed set of error codes, with the process exit code of each."""

    USAGE = "usage"
    VALIDATION = "validation"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    GATE_FAILED = "gate_failed"
    MISSING_TOOL = "missing_tool"
    CREDENTIALS = "credentials"
    FAILED = "failed"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {
    ErrorCode.USAGE: 2,
    ErrorCode.VALIDATION: 3,
    ErrorCode.NOT_FOUND: 4,
    ErrorCode.CONFLICT: 5,
    ErrorCode.UNAVAILABLE: 6,
    ErrorCode.GATE_FAILED: 7,
    ErrorCode.MISSING_TOOL: 8,
    ErrorCode.CREDENTIALS: 9,
    ErrorCode.FAILED: 1,
}


class RecsysError(Exception):
    """An expected failure with a message a person can act on."""

    code: ErrorCode = ErrorCode.FAILED

    def __init__(self, message: str, hint: str = "", code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message, "hint": self.hint}


class ValidationError(RecsysError):
    code = ErrorCode.VALIDATION


class NotFoundError(RecsysError):
    code = ErrorCode.NOT_FOUND


class ConflictError(RecsysError):
    code = ErrorCode.CONFLICT


class UnavailableError(RecsysError):
    code = ErrorCode.UNAVAILABLE


class MissingSecretError(NotFoundError):
    """A secret (or a key inside one) that the settings need is not there."""
