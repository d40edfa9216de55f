"""Stand-in for Google Calendar API v3 and Google's OAuth 2.0 server.

Speaks the real wire format, so google-api-python-client and google-auth run unmodified
against it, and checks what Google checks: bearer tokens and their scopes, query parameters
and the `Event`, `Calendar`, `CalendarListEntry` and `AclRule` schemas of the discovery
document googleapiclient ships, event id rules, time ranges, reminder limits, recurrence
rules, patch semantics, access levels, paging and sync tokens.

- `GET  /o/oauth2/auth`                            authorization endpoint (`google_oauth`)
- `POST /token`                                    refresh_token and authorization_code grants
- `/calendar/v3/calendars`                         calendars.insert (POST)
- `/calendar/v3/calendars/{calendarId}`            calendars get, patch, update, delete;
                                                   `.../clear` (POST)
- `/calendar/v3/calendars/{calendarId}/acl[/{ruleId}]`     acl list, insert, get, patch,
                                                   update, delete
- `/calendar/v3/users/me/calendarList[/{calendarId}]`      calendarList list, insert, get,
                                                   patch, update, delete
- `/calendar/v3/calendars/{calendarId}/events`     events.list (GET), events.insert (POST)
- `/calendar/v3/calendars/{calendarId}/events/{eventId}`  get, patch, update (PUT), delete;
                                                   `.../move` (POST), `.../instances` (GET)
- `POST /calendar/v3/calendars/{calendarId}/events/watch`  events.watch: a push channel
                                                   on the calendar's events (`google_push`)
- `POST /calendar/v3/channels/stop`                channels.stop
- `POST /batch/calendar/v3`                        multipart/mixed batch of the calls above;
                                                   each part answers on its own (part faults)
- `/_sandbox/...`                                  admin routes, below and in
                                                   `common.install_sandbox_routes` and
                                                   `OAuthServer.install`

A GET whose URL is too long for google-api-python-client arrives as a POST with
`X-HTTP-Method-Override: GET` and the query as a form-encoded body; it is served (and logged)
as that GET.

Switches (class attributes; the harsher reading is the default):

- `minimal_cancelled_in_list = True`: cancelled items of a list carry only kind, etag, id,
  status and updated.
- `refuse_revival_of_person_deleted = True`: an event a person deleted in the UI answers
  patch/update with 403 `forbidden`; False: revivable like any cancelled event.
- `refuse_default_with_empty_overrides = True`: `{"useDefault": true, "overrides": []}` is
  400 `cannotUseDefaultRemindersAndSpecifyOverride`; False: the empty list is none.
- `updated_min_horizon_days = 7.0`: an older `updatedMin` (by `clock`) answers 410
  `updatedMinTooLongAgo`.
- `consent = "approve"`, `rotate_refresh_tokens = False`, `access_token_lifetime = 3600`:
  the OAuth server (`google_oauth`).

Push switches (constructor keywords, also attributes; `reset` restores the constructor's):

- `push_require_https=False`: True refuses a watch `address` that is not https (400
  `push.webhookUrlNotHttps`, as Google does); False also takes http, for local receivers.
- `channel_ttl_seconds=None`: the longest TTL granted (None: 30 days, as Google was seen to
  cut it); a short one for renewal tests.
- `push_reusable_ids=False`: a channel id is taken once per project, stopped or expired
  (harsh reading of "unique within your project"); True: only a live channel's id is refused.
- `push_duplicate=False`: True sends about half the messages twice (same number).
- `push_drop_rate=0.0`: the share of messages never sent ("not 100% reliable").
- `push_delay=0.0`: seconds before a message's first attempt.
- `time_scale=1.0`: multiplies the retry backoff (1 s, 2 s, 4 s, ...).

Public methods beyond the API: `add_calendar`, `add_event`, `events`, `event`, `calendars`,
`acl`, `person_edit(calendar_id, event_id, patch)`, `person_delete(calendar_id, event_id)`,
`expire_sync_tokens`, `reset`, the OAuth helpers; `notifications` (event writes and ACL
changes), `part_calls` (batch parts) and `recorder` (calls and faults) to read; push:
`channels()`, `push_log`, `wait_pushes_idle(timeout)`, `expire_channel(channel_id)`.

Admin routes of this module (JSON; never logged, never faulted):

- `POST /_sandbox/calendars` {"calendar_id", "summary", "time_zone", "access_role"}
- `GET  /_sandbox/calendars`, `/_sandbox/calendars/<cid>/acl`, `/_sandbox/calendars/<cid>/events`
- `POST /_sandbox/calendars/<cid>/events/<eid>/person-edit` (body: the patch) and
  `.../person-delete` -> the event as stored
- `GET  /_sandbox/notifications`, `POST /_sandbox/sync-tokens/expire`, `POST /_sandbox/reset`
- `GET  /_sandbox/channels`, `GET /_sandbox/push-log`, `POST /_sandbox/channels/<id>/expire`,
  `POST /_sandbox/pushes/wait` {"timeout"} -> {"idle"}

This module holds `GoogleStandIn`, the facade over the parts: event writes
(`google_events`), event reads and recurring instances (`google_listing`,
`google_recurrence`), calendars, calendar list and ACLs (`google_calendars`), push
notifications (`google_push`), shared state
(`google_store`), the OAuth server (`google_oauth`) and the discovery-document checks
(`google_schema`).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from sandbox import common
from sandbox.google_calendars import CalendarsApi
from sandbox.google_events import EventWrites
from sandbox.google_listing import EventReads
from sandbox.google_oauth import CONSENT_ANSWERS, OAuthError, OAuthServer
from sandbox.google_push import PushApi, PushHub
from sandbox.google_schema import discovery_document, validate_schema
from sandbox.google_store import ROLE_RANK, Calendar, StoredEvent, drop_nulls, merge_patch
from sandbox.google_wire import (
    API_PREFIX,
    BATCH_PATH,
    ApiError,
    MethodOverride,
    admin_body,
    answer_batch,
    bad,
    find_zone,
    json_response,
    need,
    parse_date,
    parse_date_time,
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

PRIMARY_TIME_ZONE = "UTC"
CALENDAR_SWITCHES = (
    "minimal_cancelled_in_list", "refuse_revival_of_person_deleted",
    "refuse_default_with_empty_overrides", "updated_min_horizon_days",
)  # fmt: skip


class GoogleStandIn(EventWrites, EventReads, CalendarsApi, PushApi):
    """Google Calendar v3 + Google's OAuth server in one Flask app.

    Calendar state sits behind one lock; the OAuth part (`self.oauth`, an `OAuthServer`)
    has its own and reads its settings from here on every request: `clock`,
    `access_token_lifetime`, `consent` and `rotate_refresh_tokens`.
    """

    access_token_lifetime: int = 3600
    # "Deleted events are only guaranteed to have the id field populated" (discovery doc,
    # Event.status): cancelled items in list answers carry only kind, etag, id, status and
    # updated. False: the whole event, as the organizer's own calendar often shows it.
    minimal_cancelled_in_list: bool = True
    # An event a person deleted in Google's UI answers 403 to patch/update and 409 to an
    # insert of its id (googleapis/google-api-ruby-client#1811); False: the discovery doc's
    # reading, cancelled events on the organizer's calendar can be restored (undeleted).
    refuse_revival_of_person_deleted: bool = True
    # `reminders: {"useDefault": true, "overrides": []}` answers 400 as "both" (documents
    # silent on an empty list); False: the empty list counts as none.
    refuse_default_with_empty_overrides: bool = True
    # events.list `updatedMin` further back than this answers 410 `updatedMinTooLongAgo`.
    # v3 documents no horizon; the Data API dropped deleted events after one week (2009
    # announcement, google-calendar-help-dataapi) and a 44-day-old updatedMin was seen
    # refused (stackoverflow.com/questions/27921157): one week, the harsh reading.
    updated_min_horizon_days: float = 7.0
    # How the account answers the consent screen of the authorization endpoint:
    # "approve" (redirect with a code) or "deny" (redirect with error=access_denied).
    consent: str = "approve"
    # When True a refresh_token grant also answers a new refresh token (the old one keeps
    # working, as at Google).
    rotate_refresh_tokens: bool = False

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        account_email: str = "owner@example.com",
        *,
        push_require_https: bool = False,
        channel_ttl_seconds: float | None = None,
        push_reusable_ids: bool = False,
        push_duplicate: bool = False,
        push_drop_rate: float = 0.0,
        push_delay: float = 0.0,
        time_scale: float = 1.0,
    ) -> None:
        self.clock = clock
        self.account_email = account_email
        self._push_switches: dict[str, Any] = {
            "push_require_https": push_require_https,
            "channel_ttl_seconds": channel_ttl_seconds,
            "push_reusable_ids": push_reusable_ids,
            "push_duplicate": push_duplicate,
            "push_drop_rate": push_drop_rate,
            "push_delay": push_delay,
            "time_scale": time_scale,
        }
        self.__dict__.update(self._push_switches)
        self._push = PushHub(self)
        self.recorder = common.Recorder()
        self.notifications = []
        self.oauth = OAuthServer(self)
        self._lock = threading.RLock()
        self._calendars = {}
        self._pages = {}
        self._syncs = {}
        self._rev = 0
        self._order = 0
        document = discovery_document()
        self._schemas = document["schemas"]
        self._resources = document["resources"]
        self.add_calendar(account_email, summary=account_email, time_zone=PRIMARY_TIME_ZONE)

        self.app = Flask(__name__)
        common.install_sandbox_routes(self.app, self.recorder)
        self._install_api(self.app)
        self.oauth.install(self.app)
        self.app.add_url_rule(BATCH_PATH, "batch", self._batch, methods=["POST"])
        self._install_admin(self.app)
        self._install_push_admin(self.app)
        # The long-URL form of a GET is the GET (googleapiclient/http.py, MAX_URI_LENGTH).
        self.app.wsgi_app = MethodOverride(self.app.wsgi_app)  # type: ignore[method-assign]
        # Batch parts run here: no call log, no whole-request faults, no nested batch (one
        # HTTP call is one logged call); `part_calls` logs the parts, part faults hit them.
        self._inner_app = Flask(__name__ + ".batch")
        self._install_api(self._inner_app)

    @property
    def part_calls(self) -> list[common.Call]:
        """The parts of every batch request so far (method, path, query, status)."""
        return self.recorder.parts_snapshot()

    def _batch(self) -> Response:
        return answer_batch(self._inner_app.test_client(), self.recorder)

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

    def add_calendar(
        self,
        calendar_id: str,
        summary: str = "",
        time_zone: str = "UTC",
        access_role: str = "owner",
    ) -> None:
        """A calendar on the account's list; nothing when it exists.

        `access_role` is the account's access: "owner" (an owner ACL rule), "writer",
        "reader" or "freeBusyReader" (a calendar someone else shared).
        """
        if find_zone(time_zone) is None:
            raise ValueError(f"unknown time zone {time_zone!r}")
        if ROLE_RANK.get(access_role, 0) < ROLE_RANK["freeBusyReader"]:
            raise ValueError(f"unknown access role {access_role!r}")
        with self._lock:
            existing = self._calendars.get(calendar_id)
            if existing is None or existing.deleted:
                self._new_calendar(calendar_id, summary, time_zone, access_role)

    def calendars(self) -> list[dict[str, Any]]:
        """The account's calendar list (hidden entries included), primary first."""
        with self._lock:
            listed = [c for c in self._calendars.values() if c.listed and not c.deleted]
            listed.sort(key=lambda c: (not self._is_primary(c), c.order))
            return copy.deepcopy([self._entry_resource(c) for c in listed])

    def acl(self, calendar_id: str) -> list[dict[str, Any]]:
        """The live rules of a calendar's ACL, oldest first; [] for an unknown calendar."""
        with self._lock:
            calendar = self._calendars.get(self._resolve(calendar_id))
            if calendar is None or calendar.deleted:
                return []
            rules = sorted(calendar.acl.values(), key=lambda rule: rule.order)
            return [rule.resource() for rule in rules if not rule.deleted]

    def add_event(
        self, calendar_id: str, body: dict[str, Any], *, conference_data_version: int = 1
    ) -> dict[str, Any]:
        """Stores an event as events.insert would (same checks; raises `ApiError` where the
        API answers an error), without an HTTP call, a call-log entry or a notification; a
        channel watching the calendar hears of it (as of any change)."""
        validate_schema(body, {"$ref": "Event"}, "event", self._schemas)
        params = {"conferenceDataVersion": conference_data_version}
        with self._lock:
            calendar = self._calendar(calendar_id, "writer")
            stored = self._create_event(calendar, drop_nulls(body), params)
            return copy.deepcopy(stored.body)

    def events(self, calendar_id: str = "primary") -> list[dict[str, Any]]:
        """Every stored event of the calendar, cancelled ones included, in insertion order.

        A recurring event is its master (with `recurrence`), not its instances.
        """
        with self._lock:
            calendar = self._calendars.get(self._resolve(calendar_id))
            if calendar is None or calendar.deleted:
                return []
            return [copy.deepcopy(e.body) for e in calendar.events.values()]

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            calendar = self._calendars.get(self._resolve(calendar_id))
            stored = calendar.events.get(event_id) if calendar else None
            return copy.deepcopy(stored.body) if stored else None

    def person_edit(self, calendar_id: str, event_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A person's change in Google's UI: `patch` merged as events.patch merges (null
        clears; removing `conferenceData` removes the Meet link, `hangoutLink` too). No HTTP
        call, no call-log entry, no notification; etag, updated, sequence and the revision
        that sync tokens follow move as for any change. A `status` other than cancelled restores an
        event the person deleted; `status: cancelled` is `person_delete`. Raises `ApiError`
        (404 for an unknown event, 400 for an edit Google would refuse)."""
        validate_schema(patch, {"$ref": "Event"}, "event", self._schemas)
        with self._lock:
            calendar, stored = self._person_target(calendar_id, event_id)
            change = {k: v for k, v in patch.items() if k not in {"id", "iCalUID"}}
            event = merge_patch(stored.body, change)
            given = change.get("conferenceData")
            if isinstance(given, dict) and given.get("createRequest"):
                # A person adding Meet in the UI gets a new conference, whatever the id.
                made = self._conference(given, stored.body.get("conferenceData"), set())
                if made is None:
                    event.pop("conferenceData", None)
                else:
                    event["conferenceData"] = made
            old = stored.body
            start_ts, end_ts, series = self._check_event(event, calendar)
            if event.get("start") != old.get("start") or event.get("end") != old.get("end"):
                event["sequence"] = int(old.get("sequence", 0)) + 1
            self._link_hangout(event)
            self._normalize_reminders(event)
            self._normalize_attendees(event, old, old["organizer"]["email"])
            stored.body = event
            stored.start_ts, stored.end_ts, stored.series = start_ts, end_ts, series
            if event.get("status") == "cancelled":
                stored.person_deleted = True
            elif old.get("status") == "cancelled":
                stored.person_deleted = False  # restored from the bin in the UI
            self._remember_request(stored, given)
            self._touch(stored, self.clock())
            return copy.deepcopy(stored.body)

    def person_delete(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """The event deleted by a person in Google's UI: cancelled, and, while
        `refuse_revival_of_person_deleted` is set, beyond the API's reach (patch and update
        403, insert of its id 409). No HTTP call, no call-log entry, no notification."""
        with self._lock:
            _calendar, stored = self._person_target(calendar_id, event_id)
            stored.body["status"] = "cancelled"
            stored.person_deleted = True
            self._touch(stored, self.clock())
            return copy.deepcopy(stored.body)

    def _person_target(self, calendar_id: str, event_id: str) -> tuple[Calendar, StoredEvent]:
        calendar = self._calendars.get(self._resolve(calendar_id))
        if calendar is None or calendar.deleted:
            raise ApiError(404, "notFound", "Not Found")
        return calendar, self._stored(calendar, event_id)

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far answers 410 `fullSyncRequired` from now on."""
        with self._lock:
            for state in self._syncs.values():
                state.expired = True

    def reset(self) -> None:
        """Back to a fresh account: only the primary calendar (as new: no events, the owner
        rule, default list settings); notifications, calls, faults, push channels and the push
        log dropped. OAuth clients and tokens stay.

        Calendars of `add_calendar` go too (add them again). Sync tokens issued before the
        reset expire (what they describe is gone). A denied consent is a fault too: `consent`
        goes back to "approve", the Calendar switches set on this instance go back to the
        class's defaults and the push switches to the constructor's.
        """
        for name in CALENDAR_SWITCHES:
            self.__dict__.pop(name, None)
        self.__dict__.update(self._push_switches)
        self._push.reset()
        with self._lock:
            self._calendars.clear()
            self._new_calendar(self.account_email, self.account_email, PRIMARY_TIME_ZONE)
            self.notifications.clear()
            self._pages.clear()
            for state in self._syncs.values():
                state.expired = True
        self.consent = "approve"
        self.recorder.reset_calls()
        self.recorder.clear_faults()

    # ------------------------------------------------------------------ routes

    def _install_api(self, app: Flask) -> None:
        app.register_error_handler(ApiError, lambda exc: exc.response())
        app.register_error_handler(HTTPException, self._http_exception)
        calendars = API_PREFIX + "/calendars"
        one = calendars + "/<calendar_id>"
        events = one + "/events"
        event = events + "/<event_id>"
        entries = API_PREFIX + "/users/me/calendarList"
        entry = entries + "/<calendar_id>"
        routes: list[tuple[str, str, Callable[..., Response], str]] = [
            (calendars, "calendars_insert", self._calendars_insert, "POST"),
            (one, "calendars_get", self._calendars_get, "GET"),
            (one, "calendars_patch", self._calendars_patch, "PATCH"),
            (one, "calendars_update", self._calendars_update, "PUT"),
            (one, "calendars_delete", self._calendars_delete, "DELETE"),
            (one + "/clear", "calendars_clear", self._calendars_clear, "POST"),
            (one + "/acl", "acl_list", self._acl_list, "GET"),
            (one + "/acl", "acl_insert", self._acl_insert, "POST"),
            (one + "/acl/<rule_id>", "acl_get", self._acl_get, "GET"),
            (one + "/acl/<rule_id>", "acl_patch", self._acl_patch, "PATCH"),
            (one + "/acl/<rule_id>", "acl_update", self._acl_update, "PUT"),
            (one + "/acl/<rule_id>", "acl_delete", self._acl_delete, "DELETE"),
            (entries, "calendar_list_list", self._calendar_list_list, "GET"),
            (entries, "calendar_list_insert", self._calendar_list_insert, "POST"),
            (entry, "calendar_list_get", self._calendar_list_get, "GET"),
            (entry, "calendar_list_patch", self._calendar_list_patch, "PATCH"),
            (entry, "calendar_list_update", self._calendar_list_update, "PUT"),
            (entry, "calendar_list_delete", self._calendar_list_delete, "DELETE"),
            (events, "events_list", self._list, "GET"),
            (events, "events_insert", self._insert, "POST"),
            (event, "events_get", self._get, "GET"),
            (event, "events_patch", self._patch, "PATCH"),
            (event, "events_update", self._update, "PUT"),
            (event, "events_delete", self._delete, "DELETE"),
            (event + "/move", "events_move", self._move, "POST"),
            (event + "/instances", "events_instances", self._instances, "GET"),
            (events + "/watch", "events_watch", self._watch, "POST"),
            (API_PREFIX + "/channels/stop", "channels_stop", self._channels_stop, "POST"),
        ]  # fmt: skip
        for rule, endpoint, view, method in routes:
            app.add_url_rule(rule, endpoint, view, methods=[method])

    @staticmethod
    def _http_exception(exc: HTTPException) -> Response:
        code = exc.code or 500
        reason = {404: "notFound", 405: "methodNotAllowed"}.get(code, "badRequest")
        try:
            message = HTTPStatus(code).phrase
        except ValueError:
            message = "Error"
        return ApiError(code, reason, message).response()

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
                    calendar_id,
                    data.get("summary", ""),
                    data.get("time_zone", "UTC"),
                    data.get("access_role", "owner"),
                )
            except ValueError as exc:
                raise bad(str(exc)) from None
            return done()

        @app.get(prefix + "calendars")
        def _calendars() -> Response:
            return json_response({"items": self.calendars()})

        @app.get(prefix + "calendars/<calendar_id>/acl")
        def _acl(calendar_id: str) -> Response:
            with self._lock:
                self._calendar(calendar_id)
                return json_response({"items": self.acl(calendar_id)})

        @app.get(prefix + "calendars/<calendar_id>/events")
        def _events(calendar_id: str) -> Response:
            with self._lock:
                self._calendar(calendar_id)
                return json_response({"items": self.events(calendar_id)})

        @app.get(prefix + "notifications")
        def _notifications() -> Response:
            with self._lock:
                return json_response({"items": copy.deepcopy(self.notifications)})

        @app.post(prefix + "calendars/<calendar_id>/events/<event_id>/person-edit")
        def _person_edit(calendar_id: str, event_id: str) -> Response:
            return json_response(self.person_edit(calendar_id, event_id, admin_body()))

        @app.post(prefix + "calendars/<calendar_id>/events/<event_id>/person-delete")
        def _person_delete(calendar_id: str, event_id: str) -> Response:
            return json_response(self.person_delete(calendar_id, event_id))

        @app.post(prefix + "sync-tokens/expire")
        def _expire_sync() -> Response:
            self.expire_sync_tokens()
            return done()

        @app.post(prefix + "reset")
        def _reset() -> Response:
            self.reset()
            return done()


def serve(port: int = 0, **switches: Any) -> tuple[GoogleStandIn, common.ServerThread]:
    """A started stand-in on 127.0.0.1 (`port` 0: any free port); `switches`: the
    constructor's push keywords."""
    standin = GoogleStandIn(**switches)
    server = common.ServerThread(standin.app, port=port).start()
    return standin, server
