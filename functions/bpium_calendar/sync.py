"""Use cases: make the calendar follow a meeting's webhook (upsert or cancel)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from . import log
from .domain import (
    Attendees,
    CatalogSchema,
    EventBody,
    MappingOptions,
    Meeting,
    attendees,
    event_body,
    meeting_from_values,
    parse_catalog,
)
from .employees import EmployeeEmails
from .errors import ConfigError, Gone, NotFound, UpstreamUnavailable
from .event_ids import event_id_for, is_event_id
from .event_writes import EventCalendar, EventExists, EventWriter, Guard, Raced, RecordGone
from .jobs import SyncJob
from .log import clip
from .settings import Settings


class BpiumPort(Protocol):
    def get_catalog(self, catalog_id: str) -> dict[str, Any]: ...

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


@dataclass(frozen=True)
class SyncResult:
    status: str  # created, updated, cancelled, ignored
    event_id: str | None = None
    calendar_id: str | None = None
    reason: str | None = None
    dropped_attendees: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": self.status}
        if self.event_id:
            answer["eventId"] = self.event_id
        if self.calendar_id:
            answer["calendarId"] = self.calendar_id
        if self.reason:
            answer["reason"] = self.reason
        if self.dropped_attendees:
            # Cut like a log line: the list is anyone's to fill.
            answer["droppedAttendees"] = [clip(e, 200) for e in self.dropped_attendees[:20]]
            answer["droppedCount"] = len(self.dropped_attendees)
        return answer


class _EventExists(Exception):
    """Insert found the event there already (a signal inside this module, never raised out)."""


T = TypeVar("T")
# Writes by others between our read and our write, before we let the queue retry later.
MAX_RACES = 4


@dataclass
class _Turn:
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: int = 0
    done: int = 0
    present: int = 0


class RecordGate:
    """One sync per record at a time in this instance, skipping those already covered.

    Each request takes a ticket on arrival. The one holding the record's lock notes how many
    had arrived when it began; once it succeeds, every request with a ticket up to that
    number is covered by it (it read the record after they arrived) and returns at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[tuple[str, str], _Turn] = {}

    def run(self, key: tuple[str, str], work: Callable[[], T]) -> T | None:
        with self._lock:
            turn = self._turns.setdefault(key, _Turn())
            turn.arrived += 1
            turn.present += 1
            ticket = turn.arrived
        try:
            with turn.lock:
                with self._lock:
                    if turn.done >= ticket:
                        return None
                    began = turn.arrived
                result = work()
                with self._lock:
                    turn.done = max(turn.done, began)
                return result
        finally:
            with self._lock:
                turn.present -= 1
                if not turn.present:
                    del self._turns[key]  # nobody waits: forget the record


class CatalogSchemaCache:
    """The Meetings catalog's field config, read once per instance (one Bpium call)."""

    def __init__(self, bpium: BpiumPort, settings: Settings) -> None:
        self._bpium = bpium
        self._settings = settings
        self._schema: CatalogSchema | None = None
        self._lock = threading.Lock()

    def get(self) -> CatalogSchema:
        with self._lock:
            if self._schema is None:
                catalog_id = self._settings.meetings_catalog
                schema = parse_catalog(self._bpium.get_catalog(catalog_id))
                fields = self._settings.fields
                configured = {r: getattr(fields, r) for r in fields.__dataclass_fields__}
                missing = sorted(
                    f"{r}={f}" for r, f in configured.items() if f and f not in schema.fields
                )
                if missing:
                    raise ConfigError(
                        f"BPIUM_FIELDS names fields catalog {catalog_id} does not have: "
                        + ", ".join(missing),
                        problems=missing,
                    )
                self._schema = schema
            return self._schema


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
            return self.cancel(job)
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
            self._cancel_in(calendar_id, event["id"])
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
        return event_body(meeting, people.emails, zone, meet_renewal=meet_renewal), people

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

    def other_calendars(self) -> list[str]:
        """When meetings can name their calendar: every other calendar we may write to."""
        if not self.settings.fields.calendar:
            return []
        default = self.settings.calendar_id
        return [
            entry["id"]
            for entry in self.calendar.calendars()
            if entry.get("accessRole") in ("owner", "writer")
            and entry["id"] != default
            and not (default == "primary" and entry.get("primary"))
        ]

    def _cancel_in(self, calendar_id: str, event_id: str) -> str:
        """ "cancelled" (now), "gone" (it already was) or "absent" (no such event there)."""
        try:
            self.calendar.cancel(calendar_id, event_id, send_updates=self.settings.send_updates)
        except Gone:
            return "gone"
        except NotFound:
            return "absent"
        return "cancelled"

    def cancel(self, job: SyncJob) -> SyncResult:
        """Cancels the record's events wherever we put them: ours by id, and the live ones
        carrying our marks (a later generation of our id, an earlier id scheme, a copy left
        in another calendar); every calendar we write to when meetings can name theirs."""
        catalog_id, record_id = job.catalog_id, job.record_id
        derived = event_id_for(catalog_id, record_id)
        default = self.settings.calendar_id
        cancelled: list[tuple[str, str]] = []
        repeated = False
        for calendar_id in [default, *self.other_calendars()]:
            state = self._cancel_in(calendar_id, derived)
            if state == "cancelled":
                cancelled.append((calendar_id, derived))
                continue  # our first event was live: there is no later one
            repeated = repeated or state == "gone"
            for event in self.calendar.find_by_record(calendar_id, catalog_id, record_id):
                if self._cancel_in(calendar_id, event["id"]) == "cancelled":
                    cancelled.append((calendar_id, event["id"]))
        if not cancelled and repeated:
            cancelled = [(default, derived)]  # a repeated delivery: it was cancelled already
        if not cancelled:
            log.info("webhook_ignored", reason="no_event", **job.log_fields())
            return SyncResult("ignored", calendar_id=default, reason="no_event")
        log.info(
            "event_cancelled",
            event_ids=[event_id for _, event_id in cancelled],
            calendar_ids=sorted({calendar_id for calendar_id, _ in cancelled}),
            catalog_id=catalog_id,
            record_id=record_id,
        )
        return SyncResult("cancelled", cancelled[0][1], cancelled[0][0])
