"""What the parts of the Google stand-in share: the API error shape, JSON answers, times.

- `ApiError`: an error of a Google API, answered as `{"error": {"code", "message", "errors",
  "status"}}`.
- `json_response`: Google's JSON (`application/json; charset=UTF-8`, indented).
- RFC 3339 parsing and formatting as Google reads and writes it.
- `admin_body` / `need`: the JSON bodies of the `/_sandbox/...` admin routes.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, request

JSON_TYPE = "application/json; charset=UTF-8"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


# ---------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A Google API error, answered in Google's JSON shape."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        detail: str | None = None,
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.detail = detail or message
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {"domain": "global", "reason": self.reason, "message": self.detail}
        if self.location:
            item["location"] = self.location
            item["locationType"] = self.location_type or "parameter"
        error: dict[str, Any] = {"code": self.code, "message": self.message, "errors": [item]}
        if self.code in STATUS_NAMES:
            error["status"] = STATUS_NAMES[self.code]
        return {"error": error}

    def response(self) -> Response:
        return json_response(self.body(), self.code, self.headers)


def bad(message: str, reason: str = "invalid") -> ApiError:
    """A 400 with reason `invalid` (or `reason`)."""
    return ApiError(400, reason, message)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body, indent=1), status=status, content_type=JSON_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def random_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


# ---------------------------------------------------------------------------- admin bodies


def admin_body() -> dict[str, Any]:
    """The JSON object an admin route was sent; `{}` when there is none."""
    data = request.get_json(force=True, silent=True)
    return data if isinstance(data, dict) else {}


def need(data: dict[str, Any], *names: str) -> Iterator[Any]:
    """The values of `names` in `data`, in order; a 400 `required` names the first missing."""
    for name in names:
        if name not in data:
            raise ApiError(400, "required", f"Missing {name}.")
        yield data[name]


# ---------------------------------------------------------------------------- time


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$"
)


def parse_date_time(text: str) -> datetime | None:
    """RFC 3339 date-time; naive when the offset is missing, None when malformed."""
    match = _DATE_TIME_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz: timezone | None = None
    if offset and offset in ("Z", "z"):
        tz = UTC
    elif offset:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            return None
        sign = 1 if offset[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute),
            min(int(second), 59), int((fraction or "0").ljust(6, "0")[:6]), tzinfo=tz,
        )  # fmt: skip
    except ValueError:
        return None


def parse_date(text: str) -> date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def rfc3339_millis(epoch: float) -> str:
    """`2026-01-01T00:00:00.000Z`, as Google writes `created` and `updated`."""
    millis = int(epoch * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


def rfc3339_seconds(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_zone(name: str) -> ZoneInfo | None:
    """The IANA time zone `name`; None when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
