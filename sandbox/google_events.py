"""Writes of the Calendar stand-in's events: insert, patch, update (PUT), delete and move.

Each write checks what Google checks beyond the `Event` schema: id rules, start and end,
reminder limits, attendee e-mails, recurrence rules (`google_recurrence`) and conference
data. `conferenceData` counts only with `conferenceDataVersion=1`; a `createRequest` for
`hangoutsMeet` then gets a Google Meet conference at once (status `success`) and the event
its `hangoutLink`; a `requestId` the event was sent before is ignored (the event keeps what
it has, a removed conference stays removed).

An event a person deleted in Google's UI (`GoogleStandIn.person_delete`) answers patch and
update with 403 `forbidden` while `refuse_revival_of_person_deleted` is set; one cancelled
through events.delete stays revivable (a patch with `status: confirmed`).
"""

from __future__ import annotations

import copy
import secrets
import string
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from flask import Response, request

from sandbox.google_recurrence import parse_recurrence
from sandbox.google_schema import EVENT_ID_RE, both_reminders, check_event
from sandbox.google_store import (
    Calendar,
    Series,
    StandInBase,
    StoredEvent,
    drop_nulls,
    merge_patch,
    new_event_id,
)
from sandbox.google_wire import (
    ApiError,
    bad,
    find_zone,
    json_response,
    parse_date,
    rfc3339_millis,
)

# Output-only fields a client may echo back (e.g. after a get); accepted and ignored.
READ_ONLY_FIELDS = frozenset(
    {"kind", "etag", "htmlLink", "created", "updated", "creator", "organizer", "hangoutLink"}
)
MEET = "hangoutsMeet"
MEET_SOLUTION = {
    "key": {"type": MEET},
    "name": "Google Meet",
    "iconUri": "https://fonts.gstatic.com/s/i/productlogo/meet_2020q4/v6/web-512dp/"
    "logo_meet_2020q4_color_2x_web_512dp.png",
}


def meet_code() -> str:
    """A Meet code like `abc-defg-hij`."""
    letters = [secrets.choice(string.ascii_lowercase) for _ in range(10)]
    return f"{''.join(letters[:3])}-{''.join(letters[3:7])}-{''.join(letters[7:])}"


