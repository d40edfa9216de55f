"""Use cases: make the calendar follow a meeting's webhook (upsert or cancel)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from . import log
from .cancellation import EventCanceller
from .catalog_schema import CatalogSchemaCache
from .domain import (
    PRIVATE_SIGNATURE_KEY,
    Attendees,
    EventBody,
    MappingOptions,
    Meeting,
    attendees,
    event_body,
    meeting_from_values,
)
from .employees import EmployeeEmails
from .errors import Gone, NotFound, UpstreamUnavailable
from .event_ids import event_id_for, is_event_id
from .event_writes import EventCalendar, EventExists, EventWriter, Guard, Raced, RecordGone
from .jobs import SyncJob, SyncResult
from .record_gate import RecordGate
from .settings import Settings
from .two_way import signature

# Writes by others between our read and our write, before we let the queue retry later.
MAX_RACES = 4


class BpiumPort(Protocol):
    def patch_record(self, catalog_id: str, record_id: str, values: dict[str, Any]) -> None: ...

    def get_record(self, catalog_id: str, record_id: str) -> dict[str, Any]: ...


class CalendarPort(EventCalendar, Protocol):
    def cancel(self, calendar_id: str, event_id: str, *, send_updates: str) -> None: ...

    def move(
        self, calendar_id: str, event_id: str, destination: str, *, send_updates: str
    ) -> dict[str, Any]: ...

    def calendars(self) -> list[dict[str, Any]]: ...

    def find_by_record(
        self, calendar_id: str, catalog_id: str, record_id: str
    ) -> list[dict[str, Any]]: ...


class _EventExists(Exception):
    """Insert found the event there already (a signal inside this module, never raised out)."""


class MeetingSync:
    """Upserts or cancels the event of one meeting record."""

    def __init__(
        self,
        settings: Settings,
        bpium: BpiumPort,
        calendar: CalendarPort,
        schema: CatalogSchemaCache,
        emails: EmployeeEmails,
    ) -> None:
        self.settings = settings
        self.bpium = bpium
        self.calendar = calendar
        self.schema = schema
        self.emails = emails
        self.gate = RecordGate()
        self.canceller = EventCanceller(settings, calendar)
        self.writer = EventWriter(calendar, bpium, settings.send_updates)
        self.options = MappingOptions(
            fields=settings.fields,
            time_zone=settings.time_zone,
            default_duration_minutes=settings.default_duration_minutes,
            default_reminders=settings.default_reminders,
            reminder_method=settings.reminder_method,
            employees_catalog=settings.employees_catalog,
        )

    def run(self, job: SyncJob) -> SyncResult:
        """Does one job: what a webhook asked for, in the worker or inline."""
        if job.event == "record.deleted":
            return self.canceller.cancel(job)
        if job.event == "record.created" and job.values is not None:
            try:
                # The common case costs no read of the record: its values came with the hook.
                return self.upsert(
                    job.catalog_id, job.record_id, job.values, patch_on_conflict=False
                )
            except _EventExists:
                pass  # a repeat, or an update got there first: sync from the record as it is
        return self.sync_latest(
            job.catalog_id,
            job.record_id,
            previous_calendar=job.previous_calendar,
            calendar_hint=job.calendar,
            event_hint=job.event_id,
        )

    def sync_latest(
        self,
        catalog_id: str,
        record_id: str,
        *,
        previous_calendar: str | None = None,
        calendar_hint: str | None = None,
        event_hint: str | None = None,
    ) -> SyncResult:
        """Syncs the record as Bpium holds it now, one request per record at a time.

        Webhooks may arrive late, twice or out of order, and many at once: reading the record
        (instead of trusting the hook's values) makes the last sync carry the last state, and
        a request that waited while another one read the record after it arrived has nothing
        left to do. Across instances, the event's etag, taken before the read, is the write's
        precondition (If-Match): a write by anyone since makes us read the record again, so
        an older state never lands last.
        """

        def work() -> SyncResult:
            for _ in range(MAX_RACES):
                guard = self._guard(catalog_id, record_id, calendar_hint, event_hint)
                try:
                    record = self.bpium.get_record(catalog_id, record_id)
                except NotFound:
                    log.info("webhook_ignored", reason="record_gone", record_id=record_id)
                    return SyncResult("ignored", reason="record_gone")
                try:
                    return self.upsert(
                        catalog_id,
                        record_id,
                        record.get("values") or {},
                        previous_calendar=previous_calendar,
                        guard=guard,
                    )
                except Raced:
                    log.info(
                        "event_raced",
                        event_id=guard.event_id,
                        calendar_id=guard.calendar_id,
                        catalog_id=catalog_id,
                        record_id=record_id,
                    )
            raise UpstreamUnavailable(
                f"the event of record {catalog_id}/{record_id} kept changing while we wrote it",
                code="event_contended",
            )

        result = self.gate.run((catalog_id, record_id), work)
        return result or SyncResult("ignored", reason="already_synced")

    def _guard(
        self, catalog_id: str, record_id: str, calendar_hint: str | None, event_hint: str | None
    ) -> Guard:
        """The event as it is before we read the record: its etag, or None if absent."""
        calendar_id = calendar_hint or self.settings.calendar_id
        event_id = event_hint or event_id_for(catalog_id, record_id)
        try:
            etag = self.calendar.get_event(calendar_id, event_id).get("etag")
        except (NotFound, Gone):
            etag = None
        return Guard(calendar_id, event_id, str(etag) if etag else None)

    def upsert(
        self,
        catalog_id: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        previous_calendar: str | None = None,
        patch_on_conflict: bool = True,
        guard: Guard | None = None,
    ) -> SyncResult:
        """Makes the record's event match its values and writes the event id back."""
        meeting = meeting_from_values(
            catalog_id, record_id, values, self.schema.get(), self.options
        )
        return self.sync_meeting(
            meeting,
            previous_calendar=previous_calendar,
            patch_on_conflict=patch_on_conflict,
            guard=guard,
        )

    def sync_meeting(
        self,
        meeting: Meeting,
        *,
        previous_calendar: str | None = None,
        patch_on_conflict: bool = True,
        guard: Guard | None = None,
    ) -> SyncResult:
        """Makes the meeting's event match it and writes the event id back."""
        catalog_id, record_id = meeting.catalog_id, meeting.record_id
        employee_emails = self.emails.emails(meeting.employees) if meeting.employees else []
        body, people = self.body(meeting, employee_emails)
        if people.dropped:
            log.warning(
                "attendees_dropped",
                catalog_id=catalog_id,
                record_id=record_id,
                dropped=list(people.dropped),
                dropped_count=len(people.dropped),
            )
        calendar_id = meeting.calendar_id or self.settings.calendar_id
        stored = meeting.stored_event_id
        if stored and not is_event_id(stored):
            log.warning(
                "stored_event_id_invalid",
                catalog_id=catalog_id,
                record_id=record_id,
                stored=stored[:100],
            )
            stored = None
        if previous_calendar and previous_calendar != calendar_id:
            moving = event_id_for(catalog_id, record_id)
            if stored and self.writer.owns(meeting, previous_calendar, stored):
                moving = stored  # never an event the field merely names: it could be anyone's
            self._move(previous_calendar, moving, calendar_id)
        try:
            action, event = self.writer.write(
                meeting,
                calendar_id,
                body,
                stored=stored,
                patch_on_conflict=patch_on_conflict,
                guard=guard,
            )
        except EventExists:
            raise _EventExists from None
        except RecordGone:
            return SyncResult("ignored", calendar_id=calendar_id, reason="record_gone")
        event = self.writer.renew_meet(meeting, calendar_id, event, body)
        if not self._write_back(meeting, event):
            # Deleted while we wrote (its delete webhook may have found no event yet): the
            # event we just made or changed must not outlive it.
            self.canceller.cancel_in(calendar_id, event["id"])
            log.info(
                "event_cancelled",
                reason="record_gone",
                event_ids=[event["id"]],
                calendar_id=calendar_id,
                catalog_id=catalog_id,
                record_id=record_id,
            )
            return SyncResult("ignored", calendar_id=calendar_id, reason="record_gone")
        log.info(
            "event_upserted",
            action=action,
            event_id=event["id"],
            calendar_id=calendar_id,
            catalog_id=catalog_id,
            record_id=record_id,
            attendees=len(people.emails),
            reminders=len(meeting.reminders),
            meet=meeting.meet,
        )
        return SyncResult(action, event["id"], calendar_id, dropped_attendees=people.dropped)

    def body(
        self, meeting: Meeting, employee_emails: Sequence[str], *, meet_renewal: str = ""
    ) -> tuple[EventBody, Attendees]:
        """The event fields for a meeting whose employees have these e-mails."""
        people = attendees([*employee_emails, *meeting.guests])
        zone = self.settings.time_zone
        body = event_body(meeting, people.emails, zone, meet_renewal=meet_renewal)
        # What we wrote, per role: a later difference is a person's edit in Google.
        body["extendedProperties"]["private"][PRIVATE_SIGNATURE_KEY] = signature(body)
        return body, people

    def _move(self, source: str, event_id: str, destination: str) -> None:
        """The meeting's calendar field changed: its event follows, keeping its id."""
        try:
            self.calendar.move(
                source, event_id, destination, send_updates=self.settings.send_updates
            )
            log.info("event_moved", event_id=event_id, source=source, destination=destination)
        except (NotFound, Gone):
            log.warning("event_to_move_missing", event_id=event_id, source=source)

    def _write_back(self, meeting: Meeting, event: Mapping[str, Any]) -> bool:
        """Writes the event id (and link) into the record, unless it already holds them;
        False when Bpium says the record is gone."""
        fields = self.settings.fields
        values: dict[str, Any] = {}
        if meeting.stored_event_id != event["id"]:
            values[fields.event_id] = event["id"]
        link = event.get("htmlLink")
        if fields.link and link and meeting.stored_link != link:
            values[fields.link] = link
        if not values:
            return True
        try:
            self.bpium.patch_record(meeting.catalog_id, meeting.record_id, values)
        except NotFound:
            log.warning(
                "write_back_record_gone",
                catalog_id=meeting.catalog_id,
                record_id=meeting.record_id,
            )
            return False
        return True
