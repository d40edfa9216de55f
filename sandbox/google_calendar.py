"""Stand-in for Google Calendar API v3 and Google's OAuth 2.0 server.

Speaks the real wire format, so google-api-python-client and google-auth run unmodified
against it, and checks what Google checks: bearer tokens and their scopes, query parameters
and the `Event` schema from the discovery document googleapiclient ships, event id rules,
time ranges, reminder limits, patch semantics, paging and sync tokens.

- `GET  /o/oauth2/auth`                            authorization endpoint (`google_oauth`)
- `POST /token`                                    refresh_token and authorization_code grants
- `/calendar/v3/calendars/{calendarId}/events`     events.list (GET), events.insert (POST)
- `/calendar/v3/calendars/{calendarId}/events/{eventId}`  get, patch, update (PUT), delete
- `POST /batch/calendar/v3`                        multipart/mixed batch of the calls above
- `/_sandbox/...`                                  admin routes, see `_install_admin` and
                                                   `OAuthServer.install`

This module holds the Calendar API and `GoogleStandIn`, the facade over both parts; the
OAuth server is `sandbox.google_oauth`, the discovery-document checks `sandbox.google_schema`.
"""

from __future__ import annotations

import base64
import copy
import email.message
import email.parser
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dtime
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from sandbox import common
from sandbox.google_oauth import CONSENT_ANSWERS, OAuthError, OAuthServer
from sandbox.google_schema import (
    STANDARD_PARAMS,
    discovery_document,
    parse_query,
    validate_schema,
)
from sandbox.google_wire import (
    JSON_TYPE,
    ApiError,
    admin_body,
    bad,
    find_zone,
    json_response,
    need,
    parse_date,
    parse_date_time,
    random_token,
    rfc3339_millis,
)

__all__ = [
    "ApiError",
    "GoogleStandIn",
    "OAuthError",
    "discovery_document",
    "merge_patch",
    "parse_date",
    "parse_date_time",
    "serve",
    "validate_schema",
]

API_PREFIX = "/calendar/v3"
BATCH_PATH = "/batch/calendar/v3"
EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DEFAULT_MAX_RESULTS = 250
MAX_RESULTS_LIMIT = 2500
MAX_REMINDERS = 5
MAX_REMINDER_MINUTES = 40320
MAX_BATCH_CALLS = 1000
REMINDER_METHODS = ("popup", "email")
EVENT_STATUSES = ("confirmed", "tentative", "cancelled")
RESPONSE_STATUSES = ("needsAction", "declined", "tentative", "accepted")
# Output-only fields a client may echo back (e.g. after a get); accepted and ignored.
READ_ONLY_FIELDS = frozenset(
    {"kind", "etag", "htmlLink", "created", "updated", "creator", "organizer", "hangoutLink"}
)
# A syncToken may not be combined with these (Events: list reference).
SYNC_EXCLUDED_PARAMS = (
    "timeMin", "timeMax", "q", "orderBy", "privateExtendedProperty",
    "sharedExtendedProperty", "iCalUID", "updatedMin",
)  # fmt: skip


