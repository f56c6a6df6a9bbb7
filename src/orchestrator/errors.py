"""Errors raised by services; ``app.py`` turns each into an RFC 9457 problem-details response."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or type(self).__name__.lower()
        self.extra = extra


class Invalid(DomainError):
    """Well-formed but unacceptable input (names the field)."""

    status = 422
    title = "Unprocessable content"

    def __init__(self, field: str, message: str, **extra: Any) -> None:
        super().__init__(
            f"{field}: {message}", code="invalid", errors=[{"field": field, "message": message}], **extra
        )


class NotFound(DomainError):
    """Unknown id, or an object the caller may not see (never say which)."""

    status = 404
    title = "Not found"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    """The request collides with the current state (taken slot, bad transition, reused key)."""

    status = 409
    title = "Conflict"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Content too large"