class EventWrites(StandInBase):
    """events.insert, patch, update, delete and move."""

    def _notify(
        self, calendar: Calendar, event_id: str, action: str, params: dict[str, Any]
    ) -> None:
        self.notifications.append(
            {
                "calendarId": calendar.id,
                "eventId": event_id,
                "action": action,
                "sendUpdates": params.get("sendUpdates"),
            }
        )

    @staticmethod
    def _check_if_match(stored: StoredEvent) -> None:
        expected = request.headers.get("If-Match")
        if expected and expected not in ("*", stored.body.get("etag")):
            raise ApiError(412, "conditionNotMet", "Precondition Failed", location="If-Match")

    def _check_revivable(self, stored: StoredEvent) -> None:
        """A person's deletion in the UI is final for the API: insert of the id answers 409
        and update 403 (googleapis/google-api-ruby-client#1811,
        googleapis/google-api-python-client#846), though the discovery doc (Event.status)
        says cancelled events on the organizer's calendar "can be restored (undeleted)"."""
        if stored.person_deleted and self.refuse_revival_of_person_deleted:
            raise ApiError(403, "forbidden", "Forbidden")  # Google's generic 403 wording

    def _check_given_reminders(self, body: dict[str, Any]) -> None:
        """`useDefault: true` with an `overrides` list, even empty, is "both" while
        `refuse_default_with_empty_overrides` is set: the documents are silent on an empty
        list; what restores the defaults in a patch, verified live, is `overrides: null`
        (openclaw/gogcli#1016)."""
        reminders = body.get("reminders")
        if (
            self.refuse_default_with_empty_overrides
            and isinstance(reminders, dict)
            and reminders.get("useDefault")
            and isinstance(reminders.get("overrides"), list)
        ):
            raise both_reminders()

    @staticmethod
    def _remember_request(stored: StoredEvent, given: Any) -> None:
        create = given.get("createRequest") if isinstance(given, dict) else None
        if isinstance(create, dict) and create.get("requestId"):
            stored.request_ids.add(str(create["requestId"]))

    # -- handlers

    def _insert(self, calendar_id: str) -> Response:
        self._authorize("events", "insert")
        params = self._query("events", "insert")
        body = drop_nulls(self._body("Event", "event"))
        self._check_given_reminders(body)
        with self._lock:
            calendar = self._calendar(calendar_id, "writer")
            stored = self._create_event(calendar, body, params)
            self._notify(calendar, stored.body["id"], "insert", params)
            return json_response(self._render(stored.body, params.get("maxAttendees")))

    def _create_event(
        self, calendar: Calendar, body: dict[str, Any], params: dict[str, Any]
    ) -> StoredEvent:
        """Checks and stores a new event (`body` already schema-checked, nulls dropped)."""
        event_id = body.get("id")
        if event_id is not None and not EVENT_ID_RE.match(event_id):
            raise bad("Invalid resource id value.")
        event_id = event_id or new_event_id()
        content = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS | {"id"}}
        given_conference = content.get("conferenceData")
        if params.get("conferenceDataVersion", 0) < 1:
            content.pop("conferenceData", None)
            given_conference = None
        elif given_conference is not None:
            content["conferenceData"] = self._conference(given_conference, None, set())
        start_ts, end_ts, series = self._check_event(content, calendar)
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
        self._link_hangout(event)
        self._normalize_reminders(event)
        self._normalize_attendees(event, None, organizer["email"])
        stored = StoredEvent(
            event, self._next_order(), 0, now, start_ts, end_ts, series, calendar_id=calendar.id
        )
        self._remember_request(stored, given_conference)
        self._touch(stored, now)
        calendar.events[event_id] = stored
        return stored

    def _patch(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("events", "patch")
        params = self._query("events", "patch")
        body = self._body("Event", "event")
        self._check_given_reminders(body)
        with self._lock:
            calendar = self._calendar(calendar_id, "writer")
            stored = self._stored(calendar, event_id)
            self._check_revivable(stored)
            self._check_if_match(stored)
            patch = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS | {"id", "iCalUID"}}
            if params.get("conferenceDataVersion", 0) < 1:
                patch.pop("conferenceData", None)
            # Google's patch: https://developers.google.com/calendar/api/guides/performance#patch
            merged = merge_patch(stored.body, patch)
            given = patch.get("conferenceData")
            if isinstance(given, dict):
                old = stored.body.get("conferenceData")
                chosen = given if given.get("createRequest") else merged["conferenceData"]
                conference = self._conference(chosen, old, stored.request_ids)
                if conference is None:
                    merged.pop("conferenceData", None)
                else:
                    merged["conferenceData"] = conference
            self._rewrite(
                calendar, stored, merged,
                given_sequence=patch.get("sequence"), action="patch", params=params,
            )  # fmt: skip
            self._remember_request(stored, given)
            return json_response(self._render(stored.body, params.get("maxAttendees")))

    def _update(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("events", "update")
        params = self._query("events", "update")
        body = drop_nulls(self._body("Event", "event"))
        self._check_given_reminders(body)
        with self._lock:
            calendar = self._calendar(calendar_id, "writer")
            stored = self._stored(calendar, event_id)
            self._check_revivable(stored)
            self._check_if_match(stored)
            old = stored.body
            content = {
                k: v for k, v in body.items() if k not in READ_ONLY_FIELDS | {"id", "iCalUID"}
            }
            given = content.get("conferenceData")
            if params.get("conferenceDataVersion", 0) < 1:
                # Version 0 ignores conference data: the event keeps what it had.
                given = None
                content.pop("conferenceData", None)
                if "conferenceData" in old:
                    content["conferenceData"] = copy.deepcopy(old["conferenceData"])
            elif given is not None:
                conference = self._conference(given, old.get("conferenceData"), stored.request_ids)
                if conference is None:
                    content.pop("conferenceData")
                else:
                    content["conferenceData"] = conference
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
            self._remember_request(stored, given)
            return json_response(self._render(stored.body, params.get("maxAttendees")))

    def _delete(self, calendar_id: str, event_id: str) -> Response:
        self._authorize("events", "delete")
        params = self._query("events", "delete")
        with self._lock:
            calendar = self._calendar(calendar_id, "writer")
            stored = self._stored(calendar, event_id)
            if stored.body.get("status") == "cancelled":
                raise ApiError(410, "deleted", "Resource has been deleted")
            self._check_if_match(stored)
            stored.body["status"] = "cancelled"
            self._touch(stored, self.clock())
            self._notify(calendar, event_id, "delete", params)
        return Response(status=204)

    def _move(self, calendar_id: str, event_id: str) -> Response:
        """The event (same id) goes to `destination`; the source keeps a cancelled copy."""
        self._authorize("events", "move")
        params = self._query("events", "move")
        if "destination" not in params:
            raise ApiError(
                400, "required", "Required parameter: destination", location="destination"
            )
        with self._lock:
            source = self._calendar(calendar_id, "writer")
            stored = self._stored(source, event_id)
            if stored.body.get("status") == "cancelled":
                raise ApiError(404, "notFound", "Not Found")
            target = self._calendar(params["destination"], "writer")
            if target is source:
                return json_response(self._render(stored.body, None))
            if stored.body.get("eventType", "default") != "default":
                raise bad("Only events of type default can be moved.", "eventTypeRestriction")
            there = target.events.get(event_id)
            if there is not None and there.body.get("status") != "cancelled":
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
            now = self.clock()
            body = copy.deepcopy(stored.body)
            body["organizer"] = self._organizer(target)
            body["htmlLink"] = self._html_link(target, event_id)
            moved = StoredEvent(
                body, self._next_order(), 0, now, stored.start_ts, stored.end_ts, stored.series,
                calendar_id=target.id,
            )  # fmt: skip
            self._touch(moved, now)
            target.events.pop(event_id, None)
            target.events[event_id] = moved
            stored.body["status"] = "cancelled"
            self._touch(stored, now)
            self._notify(source, event_id, "move", params)
            return json_response(self._render(moved.body, None))

    # -- shared by patch and update

    def _rewrite(
        self,
        calendar: Calendar,
        stored: StoredEvent,
        event: dict[str, Any],
        *,
        given_sequence: Any,
        action: str,
        params: dict[str, Any],
    ) -> None:
        """Checks and stores the new state of an existing event (patch and update)."""
        old = stored.body
        start_ts, end_ts, series = self._check_event(event, calendar)
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
        self._link_hangout(event)
        self._normalize_reminders(event)
        self._normalize_attendees(event, old, old["organizer"]["email"])
        stored.body = event
        stored.start_ts, stored.end_ts, stored.series = start_ts, end_ts, series
        if event.get("status") != "cancelled":
            stored.person_deleted = False  # revived (only possible with the switch off)
        self._touch(stored, self.clock())
        self._notify(calendar, event["id"], action, params)

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

    # -- conference data

    def _conference(
        self, given: dict[str, Any], old: dict[str, Any] | None, used: set[str]
    ) -> dict[str, Any] | None:
        """The conference to store for `given` conferenceData (conferenceDataVersion=1);
        None for none. `used`: the request ids the event was sent before."""
        create = given.get("createRequest")
        if create:
            request_id = create.get("requestId")
            if not request_id:
                raise ApiError(400, "required", "Missing conference create request id.")
            kind = (create.get("conferenceSolutionKey") or {}).get("type")
            if not kind:
                raise ApiError(400, "required", "Missing conference solution key type.")
            if kind != MEET:
                raise bad("Invalid conference type value.")
            # "If an ID provided is the same as for the previous request, the request is
            # ignored" (discovery doc, CreateConferenceRequest.requestId): the event keeps
            # what it has, even no conference after a person removed it.
            if request_id in used or (
                old and (old.get("createRequest") or {}).get("requestId") == request_id
            ):
                return copy.deepcopy(old) if old else None
            code = meet_code()
            return {
                "createRequest": {
                    "requestId": request_id,
                    "conferenceSolutionKey": {"type": kind},
                    "status": {"statusCode": "success"},
                },
                "entryPoints": [
                    {
                        "entryPointType": "video",
                        "uri": f"https://meet.google.com/{code}",
                        "label": f"meet.google.com/{code}",
                    }
                ],
                "conferenceSolution": copy.deepcopy(MEET_SOLUTION),
                "conferenceId": code,
            }
        if not given.get("conferenceSolution") or not given.get("entryPoints"):
            raise bad(
                "Invalid conference data: give a createRequest, or a conferenceSolution and "
                "at least one entry point."
            )
        return copy.deepcopy(given)

    @staticmethod
    def _normalize_reminders(event: dict[str, Any]) -> None:
        """An empty `overrides` list is not answered: an event without reminders comes back
        as `{"useDefault": false}` (odoo/odoo#87069 lists what Google answers)."""
        reminders = event.get("reminders")
        if isinstance(reminders, dict) and reminders.get("overrides") == []:
            del reminders["overrides"]

    @staticmethod
    def _link_hangout(event: dict[str, Any]) -> None:
        """`hangoutLink` follows a Google Meet conference's video entry point."""
        conference = event.get("conferenceData") or {}
        kind = ((conference.get("conferenceSolution") or {}).get("key") or {}).get("type")
        video = [
            point.get("uri")
            for point in conference.get("entryPoints") or []
            if point.get("entryPointType") == "video" and point.get("uri")
        ]
        if kind == MEET and video:
            event["hangoutLink"] = video[0]
        else:
            event.pop("hangoutLink", None)

    # -- checks

    def _check_event(
        self, event: dict[str, Any], calendar: Calendar
    ) -> tuple[float, float, Series | None]:
        """What Google checks beyond the schema (`check_event`); returns the (start, end)
        instants and, for a recurring event, its series."""
        start_ts, end_ts, all_day = check_event(event, calendar.time_zone)
        series = None
        if event.get("recurrence"):
            series = self._series(event, calendar, start_ts, end_ts, all_day)
        return start_ts, end_ts, series

    def _series(
        self,
        event: dict[str, Any],
        calendar: Calendar,
        start_ts: float,
        end_ts: float,
        all_day: bool,
    ) -> Series:
        """A recurring event's rule; Google wants the zone of a timed one spelled out."""
        start, end = event["start"], event["end"]
        if all_day:
            zone = find_zone(start.get("timeZone") or calendar.time_zone) or UTC
            first, last = parse_date(start["date"]), parse_date(end["date"])
            assert first is not None  # checked by _instant
            assert last is not None
            local = datetime.combine(first, dtime(0))
            recurrence = parse_recurrence(event["recurrence"], zone, all_day=True)
            return Series(recurrence, local, zone, zone, True, 0.0, (last - first).days)
        for which, when in (("start", start), ("end", end)):
            if not when.get("timeZone"):
                raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
        zone = find_zone(start["timeZone"]) or UTC
        end_zone = find_zone(end["timeZone"]) or UTC
        local = datetime.fromtimestamp(start_ts, zone).replace(tzinfo=None)
        recurrence = parse_recurrence(event["recurrence"], zone, all_day=False)
        return Series(recurrence, local, zone, end_zone, False, end_ts - start_ts, 0)
