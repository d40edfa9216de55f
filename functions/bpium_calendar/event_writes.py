"""Writing one record's event: insert or patch, revive only a live record's, replace what
Google will not revive, and renew a Meet link a person removed.

Google keeps a cancelled event's id, so an insert with our id answers 409 and a patch
reaches it; but the patch leaves it cancelled (our bodies carry no `status`). Reviving is
a separate step taken only after Bpium confirms the record still exists: an update
overlapping the record's delete never brings its event back. An event a person deleted in
the Calendar UI may refuse revival (403): the record then gets a new event, the next
generation of its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import log
from .domain import (
    PRIVATE_CATALOG_KEY,
    PRIVATE_RECORD_KEY,
    EventBody,
    Meeting,
    meet_request_id,
)
from .errors import Conflict, Forbidden, Gone, NotFound, PreconditionFailed, UpstreamError
from .event_ids import MAX_GENERATION, decode_event_id, event_id_for, generation_of


class RecordReader(Protocol):
    def get_record(self, catalog_id: str, record_id: str) -> dict[str, Any]: ...


class EventCalendar(Protocol):
    def insert(
        self, calendar_id: str, body: Mapping[str, Any], *, send_updates: str
    ) -> dict[str, Any]: ...

    def patch(
        self,
        calendar_id: str,
        event_id: str,
        body: Mapping[str, Any],
        *,
        send_updates: str,
        if_match: str | None = None,
    ) -> dict[str, Any]: ...

    def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Guard:
    """The event as it was before the record was read: its etag, None when it did not
    exist. A write to that event succeeds only if nobody wrote it since."""

    calendar_id: str
    event_id: str
    etag: str | None


class Raced(Exception):
    """Someone wrote the guarded event since its guard was taken: read the record again."""


class EventExists(Exception):
    """An insert found the event there already, and the caller asked to hear of it."""


class RecordGone(Exception):
    """The record was deleted meanwhile: its event must stay cancelled."""


class _Missing(Exception):
    """The id names no event in that calendar."""


class _Refused(Exception):
    """Google will not revive the cancelled event (a person deleted it)."""


def has_conference(event: Mapping[str, Any]) -> bool:
    """Whether the event has a Meet conference, or one being created."""
    data = event.get("conferenceData") or {}
    pending = ((data.get("createRequest") or {}).get("status") or {}).get("statusCode")
    return bool(event.get("hangoutLink") or data.get("entryPoints") or pending == "pending")


class EventWriter:
    """Makes one record's event carry a body; see the module docstring for the rules."""

    def __init__(self, calendar: EventCalendar, bpium: RecordReader, send_updates: str) -> None:
        self.calendar = calendar
        self.bpium = bpium
        self.send_updates = send_updates

    def write(
        self,
        meeting: Meeting,
        calendar_id: str,
        body: EventBody,
        *,
        stored: str | None,
        patch_on_conflict: bool = True,
        guard: Guard | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """("created" | "updated", the event). Raises EventExists (when asked), RecordGone,
        Raced (when the guarded event changed)."""
        catalog_id, record_id = meeting.catalog_id, meeting.record_id
        first = generation_of(stored, catalog_id, record_id)
        ref = decode_event_id(stored) if stored else None
        if stored and ref is None and self._carries_marks(meeting, calendar_id, stored):
            # Not one of our ids, but marked as this record's (an earlier id scheme of ours,
            # or an event the operator adopted): it is the record's event.
            try:
                return "updated", self._update(meeting, calendar_id, stored, body)
            except _Missing:
                log.warning("stored_event_missing", event_id=stored, calendar_id=calendar_id)
            except _Refused:
                self._log_replaced(meeting, calendar_id, stored)
        elif stored and (ref is None or (ref.catalog_id, ref.record_id) != (catalog_id, record_id)):
            stored = None  # someone else's event: the record gets its own, its field our id
        for generation in range(first, MAX_GENERATION + 1):
            event_id = event_id_for(catalog_id, record_id, generation)
            try:
                return self._write_id(
                    meeting,
                    calendar_id,
                    event_id,
                    body,
                    stored=stored,
                    conflict=patch_on_conflict,
                    guard=guard,
                )
            except _Refused:
                self._log_replaced(meeting, calendar_id, event_id)
        raise UpstreamError(
            f"Calendar refused every id of record {catalog_id}/{record_id}",
            code="calendar_refused",
        )

    def _write_id(
        self,
        meeting: Meeting,
        calendar_id: str,
        event_id: str,
        body: EventBody,
        *,
        stored: str | None,
        conflict: bool,
        guard: Guard | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Writes under one id; `conflict`: patch when it exists (else raise EventExists).
        A guard on this event makes every write conditional on nobody having written it."""
        if guard is not None and (guard.calendar_id, guard.event_id) != (calendar_id, event_id):
            guard = None  # the record now names another calendar or id: nothing to compare
        if stored == event_id and (guard is None or guard.etag is not None):
            try:
                etag = guard.etag if guard else None
                return "updated", self._update(meeting, calendar_id, event_id, body, etag)
            except _Missing:
                log.warning("stored_event_missing", event_id=event_id, calendar_id=calendar_id)
        try:
            created = self.calendar.insert(
                calendar_id, {**body, "id": event_id}, send_updates=self.send_updates
            )
        except Conflict:
            if guard is not None and guard.etag is None:
                raise Raced from None  # absent when we read the record: created since
            if not conflict:
                raise EventExists from None
        else:
            return "created", created
        try:
            # It exists: a retry, a duplicate webhook, an update first, or a cancelled event.
            etag = guard.etag if guard else None
            return "updated", self._update(meeting, calendar_id, event_id, body, etag)
        except _Missing:
            raise _Refused from None  # the id is taken where we cannot see it

    def owns(self, meeting: Meeting, calendar_id: str, event_id: str) -> bool:
        """Whether `event_id` is the meeting's event there: one of our ids for its record,
        or an event carrying its marks (one GET)."""
        ref = decode_event_id(event_id)
        if ref is not None:
            return (ref.catalog_id, ref.record_id) == (meeting.catalog_id, meeting.record_id)
        return self._carries_marks(meeting, calendar_id, event_id)

    def _carries_marks(self, meeting: Meeting, calendar_id: str, event_id: str) -> bool:
        """Whether the event the record's field names is this record's: anyone who may edit
        a meeting may type any event's id there, and a webhook must not reach that event."""
        try:
            event = self.calendar.get_event(calendar_id, event_id)
        except (NotFound, Gone):
            log.warning("stored_event_missing", event_id=event_id, calendar_id=calendar_id)
            return False
        private = (event.get("extendedProperties") or {}).get("private") or {}
        ours = (
            private.get(PRIVATE_CATALOG_KEY) == meeting.catalog_id
            and private.get(PRIVATE_RECORD_KEY) == meeting.record_id
        )
        if not ours:
            log.warning(
                "stored_event_foreign",
                event_id=event_id,
                calendar_id=calendar_id,
                catalog_id=meeting.catalog_id,
                record_id=meeting.record_id,
                hint="not this meeting's event: it gets its own (adopt BPMN events with "
                "make backfill ADOPT=1)",
            )
        return ours

    def _update(
        self,
        meeting: Meeting,
        calendar_id: str,
        event_id: str,
        body: EventBody,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        send = self.send_updates
        try:
            event = self.calendar.patch(
                calendar_id, event_id, body, send_updates=send, if_match=if_match
            )
        except PreconditionFailed:
            raise Raced from None
        except (NotFound, Gone):
            raise _Missing from None
        except Forbidden:
            if not self._cancelled(calendar_id, event_id):
                raise
            self._check_record(meeting, event_id)
            raise _Refused from None
        if event.get("status") != "cancelled":
            return event
        # Cancelled by our own delete (the record may be gone by now) or by a person.
        self._check_record(meeting, event_id)
        try:
            revived = self.calendar.patch(
                calendar_id, event_id, {"status": "confirmed"}, send_updates=send
            )
        except Forbidden:
            raise _Refused from None
        log.info("event_revived", event_id=event_id, calendar_id=calendar_id)
        return revived

    def _cancelled(self, calendar_id: str, event_id: str) -> bool:
        try:
            event = self.calendar.get_event(calendar_id, event_id)
        except (NotFound, Gone):
            return True
        return event.get("status") == "cancelled"

    def _check_record(self, meeting: Meeting, event_id: str) -> None:
        """Before an event of ours comes back to life: its record must still exist."""
        try:
            self.bpium.get_record(meeting.catalog_id, meeting.record_id)
        except NotFound:
            log.info(
                "revival_skipped",
                reason="record_gone",
                event_id=event_id,
                catalog_id=meeting.catalog_id,
                record_id=meeting.record_id,
            )
            raise RecordGone from None

    def renew_meet(
        self, meeting: Meeting, calendar_id: str, event: dict[str, Any], body: EventBody
    ) -> dict[str, Any]:
        """A meeting that wants Meet but whose event has none (a person removed the link):
        one more patch, with a request id Google has not seen for it (it ignores a reused
        one, so the usual id would never bring the link back)."""
        if "conferenceData" not in body or has_conference(event):
            return event
        renewal = str(event.get("etag") or event.get("updated") or event["id"])
        request = {**body["conferenceData"]["createRequest"]}
        request["requestId"] = meet_request_id(meeting, renewal)
        log.info("meet_renewed", event_id=event["id"], calendar_id=calendar_id)
        return self.calendar.patch(
            calendar_id,
            event["id"],
            {"conferenceData": {"createRequest": request}},
            send_updates=self.send_updates,
        )

    @staticmethod
    def _log_replaced(meeting: Meeting, calendar_id: str, event_id: str) -> None:
        log.warning(
            "event_replaced",
            reason="revival_refused",
            event_id=event_id,
            calendar_id=calendar_id,
            catalog_id=meeting.catalog_id,
            record_id=meeting.record_id,
        )