# ---------------------------------------------------------------------------- patch


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def merge_patch(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Google's patch: objects merge recursively, arrays and scalars replace, null clears."""
    merged = copy.deepcopy(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = _drop_nulls(copy.deepcopy(value))
    return merged


# ---------------------------------------------------------------------------- state


@dataclass
class _StoredEvent:
    body: dict[str, Any]
    order: int  # insertion order: stable paging
    rev: int  # revision of the last change: sync tokens
    updated_at: float
    start_ts: float
    end_ts: float


@dataclass
class _Calendar:
    id: str
    summary: str
    time_zone: str
    events: dict[str, _StoredEvent] = field(default_factory=dict)


@dataclass(frozen=True)
class _PageState:
    calendar_id: str
    query: tuple[tuple[str, tuple[str, ...]], ...]
    after: tuple[float, ...]  # sort key of the last item already returned
    snapshot_rev: int  # revision when the first page was served


@dataclass
class _SyncState:
    calendar_id: str
    rev: int
    issued_at: float
    expired: bool = False


def _new_event_id() -> str:
    return base64.b32hexencode(secrets.token_bytes(16)).decode().rstrip("=").lower()


# ---------------------------------------------------------------------------- the stand-in


class GoogleStandIn:
    """Google Calendar v3 + Google's OAuth server in one Flask app.

    Calendar state sits behind one lock; the OAuth part (`self.oauth`, an `OAuthServer`)
    has its own and reads its settings from here on every request: `clock`,
    `access_token_lifetime`, `consent` and `rotate_refresh_tokens`.
    """

    access_token_lifetime: int = 3600
    # Google only guarantees `id` and `status` for cancelled events in a list; set to strip
    # them to that (plus kind, etag, updated) and catch clients that read more.
    minimal_cancelled_in_list: bool = False
    # How the account answers the consent screen of the authorization endpoint:
    # "approve" (redirect with a code) or "deny" (redirect with error=access_denied).
    consent: str = "approve"
    # When True a refresh_token grant also answers a new refresh token (the old one keeps
    # working, as at Google).
    rotate_refresh_tokens: bool = False

    def __init__(
        self, clock: Callable[[], float] = time.time, account_email: str = "owner@example.com"
    ) -> None:
        self.clock = clock
        self.account_email = account_email
        self.recorder = common.Recorder()
        self.notifications: list[dict[str, Any]] = []
        self.oauth = OAuthServer(self)
        self._lock = threading.RLock()
        self._calendars: dict[str, _Calendar] = {}
        self._pages: dict[str, _PageState] = {}
        self._syncs: dict[str, _SyncState] = {}
        self._rev = 0
        self._order = 0
        document = discovery_document()
        self._schemas: dict[str, Any] = document["schemas"]
        self._methods: dict[str, Any] = document["resources"]["events"]["methods"]
        self.add_calendar(account_email, summary=account_email)

        self.app = Flask(__name__)
        common.install_sandbox_routes(self.app, self.recorder)
        self._install_api(self.app)
        self.oauth.install(self.app)
        self.app.add_url_rule(BATCH_PATH, "batch", self._batch, methods=["POST"])
        self._install_admin(self.app)
        # Batch parts run here: no call log, no faults, no nested batch (one HTTP call is
        # one logged call; faults hit the batch request as a whole).
        self._inner_app = Flask(__name__ + ".batch")
        self._install_api(self._inner_app)

    # ------------------------------------------------------------------ public API: OAuth

    def add_client(self, client_id: str, client_secret: str) -> None:
        self.oauth.add_client(client_id, client_secret)

    def add_refresh_token(self, refresh_token: str, client_id: str, scopes: list[str]) -> None:
        self.oauth.add_refresh_token(refresh_token, client_id, scopes)

    def revoke_refresh_token(self, refresh_token: str) -> None:
        self.oauth.revoke_refresh_token(refresh_token)

    def issue_access_token(
        self, client_id: str, scopes: list[str], lifetime: int | None = None
    ) -> tuple[str, float]:
        """A fresh access token and its expiry (epoch seconds by `clock`)."""
        return self.oauth.issue_access_token(client_id, scopes, lifetime)

    def expire_access_tokens(self) -> None:
        self.oauth.expire_access_tokens()

    def refresh_token_valid(self, token: str) -> bool:
        """Known here (seeded, or issued by a grant) and not revoked."""
        return self.oauth.refresh_token_valid(token)

    def access_token_valid(self, token: str) -> bool:
        """Issued here and not expired by `clock`."""
        return self.oauth.access_token_valid(token)

    def set_consent(self, answer: str) -> None:
        """How the consent screen is answered from now on: "approve" or "deny"."""
        if answer not in CONSENT_ANSWERS:
            raise ValueError(f"consent must be one of {CONSENT_ANSWERS}, not {answer!r}")
        self.consent = answer

    def code_grants(self) -> list[dict[str, Any]]:
        """`{"client_id", "scopes"}` of every authorization code exchanged, oldest first."""
        return self.oauth.code_grants()

    # ------------------------------------------------------------------ public API: Calendar

    def add_calendar(self, calendar_id: str, summary: str = "", time_zone: str = "UTC") -> None:
        if find_zone(time_zone) is None:
            raise ValueError(f"unknown time zone {time_zone!r}")
        with self._lock:
            if calendar_id not in self._calendars:
                self._calendars[calendar_id] = _Calendar(calendar_id, summary, time_zone)

    def events(self, calendar_id: str = "primary") -> list[dict[str, Any]]:
        """Every stored event of the calendar, cancelled ones included, in insertion order."""
        with self._lock:
            calendar = self._calendars.get(self._resolve(calendar_id))
            if calendar is None:
                return []
            return [copy.deepcopy(e.body) for e in calendar.events.values()]

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            calendar = self._calendars.get(self._resolve(calendar_id))
            stored = calendar.events.get(event_id) if calendar else None
            return copy.deepcopy(stored.body) if stored else None

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far answers 410 `fullSyncRequired` from now on."""
        with self._lock:
            for state in self._syncs.values():
                state.expired = True

    def reset(self) -> None:
        """Drops events, notifications, calls and faults; clients, tokens, calendars stay.

        Sync tokens issued before the reset expire (the calendar they describe is gone). A
        denied consent is a fault too: `consent` goes back to "approve".
        """
        with self._lock:
            for calendar in self._calendars.values():
                calendar.events.clear()
            self.notifications.clear()
            self._pages.clear()
            for state in self._syncs.values():
                state.expired = True
        self.consent = "approve"
        self.recorder.reset_calls()
        self.recorder.clear_faults()

    def _authorize(self, method: str) -> None:
        """Bearer token issued here, unexpired by `clock`, with a scope the method accepts."""
        self.oauth.check_bearer(
            request.headers.get("Authorization", ""), self._methods[method].get("scopes", [])
        )

    # ------------------------------------------------------------------ Calendar API

    def _install_api(self, app: Flask) -> None:
        app.register_error_handler(ApiError, lambda exc: exc.response())
        app.register_error_handler(HTTPException, self._http_exception)
        base = API_PREFIX + "/calendars/<calendar_id>/events"
        app.add_url_rule(base, "events_list", self._list, methods=["GET"])
        app.add_url_rule(base, "events_insert", self._insert, methods=["POST"])
        one = base + "/<event_id>"
        app.add_url_rule(one, "events_get", self._get, methods=["GET"])
        app.add_url_rule(one, "events_patch", self._patch, methods=["PATCH"])
        app.add_url_rule(one, "events_update", self._update, methods=["PUT"])
        app.add_url_rule(one, "events_delete", self._delete, methods=["DELETE"])

    @staticmethod
    def _http_exception(exc: HTTPException) -> Response:
        code = exc.code or 500
        reason = {404: "notFound", 405: "methodNotAllowed"}.get(code, "badRequest")
        try:
            message = HTTPStatus(code).phrase
        except ValueError:
            message = "Error"
        return ApiError(code, reason, message).response()

    def _resolve(self, calendar_id: str) -> str:
        return self.account_email if calendar_id == "primary" else calendar_id

    def _calendar(self, calendar_id: str) -> _Calendar:
        calendar = self._calendars.get(self._resolve(calendar_id))
        if calendar is None:
            raise ApiError(404, "notFound", "Not Found")
        return calendar

    def _stored(self, calendar: _Calendar, event_id: str) -> _StoredEvent:
        stored = calendar.events.get(event_id)
        if stored is None:
            raise ApiError(404, "notFound", "Not Found")
        return stored

    def _query(self, method: str) -> dict[str, Any]:
        """Query parameters checked against the method's discovery entry, parsed."""
        return parse_query(self._methods[method], request.args)

    def _body(self) -> dict[str, Any]:
        raw = request.get_data()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(body, dict):
            raise bad("Invalid JSON payload received. Expected an object at 'event'.")
        validate_schema(body, {"$ref": "Event"}, "event", self._schemas)
        return body

    def _check_if_match(self, stored: _StoredEvent) -> None:
        expected = request.headers.get("If-Match")
        if expected and expected not in ("*", stored.body.get("etag")):
            raise ApiError(412, "conditionNotMet", "Precondition Failed", location="If-Match")

    def _render(self, body: dict[str, Any], max_attendees: int | None) -> dict[str, Any]:
        out = copy.deepcopy(body)
        attendees = out.get("attendees")
        if max_attendees is not None and attendees and len(attendees) > max_attendees:
            out["attendees"] = attendees[:max_attendees]
            out["attendeesOmitted"] = True
        return out

    def _notify(
        self, calendar: _Calendar, event_id: str, action: str, params: dict[str, Any]
    ) -> None:
        self.notifications.append(
            {
                "calendarId": calendar.id,
                "eventId": event_id,
                "action": action,
                "sendUpdates": params.get("sendUpdates"),
            }
        )

    # -- writes

    def _insert(self, calendar_id: str) -> Response:
        self._authorize("insert")
        params = self._query("insert")
        body = _drop_nulls(self._body())
        event_id = body.get("id")
        if event_id is not None and not EVENT_ID_RE.match(event_id):
            raise bad("Invalid resource id value.")
        with self._lock:
            calendar = self._calendar(calendar_id)
            event_id = event_id or _new_event_id()
            content = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS | {"id"}}
            if params.get("conferenceDataVersion", 0) < 1:
                content.pop("conferenceData", None)
            start_ts, end_ts = self._check_event(content, calendar)
            if event_id in calendar.events:
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
            now = self.clock()
            organizer = self._organizer(calendar)
            event: dict[str, Any] = {
                "kind": "calendar#event",
                "id": event_id,
                "status": "confirmed",
                "htmlLink": self._html_link(calendar, event_id),
                "created": rfc3339_millis(now),
                **content,
                "creator": {"email": self.account_email, "self": True},
                "organizer": organizer,
                "iCalUID": content.get("iCalUID") or f"{event_id}@google.com",
                "sequence": int(content.get("sequence", 0)),
                "reminders": content.get("reminders", {"useDefault": True}),
                "eventType": content.get("eventType", "default"),
            }
            self._normalize_attendees(event, None, organizer["email"])
            self._order += 1
            stored = _StoredEvent(event, self._order, 0, now, start_ts, end_ts)
            self._touch(stored, now)
            calendar.events[event_id] = stored
            self._notify(calendar, event_id, "insert", params)
            return json_response(self._render(event, params.get("maxAttendees")))

    def _patch(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("patch")
        params = self._query("patch")
        body = self._body()
        with self._lock:
            calendar = self._calendar(calendar_id)
            stored = self._stored(calendar, event_id)
            self._check_if_match(stored)
            patch = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS | {"id", "iCalUID"}}
            if params.get("conferenceDataVersion", 0) < 1:
                patch.pop("conferenceData", None)
            merged = merge_patch(stored.body, patch)
            self._rewrite(
                calendar, stored, merged,
                given_sequence=patch.get("sequence"), action="patch", params=params,
            )  # fmt: skip
            return json_response(self._render(stored.body, params.get("maxAttendees")))

    def _update(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("update")
        params = self._query("update")
        body = _drop_nulls(self._body())
        with self._lock:
            calendar = self._calendar(calendar_id)
            stored = self._stored(calendar, event_id)
            self._check_if_match(stored)
            old = stored.body
            content = {
                k: v for k, v in body.items() if k not in READ_ONLY_FIELDS | {"id", "iCalUID"}
            }
            if params.get("conferenceDataVersion", 0) < 1:
                content.pop("conferenceData", None)
            event = {
                "kind": "calendar#event",
                "id": old["id"],
                "status": "confirmed",
                "htmlLink": old["htmlLink"],
                "created": old["created"],
                **content,
                "creator": old["creator"],
                "organizer": old["organizer"],
                "iCalUID": old["iCalUID"],
                "sequence": old["sequence"],
                "reminders": content.get("reminders", {"useDefault": True}),
                "eventType": content.get("eventType", old.get("eventType", "default")),
            }
            self._rewrite(
                calendar, stored, event,
                given_sequence=content.get("sequence"), action="update", params=params,
            )  # fmt: skip
            return json_response(self._render(stored.body, params.get("maxAttendees")))

    def _delete(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("delete")
        params = self._query("delete")
        with self._lock:
            calendar = self._calendar(calendar_id)
            stored = self._stored(calendar, event_id)
            if stored.body.get("status") == "cancelled":
                raise ApiError(410, "deleted", "Resource has been deleted")
            self._check_if_match(stored)
            stored.body["status"] = "cancelled"
            self._touch(stored, self.clock())
            self._notify(calendar, event_id, "delete", params)
        return Response(status=204)

    def _rewrite(
        self,
        calendar: _Calendar,
        stored: _StoredEvent,
        event: dict[str, Any],
        *,
        given_sequence: Any,
        action: str,
        params: dict[str, Any],
    ) -> None:
        """Checks and stores the new state of an existing event (patch and update)."""
        old = stored.body
        start_ts, end_ts = self._check_event(event, calendar)
        sequence = int(old.get("sequence", 0))
        if given_sequence is not None and int(given_sequence) < sequence:
            raise bad(
                "Invalid sequence value. The specified sequence number is below the current "
                "sequence number of the resource."
            )
        if event.get("start") != old.get("start") or event.get("end") != old.get("end"):
            sequence += 1
        if given_sequence is not None:
            sequence = max(sequence, int(given_sequence))
        event["sequence"] = sequence
        self._normalize_attendees(event, old, old["organizer"]["email"])
        stored.body = event
        stored.start_ts, stored.end_ts = start_ts, end_ts
        self._touch(stored, self.clock())
        self._notify(calendar, event["id"], action, params)

    def _touch(self, stored: _StoredEvent, now: float) -> None:
        self._rev += 1
        stored.rev = self._rev
        stored.updated_at = now
        stored.body["updated"] = rfc3339_millis(now)
        stored.body["etag"] = f'"{int(now * 1000) * 1000 + self._rev % 1000}"'

    def _organizer(self, calendar: _Calendar) -> dict[str, Any]:
        if calendar.id == self.account_email:
            return {"email": self.account_email, "self": True}
        return {"email": calendar.id, "displayName": calendar.summary, "self": True}

    @staticmethod
    def _html_link(calendar: _Calendar, event_id: str) -> str:
        eid = base64.urlsafe_b64encode(f"{event_id} {calendar.id}".encode()).decode().rstrip("=")
        return f"https://www.google.com/calendar/event?eid={eid}"

    def _normalize_attendees(
        self, event: dict[str, Any], old: dict[str, Any] | None, organizer_email: str
    ) -> None:
        """Default `responseStatus`; an attendee who stays keeps the answer already given."""
        known = {
            str(a.get("email", "")).lower(): a.get("responseStatus")
            for a in (old or {}).get("attendees", [])
        }
        for attendee in event.get("attendees", []):
            address = attendee["email"].lower()
            if "responseStatus" not in attendee:
                attendee["responseStatus"] = known.get(address) or "needsAction"
            if address == organizer_email.lower():
                attendee["organizer"] = True
            if address == self.account_email.lower():
                attendee["self"] = True

    def _check_event(self, event: dict[str, Any], calendar: _Calendar) -> tuple[float, float]:
        """What Google checks beyond the schema; returns the (start, end) instants."""
        if event.get("status", "confirmed") not in EVENT_STATUSES:
            raise bad("Invalid value for: status")
        end = event.get("end")
        if not end:
            raise ApiError(400, "required", "Missing end time.")
        start = event.get("start")
        if not start:
            raise ApiError(400, "required", "Missing start time.")
        start_ts, start_all_day = self._instant(start, "start", calendar)
        end_ts, end_all_day = self._instant(end, "end", calendar)
        if start_all_day != end_all_day:
            raise bad("Start and end times must either both be date or both be dateTime.")
        if end_ts < start_ts or (start_all_day and end_ts == start_ts):
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")

        reminders = event.get("reminders") or {}
        overrides = reminders.get("overrides") or []
        if reminders.get("useDefault") and overrides:
            raise ApiError(
                400, "cannotUseDefaultRemindersAndSpecifyOverride",
                "Cannot specify both default reminders and overrides at the same time.",
            )  # fmt: skip
        if len(overrides) > MAX_REMINDERS:
            raise ApiError(
                400, "tooManyReminders", "The maximum number of override reminders is 5."
            )
        for override in overrides:
            if "method" not in override:
                raise ApiError(400, "required", "Missing reminder method.")
            if override["method"] not in REMINDER_METHODS:
                raise bad("Invalid reminder method.")
            if "minutes" not in override:
                raise ApiError(400, "required", "Missing reminder minutes.")
            if not 0 <= int(override["minutes"]) <= MAX_REMINDER_MINUTES:
                raise bad("Invalid reminder minutes value.")

        for attendee in event.get("attendees") or []:
            address = attendee.get("email")
            if not address:
                raise ApiError(400, "required", "Missing attendee email.")
            if not EMAIL_RE.match(address):
                raise bad("Invalid attendee email.")
            if attendee.get("responseStatus", "needsAction") not in RESPONSE_STATUSES:
                raise bad("Invalid attendee response status.")
        return start_ts, end_ts

    def _instant(self, when: dict[str, Any], which: str, calendar: _Calendar) -> tuple[float, bool]:
        """Epoch seconds of an EventDateTime and whether it is all-day."""
        has_date, has_time = "date" in when, "dateTime" in when
        if not has_date and not has_time:
            raise ApiError(400, "required", f"Missing {which} time.")
        if has_date and has_time:
            raise bad(f"Invalid {which} time.")
        zone_name = when.get("timeZone")
        zone = find_zone(zone_name) if zone_name else None
        if zone_name and zone is None:
            raise bad(f"Invalid time zone definition for {which} time.")
        if has_date:
            day = parse_date(when["date"])
            if day is None:
                raise bad(f"Invalid {which} time.")
            local = zone or find_zone(calendar.time_zone) or UTC
            return datetime.combine(day, dtime(0), tzinfo=local).timestamp(), True
        moment = parse_date_time(when["dateTime"])
        if moment is None:
            raise bad(f"Invalid {which} time.")
        if moment.tzinfo is None:
            if zone is None:
                raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
            moment = moment.replace(tzinfo=zone)
        return moment.timestamp(), False

    # -- reads

    def _get(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("get")
        params = self._query("get")
        with self._lock:
            stored = self._stored(self._calendar(calendar_id), event_id)
            return json_response(self._render(stored.body, params.get("maxAttendees")))

    def _list(self, calendar_id: str) -> Response:
        self._authorize("list")
        params = self._query("list")
        max_results = params.get("maxResults", DEFAULT_MAX_RESULTS)
        if max_results > MAX_RESULTS_LIMIT:
            raise ApiError(
                400, "invalid", f"Invalid value for parameter 'maxResults': {max_results}",
                location="maxResults",
            )  # fmt: skip
        order_by = params.get("orderBy")
        if order_by == "startTime" and not params.get("singleEvents"):
            raise bad("The requested ordering is not available for the particular query.")
        time_min, time_max = params.get("timeMin"), params.get("timeMax")
        if time_min is not None and time_max is not None and time_max < time_min:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        private = self._property_filters(params.get("privateExtendedProperty", []))
        shared = self._property_filters(params.get("sharedExtendedProperty", []))
        query = tuple(
            (name, tuple(request.args.getlist(name)))
            for name in sorted(request.args)
            if name not in ("pageToken", "maxResults") and name not in STANDARD_PARAMS
        )
        with self._lock:
            calendar = self._calendar(calendar_id)
            sync: _SyncState | None = None
            if "syncToken" in params:
                clashing = [name for name in SYNC_EXCLUDED_PARAMS if name in params]
                if clashing:
                    raise bad(f"Parameter {clashing[0]} cannot be used together with syncToken.")
                sync = self._syncs.get(params["syncToken"])
                if sync is None or sync.calendar_id != calendar.id:
                    raise bad("Invalid sync token value.")
                if sync.expired:
                    raise ApiError(
                        410, "fullSyncRequired",
                        "Sync token is no longer valid, a full sync is required.",
                    )  # fmt: skip
            page: _PageState | None = None
            if "pageToken" in params:
                page = self._pages.get(params["pageToken"])
                if page is None or page.calendar_id != calendar.id or page.query != query:
                    raise bad("Invalid page token value.")
            snapshot_rev = page.snapshot_rev if page else self._rev

            include_deleted = bool(params.get("showDeleted")) or sync is not None
            include_deleted = include_deleted or "updatedMin" in params
            q = str(params.get("q", "")).lower()
            matches: list[tuple[tuple[float, ...], _StoredEvent]] = []
            for stored in calendar.events.values():
                body = stored.body
                if body.get("status") == "cancelled" and not include_deleted:
                    continue
                if sync is not None and stored.rev <= sync.rev:
                    continue
                if "updatedMin" in params and stored.updated_at < params["updatedMin"]:
                    continue
                if time_min is not None and stored.end_ts <= time_min:
                    continue
                if time_max is not None and stored.start_ts >= time_max:
                    continue
                if "iCalUID" in params and body.get("iCalUID") != params["iCalUID"]:
                    continue
                if q and q not in self._search_text(body):
                    continue
                properties = body.get("extendedProperties", {})
                if not self._has_properties(properties.get("private", {}), private):
                    continue
                if not self._has_properties(properties.get("shared", {}), shared):
                    continue
                matches.append((self._sort_key(stored, order_by), stored))
            matches.sort(key=lambda pair: pair[0])
            if page is not None:
                matches = [pair for pair in matches if pair[0] > page.after]
            chosen = matches[:max_results]
            now = self.clock()
            result: dict[str, Any] = {
                "kind": "calendar#events",
                "etag": f'"p{int(now * 1000)}{self._rev}"',
                "summary": calendar.summary,
                "description": "",
                "updated": rfc3339_millis(
                    max((e.updated_at for e in calendar.events.values()), default=now)
                ),
                "timeZone": calendar.time_zone,
                "accessRole": "owner",
                "defaultReminders": [],
                "items": [self._list_item(s, params.get("maxAttendees")) for _, s in chosen],
            }
            if len(matches) > max_results:
                token = random_token()
                self._pages[token] = _PageState(calendar.id, query, chosen[-1][0], snapshot_rev)
                result["nextPageToken"] = token
            else:
                token = random_token()
                self._syncs[token] = _SyncState(calendar.id, snapshot_rev, now)
                result["nextSyncToken"] = token
            return json_response(result)

    def _list_item(self, stored: _StoredEvent, max_attendees: int | None) -> dict[str, Any]:
        body = stored.body
        if self.minimal_cancelled_in_list and body.get("status") == "cancelled":
            keep = ("kind", "etag", "id", "status", "updated")
            return {k: body[k] for k in keep if k in body}
        return self._render(body, max_attendees)

    @staticmethod
    def _sort_key(stored: _StoredEvent, order_by: str | None) -> tuple[float, ...]:
        if order_by == "startTime":
            return (stored.start_ts, stored.order)
        if order_by == "updated":
            return (stored.updated_at, stored.order)
        return (stored.order,)

    @staticmethod
    def _property_filters(values: list[str]) -> list[tuple[str, str]]:
        filters = []
        for value in values:
            key, sep, wanted = value.partition("=")
            if not sep or not key:
                raise bad(f"Invalid extended property constraint: {json.dumps(value)}")
            filters.append((key, wanted))
        return filters

    @staticmethod
    def _has_properties(properties: dict[str, str], filters: list[tuple[str, str]]) -> bool:
        # The reference says repeated constraints must all match.
        return all(properties.get(key) == wanted for key, wanted in filters)

    @staticmethod
    def _search_text(body: dict[str, Any]) -> str:
        parts = [str(body.get(name, "")) for name in ("summary", "description", "location")]
        for attendee in body.get("attendees", []):
            parts += [str(attendee.get("email", "")), str(attendee.get("displayName", ""))]
        return "\n".join(parts).lower()

    # ------------------------------------------------------------------ batch

    def _batch(self) -> Response:
        """`multipart/mixed` of `application/http` parts, answered part by part."""
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
        client = self._inner_app.test_client()
        for part in parts:
            if not isinstance(part, email.message.Message):
                raise ApiError(400, "badRequest", "Batch part is not a MIME part.")
            raw = part.get_payload(decode=True)
            raw_bytes = raw if isinstance(raw, bytes) else b""
            status, headers, payload = self._batch_part(client, raw_bytes, outer_auth)
            content_id = part.get("Content-ID", "")
            lines = [f"--{boundary}", "Content-Type: application/http"]
            if content_id.startswith("<"):
                lines.append(f"Content-ID: <response-{content_id[1:]}")
            lines += ["", f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
            lines += [f"{name}: {value}" for name, value in headers]
            chunks.append("\r\n".join([*lines, "", payload]))
        body = "\r\n".join([*chunks, f"--{boundary}--", ""])
        return Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")

    @staticmethod
    def _batch_part(
        client: Any, raw: bytes, outer_auth: str | None
    ) -> tuple[int, list[tuple[str, str]], str]:
        request_line, _, rest = raw.partition(b"\n")
        fields = request_line.decode("latin-1").strip().split(" ")
        if len(fields) != 3 or not fields[1].startswith(API_PREFIX + "/"):
            error = ApiError(400, "badRequest", "Invalid batch part request line.")
            return 400, [("Content-Type", JSON_TYPE)], json.dumps(error.body())
        method, target = fields[0], fields[1]
        inner = email.parser.BytesParser().parsebytes(rest)
        skip = ("host", "content-length", "mime-version", "content-transfer-encoding")
        headers = {name: value for name, value in inner.items() if name.lower() not in skip}
        if outer_auth and not any(name.lower() == "authorization" for name in headers):
            headers["Authorization"] = outer_auth
        data = inner.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        answer = client.open(target, method=method, headers=headers, data=data)
        out_headers = [("Content-Type", answer.headers.get("Content-Type", JSON_TYPE))]
        out_headers += [(k, v) for k, v in answer.headers.items() if k == "WWW-Authenticate"]
        return answer.status_code, out_headers, answer.get_data(as_text=True)

    # ------------------------------------------------------------------ admin

    def _install_admin(self, app: Flask) -> None:
        """Admin routes for other processes (JSON bodies); never logged, never faulted."""
        prefix = common.ADMIN_PREFIX

        def done() -> Response:
            return json_response({})

        @app.post(prefix + "calendars")
        def _add_calendar() -> Response:
            data = admin_body()
            (calendar_id,) = need(data, "calendar_id")
            try:
                self.add_calendar(
                    calendar_id, data.get("summary", ""), data.get("time_zone", "UTC")
                )
            except ValueError as exc:
                raise bad(str(exc)) from None
            return done()

        @app.get(prefix + "calendars/<calendar_id>/events")
        def _events(calendar_id: str) -> Response:
            with self._lock:
                self._calendar(calendar_id)
                return json_response({"items": self.events(calendar_id)})

        @app.get(prefix + "notifications")
        def _notifications() -> Response:
            with self._lock:
                return json_response({"items": copy.deepcopy(self.notifications)})

        @app.post(prefix + "sync-tokens/expire")
        def _expire_sync() -> Response:
            self.expire_sync_tokens()
            return done()

        @app.post(prefix + "reset")
        def _reset() -> Response:
            self.reset()
            return done()


def serve(port: int = 0) -> tuple[GoogleStandIn, common.ServerThread]:
    """A started stand-in on 127.0.0.1 (`port` 0: any free port)."""
    standin = GoogleStandIn()
    server = common.ServerThread(standin.app, port=port).start()
    return standin, server
