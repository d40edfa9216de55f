"""What the parts of the Google stand-in share: the wire format around the API calls.

- `ApiError`: an error of a Google API, answered as `{"error": {"code", "message", "errors",
  "status"}}`.
- `json_response`: Google's JSON (`application/json; charset=UTF-8`, indented).
- `answer_batch`: the batch endpoint's `multipart/mixed` answer, part by part, with the
  faults aimed at parts (`common.Fault(part=True)`) and the log of parts.
- `MethodOverride`: the long-URL form of a GET (a POST with `X-HTTP-Method-Override: GET`
  and the query as a form-encoded body), turned back into the GET before routing.
- RFC 3339 parsing and formatting as Google reads and writes it.
- `admin_body` / `need`: the JSON bodies of the `/_sandbox/...` admin routes.
"""

from __future__ import annotations

import email.message
import email.parser
import io
import json
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, request

from sandbox import common

API_PREFIX = "/calendar/v3"
BATCH_PATH = "/batch/calendar/v3"
MAX_BATCH_CALLS = 1000
JSON_TYPE = "application/json; charset=UTF-8"
FORM_TYPE = "application/x-www-form-urlencoded"
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
        domain: str = "global",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.detail = detail or message
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}
        self.domain = domain

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.detail,
        }
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


# ---------------------------------------------------------------------------- batch


def answer_batch(client: Any, recorder: common.Recorder) -> Response:
    """`multipart/mixed` of `application/http` parts, answered part by part by `client` (a
    test client of an app with the API routes only: no call log, no whole-request faults).

    Each part is logged in `recorder.part_calls` and may be hit by a part fault.
    """
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/mixed"):
        raise ApiError(400, "badRequest", "Batch requests must be multipart/mixed.")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + request.get_data())
    parts = message.get_payload() if message.is_multipart() else None
    if not isinstance(parts, list) or not parts:
        raise ApiError(400, "badRequest", "Batch request has no parts.")
    if len(parts) > MAX_BATCH_CALLS:
        raise ApiError(400, "badRequest", f"A batch holds at most {MAX_BATCH_CALLS} calls.")
    outer_auth = request.headers.get("Authorization")
    boundary = "batch_" + secrets.token_hex(12)
    chunks = []
    for part in parts:
        if not isinstance(part, email.message.Message):
            raise ApiError(400, "badRequest", "Batch part is not a MIME part.")
        raw = part.get_payload(decode=True)
        raw_bytes = raw if isinstance(raw, bytes) else b""
        status, headers, payload = _batch_part(client, raw_bytes, outer_auth, recorder)
        content_id = part.get("Content-ID", "")
        lines = [f"--{boundary}", "Content-Type: application/http"]
        if content_id.startswith("<"):
            lines.append(f"Content-ID: <response-{content_id[1:]}")
        lines += ["", f"HTTP/1.1 {status} {_phrase(status)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        chunks.append("\r\n".join([*lines, "", payload]))
    body = "\r\n".join([*chunks, f"--{boundary}--", ""])
    return Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _batch_part(
    client: Any, raw: bytes, outer_auth: str | None, recorder: common.Recorder
) -> tuple[int, list[tuple[str, str]], str]:
    request_line, _, rest = raw.partition(b"\n")
    fields = request_line.decode("latin-1").strip().split(" ")
    if len(fields) != 3 or not fields[1].startswith(API_PREFIX + "/"):
        recorder.record_part(common.Call(fields[0] if fields else "", "", "", 400))
        error = ApiError(400, "badRequest", "Invalid batch part request line.")
        return 400, [("Content-Type", JSON_TYPE)], json.dumps(error.body())
    method, target = fields[0], fields[1]
    split = urlsplit(target)
    call = common.Call(method, unquote(split.path), split.query)
    recorder.record_part(call)
    fault = recorder.take_fault(method, call.path, part=True)
    if fault is not None and fault.delay:
        time.sleep(fault.delay)
    if fault is not None and fault.status:
        # A part fails on its own inside a 200 batch answer (batch guide: each part has
        # its own status; https://developers.google.com/calendar/api/guides/batch).
        call.status = fault.status
        answer = common.fault_response(fault)
        headers = [("Content-Type", JSON_TYPE), *fault.headers.items()]
        return fault.status, headers, answer.get_data(as_text=True)
    inner = email.parser.BytesParser().parsebytes(rest)
    skip = ("host", "content-length", "mime-version", "content-transfer-encoding")
    headers_in = {name: value for name, value in inner.items() if name.lower() not in skip}
    if outer_auth and not any(name.lower() == "authorization" for name in headers_in):
        headers_in["Authorization"] = outer_auth
    data = inner.get_payload(decode=True)
    data = data if isinstance(data, bytes) else b""
    answer = client.open(target, method=method, headers=headers_in, data=data)
    call.status = answer.status_code
    out_headers = [("Content-Type", answer.headers.get("Content-Type", JSON_TYPE))]
    out_headers += [(k, v) for k, v in answer.headers.items() if k == "WWW-Authenticate"]
    return answer.status_code, out_headers, answer.get_data(as_text=True)


# ---------------------------------------------------------------------------- long URLs


class MethodOverride:
    """WSGI middleware: the long-URL form of a GET, made a GET again before routing.

    google-api-python-client sends a GET whose URL passes 2048 characters as a POST with
    `X-HTTP-Method-Override: GET`, `Content-Type: application/x-www-form-urlencoded` and the
    query as the body (googleapiclient/http.py, `MAX_URI_LENGTH`); Google's own clients do
    the same and Google serves it as the GET (Java client `MethodOverride`: "GET requests
    with a long URL (> 2048 chars) ... sent using method override as a POST request",
    https://cloud.google.com/java/docs/reference/google-api-client/latest/com.google.api.client.googleapis.MethodOverride).
    Only GET is overridden here; any other override value is left as the POST it is.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        kind = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        if (
            environ.get("REQUEST_METHOD") == "POST"
            and str(environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "")).upper() == "GET"
            and kind == FORM_TYPE
        ):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            query = [q for q in (environ.get("QUERY_STRING", ""), body.decode("latin-1")) if q]
            environ["QUERY_STRING"] = "&".join(query)
            environ["REQUEST_METHOD"] = "GET"
            environ["CONTENT_LENGTH"] = "0"
            environ.pop("CONTENT_TYPE", None)
            environ["wsgi.input"] = io.BytesIO(b"")
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


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
