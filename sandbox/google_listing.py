"""Reads of the Calendar stand-in's events: get, list and instances.

A recurring event is stored once (the master). `events.list` answers the master with
`singleEvents=false` and its instances instead with `singleEvents=true`: ids
`<masterId>_<YYYYMMDDTHHMMSSZ>` (timed, UTC) or `<masterId>_<YYYYMMDD>` (all-day),
`recurringEventId`, `originalStartTime`, start and end moved, everything else copied. A rule
that never ends is expanded up to `timeMax` or `UNBOUNDED_DAYS` past its first start,
whichever comes first. `events.get` answers an instance id too.

Sync tokens as Google hands them out: on the last page, also after `timeMin`/`timeMax`
(the sync guide: "you may want to limit your full sync to only a certain date range",
https://developers.google.com/calendar/api/guides/sync), but not after `orderBy` (Google's
answer has no `nextSyncToken` then). A list with a `syncToken` answers changed events,
cancelled ones included; with `singleEvents=true` a changed recurring master comes back as
its instances. Cancelled items carry only kind, etag, id, status and updated while
`minimal_cancelled_in_list` is set; an `updatedMin` older than `updated_min_horizon_days`
answers 410 `updatedMinTooLongAgo`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from flask import Response

from sandbox.google_recurrence import expand, local_ts
from sandbox.google_store import Calendar, StandInBase, StoredEvent
from sandbox.google_wire import ApiError, bad, json_response, parse_date, parse_date_time
from sandbox.google_wire import rfc3339_millis as millis

DEFAULT_MAX_RESULTS = 250
MAX_RESULTS_LIMIT = 2500
UNBOUNDED_DAYS = 730  # how far a rule without COUNT or UNTIL is expanded
MAX_INSTANCES = 10_000  # instances of one master per request, whatever the rule says
# A syncToken may not be combined with these (Events: list reference), nor with
# showDeleted=false.
SYNC_EXCLUDED_PARAMS = (
    "timeMin", "timeMax", "q", "orderBy", "privateExtendedProperty",
    "sharedExtendedProperty", "iCalUID", "updatedMin",
)  # fmt: skip
_TIMED_SUFFIX = re.compile(r"^\d{8}T\d{6}Z$")
_DAY_SUFFIX = re.compile(r"^\d{8}$")

# An occurrence: (start, end, local start) of an instance; local start None for a
# non-recurring event or a master listed as such.
Occurrence = tuple[float, float, datetime | None]


def _format(ts: float, zone: tzinfo) -> str:
    text = datetime.fromtimestamp(ts, zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class EventReads(StandInBase):
    """events.get, list and instances."""

    # -- get

    def _get(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("events", "get")
        params = self._query("events", "get")
        with self._lock:
            calendar = self._calendar(calendar_id, "reader")
            stored = calendar.events.get(event_id)
            body = stored.body if stored is not None else self._find_instance(calendar, event_id)
            if body is None:
                raise ApiError(404, "notFound", "Not Found")
            return json_response(self._render(body, params.get("maxAttendees")))

    def _find_instance(self, calendar: Calendar, instance_id: str) -> dict[str, Any] | None:
        master_id, sep, suffix = instance_id.rpartition("_")
        stored = calendar.events.get(master_id) if sep else None
        if stored is None or stored.series is None:
            return None
        series = stored.series
        if _TIMED_SUFFIX.match(suffix) and not series.all_day:
            wanted = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        elif _DAY_SUFFIX.match(suffix) and series.all_day:
            wanted = local_ts(datetime.strptime(suffix, "%Y%m%d"), series.zone)
        else:
            return None
        for local, ts in expand(
            series.recurrence, series.local_start, series.zone, wanted + 1, MAX_INSTANCES
        ):
            if ts == wanted:
                return self._instance(calendar, stored, local, ts)
        return None

    # -- instances of a recurring master

    def _occurrences(
        self, stored: StoredEvent, time_min: float | None, time_max: float | None
    ) -> Iterator[Occurrence]:
        """The instances of a master overlapping [time_min, time_max), in order."""
        series = stored.series
        assert series is not None
        horizon = time_max if time_max is not None else math.inf
        if not series.recurrence.bounded:
            horizon = min(horizon, stored.start_ts + UNBOUNDED_DAYS * 86400)
        for local, ts in expand(
            series.recurrence, series.local_start, series.zone, horizon, MAX_INSTANCES
        ):
            if series.all_day:
                end = local_ts(local + timedelta(days=series.days), series.zone)
            else:
                end = ts + series.duration
            if time_min is None or end > time_min:
                yield ts, end, local

    def _instance(
        self, calendar: Calendar, stored: StoredEvent, local: datetime, ts: float
    ) -> dict[str, Any]:
        """The instance of a master starting at `local` (its zone) = `ts`."""
        series = stored.series
        assert series is not None
        master = stored.body
        start: dict[str, Any]
        end: dict[str, Any]
        if series.all_day:
            day = local.date()
            start = {"date": day.isoformat()}
            end = {"date": (day + timedelta(days=series.days)).isoformat()}
            suffix = day.strftime("%Y%m%d")
        else:
            start = {"dateTime": _format(ts, series.zone)}
            end = {"dateTime": _format(ts + series.duration, series.end_zone)}
            suffix = datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")
        for mine, theirs in ((start, master["start"]), (end, master["end"])):
            if "timeZone" in theirs:
                mine["timeZone"] = theirs["timeZone"]
        instance_id = f"{master['id']}_{suffix}"
        body = {key: value for key, value in master.items() if key != "recurrence"}
        body.update(
            id=instance_id,
            htmlLink=self._html_link(calendar, instance_id),
            start=start,
            end=end,
            recurringEventId=master["id"],
            originalStartTime=dict(start),
        )
        return body

    def _series_overlaps(
        self, stored: StoredEvent, time_min: float | None, time_max: float | None
    ) -> bool:
        """Whether a master has an instance in [time_min, time_max) (listed unexpanded)."""
        series = stored.series
        assert series is not None
        if time_min is None and time_max is None:
            return True
        if time_max is not None and stored.start_ts >= time_max:
            return False
        if not series.recurrence.bounded:
            return True
        return next(self._occurrences(stored, time_min, time_max), None) is not None

    # -- list

    def _list(self, calendar_id: str) -> Response:
        self._authorize("events", "list")
        params = self._query("events", "list")
        max_results = params.get("maxResults", DEFAULT_MAX_RESULTS)
        if max_results > MAX_RESULTS_LIMIT:
            raise ApiError(
                400, "invalid", f"Invalid value for parameter 'maxResults': {max_results}",
                location="maxResults",
            )  # fmt: skip
        order_by = params.get("orderBy")
        single = bool(params.get("singleEvents"))
        if order_by == "startTime" and not single:
            raise bad("The requested ordering is not available for the particular query.")
        time_min, time_max = params.get("timeMin"), params.get("timeMax")
        if time_min is not None and time_max is not None and time_max < time_min:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        private = self._property_filters(params.get("privateExtendedProperty", []))
        shared = self._property_filters(params.get("sharedExtendedProperty", []))
        event_types = params.get("eventTypes")
        query = self._query_key()
        with self._lock:
            calendar = self._calendar(calendar_id)
            scope = calendar.id
            sync = None
            if "syncToken" in params:
                clashing = [name for name in SYNC_EXCLUDED_PARAMS if name in params]
                if clashing or params.get("showDeleted") is False:
                    # As Google words it (it names no parameter).
                    raise ApiError(
                        400, "syncTokenWithRequestRestrictions",
                        "Sync token cannot be used with other request restrictions.",
                    )  # fmt: skip
                sync = self._sync_state(scope, params["syncToken"])
            self._check_updated_min(params.get("updatedMin"))
            page = self._page_state(scope, query, params)

            include_deleted = bool(params.get("showDeleted")) or sync is not None
            include_deleted = include_deleted or "updatedMin" in params
            updated_min = params.get("updatedMin")
            ical_uid = params.get("iCalUID")
            q = str(params.get("q", "")).lower()
            matches: list[tuple[tuple[float, ...], tuple[StoredEvent, Occurrence]]] = []
            for stored in calendar.events.values():
                body = stored.body
                if not include_deleted and body.get("status") == "cancelled":
                    continue
                if sync is not None and stored.rev <= sync.rev:
                    continue
                if updated_min is not None and stored.updated_at < updated_min:
                    continue
                if ical_uid is not None and body.get("iCalUID") != ical_uid:
                    continue
                if event_types and body.get("eventType", "default") not in event_types:
                    continue
                if q and q not in self._search_text(body):
                    continue
                if (private or shared) and not self._has_properties(body, private, shared):
                    continue
                if stored.series is not None and single:
                    for occurrence in self._occurrences(stored, time_min, time_max):
                        key = self._sort_key(stored, occurrence[0], order_by)
                        matches.append((key, (stored, occurrence)))
                    continue
                if stored.series is not None:
                    if not self._series_overlaps(stored, time_min, time_max):
                        continue
                elif (time_min is not None and stored.end_ts <= time_min) or (
                    time_max is not None and stored.start_ts >= time_max
                ):
                    continue
                key = self._sort_key(stored, stored.start_ts, order_by)
                matches.append((key, (stored, (stored.start_ts, stored.end_ts, None))))
            chosen, next_page = self._cut_page(matches, page, max_results, scope, query)
            max_attendees = params.get("maxAttendees")
            result = self._events_page(calendar)
            result["items"] = [
                self._list_item(calendar, stored, occurrence, max_attendees)
                for stored, occurrence in chosen
            ]
            if next_page is not None:
                result["nextPageToken"] = next_page
            elif order_by is None:
                # Also after timeMin/timeMax: the sync guide's date-bounded full sync.
                result["nextSyncToken"] = self._issue_sync_token(scope, page)
            return json_response(result)

    def _check_updated_min(self, updated_min: float | None) -> None:
        """Wording of the Calendar errors guide (410: Gone), reason `updatedMinTooLongAgo`:
        https://developers.google.com/calendar/api/guides/errors"""
        horizon = self.clock() - self.updated_min_horizon_days * 86400
        if updated_min is not None and updated_min < horizon:
            raise ApiError(
                410, "updatedMinTooLongAgo",
                "The requested minimum modification time lies too far in the past.",
                location="updatedMin", domain="calendar",
            )  # fmt: skip

    def _events_page(self, calendar: Calendar) -> dict[str, Any]:
        """An `Events` answer without its items."""
        now = self.clock()
        updated = max((e.updated_at for e in calendar.events.values()), default=now)
        return {
            "kind": "calendar#events",
            "etag": f'"p{int(now * 1000)}{self._rev}"',
            "summary": calendar.summary,
            "description": calendar.description,
            "updated": millis(updated),
            "timeZone": calendar.time_zone,
            "accessRole": calendar.access_role,
            "defaultReminders": [],
            "items": [],
        }

    def _list_item(
        self,
        calendar: Calendar,
        stored: StoredEvent,
        occurrence: Occurrence,
        max_attendees: int | None,
    ) -> dict[str, Any]:
        start, _, local = occurrence
        body = stored.body if local is None else self._instance(calendar, stored, local, start)
        if self.minimal_cancelled_in_list and body.get("status") == "cancelled":
            # "Deleted events are only guaranteed to have the id field populated" (discovery
            # doc, Event.status; events.list reference).
            keep = ("kind", "etag", "id", "status", "updated")
            return {k: body[k] for k in keep if k in body}
        return self._render(body, max_attendees)

    @staticmethod
    def _sort_key(stored: StoredEvent, start: float, order_by: str | None) -> tuple[float, ...]:
        if order_by == "startTime":
            return (start, stored.order)
        if order_by == "updated":
            return (stored.updated_at, stored.order, start)
        return (stored.order, start)

    @staticmethod
    def _property_filters(values: list[str]) -> list[tuple[str, str]]:
        filters = []
        for value in values:
            key, sep, wanted = value.partition("=")
            if not sep or not key:
                raise bad(f'Invalid extended property constraint: "{value}"')
            filters.append((key, wanted))
        return filters

    @staticmethod
    def _has_properties(
        body: dict[str, Any], private: list[tuple[str, str]], shared: list[tuple[str, str]]
    ) -> bool:
        # The reference says repeated constraints must all match.
        properties = body.get("extendedProperties", {})
        mine, theirs = properties.get("private", {}), properties.get("shared", {})
        return all(mine.get(k) == v for k, v in private) and all(
            theirs.get(k) == v for k, v in shared
        )

    @staticmethod
    def _search_text(body: dict[str, Any]) -> str:
        parts = [str(body.get(name, "")) for name in ("summary", "description", "location")]
        for attendee in body.get("attendees", []):
            parts += [str(attendee.get("email", "")), str(attendee.get("displayName", ""))]
        return "\n".join(parts).lower()

    # -- instances

    def _instances(self, calendar_id: str, event_id: str) -> Response:
        """events.instances: the instances of a recurring event (a single event: itself)."""
        self._authorize("events", "instances")
        params = self._query("events", "instances")
        max_results = min(params.get("maxResults", DEFAULT_MAX_RESULTS), MAX_RESULTS_LIMIT)
        time_min, time_max = params.get("timeMin"), params.get("timeMax")
        if time_min is not None and time_max is not None and time_max < time_min:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        original = params.get("originalStart")
        query = self._query_key()
        with self._lock:
            calendar = self._calendar(calendar_id, "reader")
            stored = self._stored(calendar, event_id)
            scope = f"instances:{calendar.id}:{event_id}"
            page = self._page_state(scope, query, params)
            matches: list[tuple[tuple[float, ...], Occurrence]] = []
            if stored.body.get("status") != "cancelled" or params.get("showDeleted"):
                if stored.series is None:
                    occurrences: Any = [(stored.start_ts, stored.end_ts, None)]
                else:
                    occurrences = self._occurrences(stored, time_min, time_max)
                for occurrence in occurrences:
                    if original is None or self._starts_at(stored, occurrence, original):
                        matches.append(((occurrence[0],), occurrence))
            chosen, next_page = self._cut_page(matches, page, max_results, scope, query)
            result = self._events_page(calendar)
            max_attendees = params.get("maxAttendees")
            result["items"] = [
                self._list_item(calendar, stored, occurrence, max_attendees)
                for occurrence in chosen
            ]
            if next_page is not None:
                result["nextPageToken"] = next_page
            return json_response(result)

    @staticmethod
    def _starts_at(stored: StoredEvent, occurrence: Occurrence, original: str) -> bool:
        """Whether an instance's original start is `original` (a date-time or a date)."""
        moment = parse_date_time(original)
        if moment is not None and moment.tzinfo is not None:
            return occurrence[0] == moment.timestamp()
        day = parse_date(original)
        if day is None:
            raise ApiError(
                400, "invalid", "Invalid value for: originalStart", location="originalStart"
            )
        local = occurrence[2]
        return (local.date() if local else stored.body["start"].get("date")) in (day, original)
