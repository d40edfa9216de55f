"""Our error hierarchy: each error carries its HTTP status, a stable code and retryability."""

from __future__ import annotations

from typing import Any

from .log import clip

MAX_MESSAGE = 500


def shown(value: Any, limit: int = 200) -> str:
    """A caller's value quoted in a message, cut to about `limit` characters."""
    return clip(repr(value), limit)


class AppError(Exception):
    """Base of every error we answer with; never raised bare."""

    status = 500
    code = "internal"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        message = clip(message, MAX_MESSAGE)  # a message may quote what a caller sent
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        # Fields that let an operator find and replay what failed (catalog, record, hook...).
        self.context: dict[str, str] = {}

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class BadRequest(AppError):
    """The request body or parameters are malformed."""

    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    """A bad signature or API key."""

    status = 401
    code = "unauthorized"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class Unprocessable(AppError):
    """Well-formed, but the meeting cannot become an event (names the field)."""

    status = 422
    code = "invalid_meeting"


class ConfigError(AppError):
    """Missing or invalid settings or secrets: an operator must fix something."""

    status = 500
    code = "config_invalid"


class UpstreamError(AppError):
    """Bpium or Google refused a request in a way a retry will not fix."""

    status = 502
    code = "upstream_error"


class UpstreamUnavailable(AppError):
    """Bpium, Google or Secret Manager stayed unavailable through our retries."""

    status = 503
    code = "upstream_unavailable"
    retryable = True


class NotFound(UpstreamError):
    """The upstream object does not exist (adapters raise it; use cases decide what it means)."""

    code = "not_found"


class Conflict(UpstreamError):
    """The upstream object already exists (Calendar's 409 on insert with our id)."""

    code = "conflict"


class Gone(UpstreamError):
    """The upstream object was deleted (Calendar's 410). Never answered as 410 to Bpium."""

    code = "gone"


class Forbidden(UpstreamError):
    """Calendar's 403 that is not a rate limit: no access, or a write Google refuses (such
    as reviving an event a person deleted in the Calendar UI)."""

    code = "calendar_forbidden"


class PreconditionFailed(UpstreamError):
    """Calendar's 412: the event changed since the etag we sent as If-Match."""

    code = "precondition_failed"
