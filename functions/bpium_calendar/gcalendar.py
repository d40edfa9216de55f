"""Google Calendar adapter on google-api-python-client.

httplib2 is not thread-safe, so the service (built once, no network) executes every request
through an authorized HTTP object of the calling thread's own. Errors leave as ours.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import google.auth.credentials
import google_auth_httplib2
import httplib2
from google.auth.transport.requests import AuthorizedSession
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from .domain import PRIVATE_CATALOG_KEY, PRIVATE_RECORD_KEY
from .errors import (
    AppError,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PreconditionFailed,
    UpstreamError,
    UpstreamUnavailable,
)
from .retry import remaining, with_retries

HTTP_TIMEOUT = 20.0
BATCH_SIZE = 50  # Calendar takes at most 50 calls in one batch request
BATCH_ATTEMPTS = 4
BATCH_BACKOFF = 1.0
MAX_PAGE = 2500  # the largest page events.list serves
RATE_LIMIT_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")


class QuotaExceeded(UpstreamUnavailable):
    """Calendar's 403 quotaExceeded: unavailable for hours, so never retried now."""

    code = "calendar_quota_exceeded"
    retryable = False


def _reason(exc: HttpError) -> str:
    try:
        errors = json.loads(exc.content.decode("utf-8"))["error"].get("errors") or []
        return str(errors[0].get("reason", "")) if errors else ""
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return ""


def _error(exc: HttpError, what: str) -> AppError:
    """Applies DESIGN §6's retry rules by choosing which of our errors stands for `exc`."""
    status, reason = exc.resp.status, _reason(exc)
    message = f"Calendar {what}: {status} {reason or exc.reason}".strip()
    # 412: If-Match failed, someone wrote the event since (guides/version-resources).
    plain: dict[int, type[AppError]] = {404: NotFound, 410: Gone, 412: PreconditionFailed}
    if status in plain:
        return plain[status](message, reason=reason)
    if status == 409 and reason in ("duplicate", ""):
        return Conflict(message)  # the id exists: "The requested identifier already exists"
    if status == 409:
        # A batch part that collided with another change ("conflict"): try it again later.
        return UpstreamUnavailable(message, code="calendar_conflict")
    if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
        retry_after = exc.resp.get("retry-after")
        details = {"retry_after": float(retry_after)} if str(retry_after).isdigit() else {}
        return UpstreamUnavailable(message, code="calendar_unavailable", **details)
    if status == 403:
        return (
            QuotaExceeded(message)
            if reason == "quotaExceeded"
            else Forbidden(message, reason=reason)
        )
    return UpstreamError(message, code="calendar_refused", reason=reason)


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    try:
        yield
    except HttpError as exc:
        raise _error(exc, what) from exc
    except (OSError, httplib2.HttpLib2Error) as exc:  # timeouts, refused connections
        raise UpstreamUnavailable(f"Calendar {what}: {type(exc).__name__}") from exc


class _SendOnce:
    """An httplib2-shaped transport over google-auth's requests session that sends each
    request exactly once (requests retries nothing by default), for the calls that are
    not idempotent."""

    def __init__(self, credentials: google.auth.credentials.Credentials) -> None:
        self._credentials = credentials

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> tuple[httplib2.Response, bytes]:
        with AuthorizedSession(self._credentials) as session:  # type: ignore[no-untyped-call]
            answer = session.request(  # type: ignore[no-untyped-call]
                method, uri, data=body, headers=dict(headers or {}), timeout=HTTP_TIMEOUT
            )
        # requests has already decoded the body: its encoding and length no longer apply.
        skip = ("content-encoding", "content-length", "transfer-encoding")
        info = {k.lower(): v for k, v in answer.headers.items() if k.lower() not in skip}
        response = httplib2.Response({**info, "status": str(answer.status_code)})
        response.reason = answer.reason or ""
        return response, answer.content


@dataclass(frozen=True)
class BatchOp:
    """One call of a batch (a write, or a get); `body` for insert and patch."""

    method: Literal["insert", "patch", "delete", "get"]
    calendar_id: str
    event_id: str
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BatchOutcome:
    op: BatchOp
    result: dict[str, Any] | None = None
    error: AppError | None = None


