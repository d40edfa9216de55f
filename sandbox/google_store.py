"""State of the Calendar stand-in and what its API parts share.

`StandInBase` holds the calendars (each with its events, ACL and calendar-list settings),
the page and sync tokens handed out, and the helpers every handler uses: authorization by
the discovery document's scopes, query and body checks, the account's access level, paging.
The API parts (`google_events`, `google_listing`, `google_calendars`) are mixins over it;
`google_calendar.GoogleStandIn` puts them together.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

from flask import request

from sandbox.google_recurrence import Recurrence
from sandbox.google_schema import STANDARD_PARAMS, parse_query, validate_schema
from sandbox.google_wire import ApiError, bad, random_token, rfc3339_millis

if TYPE_CHECKING:
    from sandbox.google_oauth import OAuthServer
    from sandbox.google_push import PushHub
# Access levels, weakest first (Google's `minAccessRole` order).
ACCESS_ROLES = ("none", "freeBusyReader", "reader", "writerWithoutPrivateAccess", "writer", "owner")
ROLE_RANK = {role: rank for rank, role in enumerate(ACCESS_ROLES)}

T = TypeVar("T")


# ---------------------------------------------------------------------------- patch


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
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
            merged[key] = drop_nulls(copy.deepcopy(value))
    return merged


# ---------------------------------------------------------------------------- state


@dataclass
class Series:
    """How a recurring master repeats: its rule and its first start, in its own zone."""

    recurrence: Recurrence
    local_start: datetime  # naive, in `zone`
    zone: tzinfo
    end_zone: tzinfo
    all_day: bool
    duration: float  # seconds from start to end (timed events)
    days: int  # days from start to end (all-day events)


@dataclass
class StoredEvent:
    body: dict[str, Any]
    order: int  # insertion order: stable paging
    rev: int  # revision of the last change: sync tokens
    updated_at: float
    start_ts: float
    end_ts: float
    series: Series | None = None  # set for a recurring master
    person_deleted: bool = False  # cancelled by a person in Google's UI, not by the API
    # Every conferenceData.createRequest.requestId this event was sent: one used before
    # is ignored (discovery doc, CreateConferenceRequest.requestId).
    request_ids: set[str] = field(default_factory=set)
    calendar_id: str = ""  # the calendar holding it: whose channels hear of its changes


@dataclass
class AclEntry:
    id: str
    role: str
    scope: dict[str, str]
    order: int
    rev: int
    etag: str
    deleted: bool = False

    def resource(self) -> dict[str, Any]:
        return {
            "kind": "calendar#aclRule",
            "etag": self.etag,
            "id": self.id,
            "scope": dict(self.scope),
            "role": "none" if self.deleted else self.role,
        }


@dataclass
class Calendar:
    id: str
    summary: str
    time_zone: str
    access_role: str = "owner"  # the account's access level
    description: str = ""
    location: str = ""
    events: dict[str, StoredEvent] = field(default_factory=dict)
    acl: dict[str, AclEntry] = field(default_factory=dict)
    # The account's calendar-list entry: hidden, selected, summaryOverride, colorId, ...
    settings: dict[str, Any] = field(default_factory=dict)
    listed: bool = True  # on the account's calendar list
    deleted: bool = False
    order: int = 0
    rev: int = 0  # revision of the last change of the calendar-list entry
    etag: str = '"0"'
    entry_etag: str = '"0"'


@dataclass(frozen=True)
class PageState:
    scope: str  # what is listed: a calendar id, "acl:<calendar id>", "calendarList", ...
    query: tuple[tuple[str, tuple[str, ...]], ...]
    after: tuple[Any, ...]  # sort key of the last item already returned
    snapshot_rev: int  # revision when the first page was served


@dataclass
class SyncState:
    scope: str
    rev: int
    issued_at: float
    expired: bool = False


def new_event_id() -> str:
    return base64.b32hexencode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def etag_of(now: float, rev: int) -> str:
    return f'"{int(now * 1000) * 1000 + rev % 1000}"'


# ---------------------------------------------------------------------------- shared


class StandInBase:
    """State and helpers the API mixins share (set up by `GoogleStandIn.__init__`)."""

    clock: Callable[[], float]
    account_email: str
    notifications: list[dict[str, Any]]
    minimal_cancelled_in_list: bool
    refuse_revival_of_person_deleted: bool
    refuse_default_with_empty_overrides: bool
    updated_min_horizon_days: float
    oauth: OAuthServer
    _push: PushHub
    _lock: threading.RLock
    _calendars: dict[str, Calendar]
    _pages: dict[str, PageState]
    _syncs: dict[str, SyncState]
    _rev: int
    _order: int
    _schemas: dict[str, Any]
    _resources: dict[str, Any]

    def _next_rev(self) -> int:
        self._rev += 1
        return self._rev

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    # -- requests

    def _authorize(self, resource: str, method: str) -> None:
        """Bearer token issued here, unexpired by `clock`, with a scope the method accepts."""
        scopes = self._resources[resource]["methods"][method].get("scopes", [])
        self.oauth.check_bearer(request.headers.get("Authorization", ""), scopes)

    def _query(self, resource: str, method: str) -> dict[str, Any]:
        """Query parameters checked against the method's discovery entry, parsed."""
        return parse_query(self._resources[resource]["methods"][method], request.args)

    def _body(self, schema: str, name: str) -> dict[str, Any]:
        """The JSON object sent, checked against `schema` of the discovery document."""
        raw = request.get_data()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(body, dict):
            raise bad(f"Invalid JSON payload received. Expected an object at '{name}'.")
        validate_schema(body, {"$ref": schema}, name, self._schemas)
        return body

    # -- calendars

    def _resolve(self, calendar_id: str) -> str:
        return self.account_email if calendar_id == "primary" else calendar_id

    def _calendar(self, calendar_id: str, need: str = "freeBusyReader") -> Calendar:
        """The calendar, when it exists and the account has at least `need` access."""
        calendar = self._calendars.get(self._resolve(calendar_id))
        if calendar is None or calendar.deleted:
            raise ApiError(404, "notFound", "Not Found")
        if ROLE_RANK[calendar.access_role] < ROLE_RANK[need]:
            level = "owner" if need == "owner" else "writer" if ROLE_RANK[need] > 2 else need
            raise ApiError(
                403, "requiredAccessLevel", f"You need to have {level} access to this calendar."
            )
        return calendar

    def _is_primary(self, calendar: Calendar) -> bool:
        return calendar.id == self.account_email

    # -- paging and sync tokens

    @staticmethod
    def _query_key(*ignored: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The request's query minus paging: what a page token is bound to."""
        skip = {"pageToken", "maxResults", *ignored}
        return tuple(
            (name, tuple(request.args.getlist(name)))
            for name in sorted(request.args)
            if name not in skip and name not in STANDARD_PARAMS
        )

    def _page_state(
        self, scope: str, query: tuple[tuple[str, tuple[str, ...]], ...], params: dict[str, Any]
    ) -> PageState | None:
        if "pageToken" not in params:
            return None
        page = self._pages.get(params["pageToken"])
        if page is None or page.scope != scope or page.query != query:
            raise bad("Invalid page token value.")
        return page

    def _sync_state(self, scope: str, token: str) -> SyncState:
        sync = self._syncs.get(token)
        if sync is None or sync.scope != scope:
            raise bad("Invalid sync token value.")
        if sync.expired:
            raise ApiError(
                410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
            )
        return sync

    def _cut_page(
        self,
        matches: list[tuple[tuple[Any, ...], T]],
        page: PageState | None,
        max_results: int,
        scope: str,
        query: tuple[tuple[str, tuple[str, ...]], ...],
    ) -> tuple[list[T], str | None]:
        """Sorts `(key, item)` pairs, skips what earlier pages gave, cuts one page.

        Returns the page's items and the next page token (None on the last page).
        """
        matches.sort(key=lambda pair: pair[0])
        if page is not None:
            matches = [pair for pair in matches if pair[0] > page.after]
        chosen = matches[:max_results]
        if len(matches) <= max_results:
            return [item for _, item in chosen], None
        token = random_token()
        snapshot = page.snapshot_rev if page else self._rev
        self._pages[token] = PageState(scope, query, chosen[-1][0], snapshot)
        return [item for _, item in chosen], token

    def _issue_sync_token(self, scope: str, page: PageState | None) -> str:
        token = random_token()
        snapshot = page.snapshot_rev if page else self._rev
        self._syncs[token] = SyncState(scope, snapshot, self.clock())
        return token

    @staticmethod
    def _max_results(params: dict[str, Any], default: int, limit: int) -> int:
        """`maxResults`, at most `limit` (Google answers more with the limit, silently)."""
        return min(int(params.get("maxResults", default)), limit)

    # -- events

    @staticmethod
    def _stored(calendar: Calendar, event_id: str) -> StoredEvent:
        stored = calendar.events.get(event_id)
        if stored is None:
            raise ApiError(404, "notFound", "Not Found")
        return stored

    @staticmethod
    def _render(body: dict[str, Any], max_attendees: int | None) -> dict[str, Any]:
        """An event as answered; shares the stored dicts, so serialize it under the lock."""
        attendees = body.get("attendees")
        if max_attendees is not None and attendees and len(attendees) > max_attendees:
            return {**body, "attendees": attendees[:max_attendees], "attendeesOmitted": True}
        return body

    def _organizer(self, calendar: Calendar) -> dict[str, Any]:
        if self._is_primary(calendar):
            return {"email": self.account_email, "self": True}
        return {"email": calendar.id, "displayName": calendar.summary, "self": True}

    @staticmethod
    def _html_link(calendar: Calendar, event_id: str) -> str:
        eid = base64.urlsafe_b64encode(f"{event_id} {calendar.id}".encode()).decode().rstrip("=")
        return f"https://www.google.com/calendar/event?eid={eid}"

    def _touch(self, stored: StoredEvent, now: float) -> None:
        stored.rev = self._next_rev()
        stored.updated_at = now
        stored.body["updated"] = rfc3339_millis(now)
        stored.body["etag"] = etag_of(now, self._rev)
        # Every change of an event is one to its calendar's events: each channel watching
        # them gets an `exists` message (https://developers.google.com/calendar/api/guides/push).
        self._push.event_changed(stored.calendar_id, stored.body.get("eventType", "default"))