class CalendarClient:
    """The few Calendar operations we need, each retried per DESIGN §6."""

    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        endpoint: str,
        http_factory: Callable[[], httplib2.Http] = lambda: httplib2.Http(timeout=HTTP_TIMEOUT),
    ) -> None:
        self._credentials = credentials
        self._http_factory = http_factory
        self._local = threading.local()
        # The batch endpoint sits beside the API's base: <root>/batch/calendar/v3.
        self._batch_uri = (
            endpoint.removesuffix("/").removesuffix("calendar/v3") + "batch/calendar/v3"
        )
        # static_discovery: the discovery document ships with the library; no network here.
        self._service = build(
            "calendar",
            "v3",
            http=http_factory(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": endpoint},
        )

    def _http(self) -> google_auth_httplib2.AuthorizedHttp:
        http = getattr(self._local, "http", None)
        if http is None:
            http = google_auth_httplib2.AuthorizedHttp(self._credentials, http=self._http_factory())
            self._local.http = http
        return http

    def _events(self) -> Any:
        """The `events` resource, built once per thread: googleapiclient builds a resource's
        every method from the discovery document on each `events()` (~17 ms a call, which
        was most of a 5,000-meeting reconcile's own time)."""
        events = getattr(self._local, "events", None)
        if events is None:
            events = self._service.events()
            self._local.events = events
        return events

    def _execute(self, what: str, request: Any) -> Any:
        def attempt() -> Any:
            with _mapped_errors(what):
                return request.execute(http=self._http(), num_retries=0)

        return with_retries(attempt, what=f"calendar.{what}")

    def insert(
        self, calendar_id: str, body: Mapping[str, Any], *, send_updates: str
    ) -> dict[str, Any]:
        request = self._events().insert(
            calendarId=calendar_id,
            body=dict(body),
            sendUpdates=send_updates,
            conferenceDataVersion=1 if "conferenceData" in body else 0,
        )
        result: dict[str, Any] = self._execute("insert", request)
        return result

    def patch(
        self,
        calendar_id: str,
        event_id: str,
        body: Mapping[str, Any],
        *,
        send_updates: str,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        """Patches the fields in `body`; with `if_match`, only while the event still has
        that etag (PreconditionFailed otherwise: developers.google.com/calendar/api/guides/
        version-resources)."""
        request = self._events().patch(
            calendarId=calendar_id,
            eventId=event_id,
            body=dict(body),
            sendUpdates=send_updates,
            conferenceDataVersion=1 if "conferenceData" in body else 0,
        )
        if if_match:
            request.headers["If-Match"] = if_match
        result: dict[str, Any] = self._execute("patch", request)
        return result

    def move(
        self, calendar_id: str, event_id: str, destination: str, *, send_updates: str
    ) -> dict[str, Any]:
        """Moves the event (same id) to another calendar."""
        request = self._events().move(
            calendarId=calendar_id,
            eventId=event_id,
            destination=destination,
            sendUpdates=send_updates,
        )
        result: dict[str, Any] = self._execute("move", request)
        return result

    def list_events(
        self, calendar_id: str, params: Mapping[str, Any], *, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every page up to `limit` items (all, if None); the sync token of the last page."""
        items: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            size = MAX_PAGE if limit is None else max(1, min(MAX_PAGE, limit - len(items)))
            request = self._events().list(
                calendarId=calendar_id, maxResults=size, pageToken=page_token, **params
            )
            page = self._execute("list", request)
            items += page.get("items", [])
            page_token = page.get("nextPageToken")
            # An empty page may still carry a nextPageToken: keep following it.
            if not page_token:
                return items, page.get("nextSyncToken")
            if limit is not None and len(items) >= limit:
                return items[:limit], None

    def calendars(self) -> list[dict[str, Any]]:
        """The account's calendar list, every page."""
        entries: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            request = self._service.calendarList().list(maxResults=250, pageToken=page_token)
            page = self._execute("calendar_list", request)
            entries += page.get("items", [])
            page_token = page.get("nextPageToken")
            if not page_token:
                return entries

    def create_calendar(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """calendars.insert, sent exactly once: it is not idempotent, and httplib2 re-sends
        any request once, POST included, when the connection closes before an answer
        (httplib2 `_conn_request`). A lost answer is the caller's to resolve (look it up)."""
        request = self._service.calendars().insert(body=dict(body))
        with _mapped_errors("calendar_insert"):
            result: dict[str, Any] = request.execute(http=_SendOnce(self._credentials))
        return result

    def share(self, calendar_id: str, email: str, role: str) -> dict[str, Any]:
        """Gives `email` a role on the calendar (replacing its earlier rule); Google tells them."""
        request = self._service.acl().insert(
            calendarId=calendar_id,
            body={"role": role, "scope": {"type": "user", "value": email}},
            sendNotifications=True,
        )
        result: dict[str, Any] = self._execute("acl_insert", request)
        return result

    def acl_rules(self, calendar_id: str) -> list[dict[str, Any]]:
        """The calendar's access rules, every page."""
        rules: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            request = self._service.acl().list(
                calendarId=calendar_id, maxResults=250, pageToken=page_token
            )
            page = self._execute("acl_list", request)
            rules += page.get("items", [])
            page_token = page.get("nextPageToken")
            if not page_token:
                return rules

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """One event, cancelled ones included (NotFound or Gone when Google has none)."""
        request = self._events().get(calendarId=calendar_id, eventId=event_id)
        result: dict[str, Any] = self._execute("get", request)
        return result

    def watch(self, calendar_id: str, channel: Mapping[str, Any]) -> dict[str, Any]:
        """Opens a push channel on the calendar's events (events.watch); the Channel."""
        request = self._events().watch(calendarId=calendar_id, body=dict(channel))
        result: dict[str, Any] = self._execute("watch", request)
        return result

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """Stops a push channel (channels.stop); NotFound when Google holds no such one."""
        request = self._service.channels().stop(body={"id": channel_id, "resourceId": resource_id})
        self._execute("channels_stop", request)

    def cancel(self, calendar_id: str, event_id: str, *, send_updates: str) -> None:
        """Deletes (cancels) the event; NotFound or Gone when it is not there (any more)."""
        request = self._events().delete(
            calendarId=calendar_id, eventId=event_id, sendUpdates=send_updates
        )
        self._execute("delete", request)

    def find_by_record(
        self, calendar_id: str, catalog_id: str, record_id: str
    ) -> list[dict[str, Any]]:
        """Live events carrying our marks for this record (e.g. a legacy id we patched)."""
        params = {
            "privateExtendedProperty": [
                f"{PRIVATE_CATALOG_KEY}={catalog_id}",
                f"{PRIVATE_RECORD_KEY}={record_id}",
            ]
        }
        items, _ = self.list_events(calendar_id, params, limit=50)
        wanted = {PRIVATE_CATALOG_KEY: catalog_id, PRIVATE_RECORD_KEY: record_id}
        # Google's guides disagree on whether repeated filters AND or OR: check both marks.
        return [
            item
            for item in items
            if wanted.items() <= item.get("extendedProperties", {}).get("private", {}).items()
        ]

    def _request(self, op: BatchOp, send_updates: str) -> Any:
        events = self._events()
        if op.method == "get":
            return events.get(calendarId=op.calendar_id, eventId=op.event_id)
        if op.method == "insert":
            body = {**(op.body or {}), "id": op.event_id}
            return events.insert(
                calendarId=op.calendar_id,
                body=body,
                sendUpdates=send_updates,
                conferenceDataVersion=1 if "conferenceData" in body else 0,
            )
        if op.method == "patch":
            body = dict(op.body or {})
            return events.patch(
                calendarId=op.calendar_id,
                eventId=op.event_id,
                body=body,
                sendUpdates=send_updates,
                conferenceDataVersion=1 if "conferenceData" in body else 0,
            )
        return events.delete(
            calendarId=op.calendar_id, eventId=op.event_id, sendUpdates=send_updates
        )

    def batch(self, ops: Sequence[BatchOp], *, send_updates: str) -> list[BatchOutcome]:
        """Many writes in few HTTP requests (BATCH_SIZE each); the parts that fail with a
        retryable error are sent again, a bounded number of times."""
        outcomes: dict[int, BatchOutcome] = {}
        pending = list(range(len(ops)))
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start : start + BATCH_SIZE]
                self._send_batch(ops, chunk, send_updates, outcomes)
            pending = [i for i in pending if (e := outcomes[i].error) is not None and e.retryable]
            wait = BATCH_BACKOFF * 2 ** (attempt - 1)
            if not pending or attempt == BATCH_ATTEMPTS or wait >= remaining() - 2.0:
                break
            time.sleep(wait)
        return [outcomes[i] for i in range(len(ops))]

    def _send_batch(
        self,
        ops: Sequence[BatchOp],
        chunk: Sequence[int],
        send_updates: str,
        outcomes: dict[int, BatchOutcome],
    ) -> None:
        def collect(request_id: str, response: Any, exception: Exception | None) -> None:
            op = ops[int(request_id)]
            if exception is None:
                outcomes[int(request_id)] = BatchOutcome(op, response or {})
            elif isinstance(exception, HttpError):
                outcomes[int(request_id)] = BatchOutcome(op, error=_error(exception, op.method))
            else:
                error = UpstreamError(f"Calendar batch {op.method}: {exception}")
                outcomes[int(request_id)] = BatchOutcome(op, error=error)

        def attempt() -> None:
            batch = BatchHttpRequest(callback=collect, batch_uri=self._batch_uri)
            for index in chunk:
                batch.add(self._request(ops[index], send_updates), request_id=str(index))
            with _mapped_errors("batch"):
                batch.execute(http=self._http())

        with_retries(attempt, what="calendar.batch")
