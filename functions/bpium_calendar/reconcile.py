"""Use case `reconcile` (and the `backfill` command): make the calendar match Bpium.

For a window of time it reads the meetings that start in it (paged, within Bpium's rate
limit) and all our events (by our private marks, wherever they are in time), then creates
what is missing, patches what differs and cancels events whose record is gone, all through
Calendar batch requests. An event whose record is not among the window's meetings is
checked against Bpium first: the meeting may only have moved out of the window. Outside
the window only existence is checked, a bounded number of records a run (a rotating share
of them when there are more), so Bpium's budget holds however long the history grows. It
heals whatever webhook Bpium dropped, and running it twice changes nothing the second time.

Event ids are derived from the records, and the next webhook of a record fills its
event-id field. With two-way on, it also brings each record's `responses` and `status` up
to date (a push Google lost is healed within the hour). An event a person cancelled in
Google is never revived here: the record's next change in Bpium decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from . import log
from .bpium import IDS_PER_REQUEST
from .catalog_schema import CatalogSchemaCache
from .domain import (
    PRIVATE_CATALOG_KEY,
    PRIVATE_RECORD_KEY,
    EmployeeRef,
    EventBody,
    Meeting,
    bpium_time,
    meet_request_id,
    meeting_from_values,
)
from .errors import AppError, NotFound
from .event_compare import differs, moment_of, overlaps
from .event_ids import decode_event_id, event_id_for, is_event_id
from .event_writes import has_conference
from .from_google import GoogleToBpium
from .gcalendar import BatchOp, BatchOutcome
from .reconcile_apply import PlanApplier
from .settings import Settings
from .sync import MeetingSync
from .two_way import record_of

Progress = Callable[[int, int], None]
# Bpium reads a run may spend on our events outside the window (a hundred records each).
FAR_CHECK_CALLS = 40


class BpiumBulk(Protocol):
    def list_records(
        self,
        catalog_id: str,
        *,
        ids: Sequence[str] = (),
        fields: Sequence[str] = (),
        filters: Any = None,
    ) -> list[dict[str, Any]]: ...

    def emails_by_ref(
        self, refs: Iterable[EmployeeRef], email_field: str
    ) -> dict[EmployeeRef, tuple[str, ...]]: ...

    def records_by_id(self, catalog_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...


class CalendarBulk(Protocol):
    def list_events(
        self, calendar_id: str, params: Mapping[str, Any], *, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def batch(self, ops: Sequence[BatchOp], *, send_updates: str) -> list[BatchOutcome]: ...


@dataclass
class Plan:
    """What a run would do; `ops` in the order they will be sent."""

    window: tuple[datetime, datetime]
    checked: int = 0
    unchanged: int = 0
    invalid: int = 0
    ops: list[BatchOp] = field(default_factory=list)
    records: dict[tuple[str, str], str] = field(default_factory=dict)  # (calendar, event) → record
    meetings: dict[tuple[str, str], Meeting] = field(default_factory=dict)
    # Cancellations of events that have ended: nobody is mailed about a past meeting.
    quiet: set[tuple[str, str]] = field(default_factory=set)
    far_checked: int = 0  # records outside the window checked this run
    far_total: int = 0  # of so many
    values: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # record → its values
    # The record's event as Google has it: what `responses` and `status` are healed from.
    events: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    kept_cancelled: int = 0  # events a person cancelled: not revived

    def count(self, method: str) -> int:
        return sum(1 for op in self.ops if op.method == method)

    def summary(self) -> dict[str, Any]:
        start, end = self.window
        return {
            "window": {"from": start.isoformat(), "to": end.isoformat()},
            "checked": self.checked,
            "toCreate": self.count("insert"),
            "toUpdate": self.count("patch"),
            "toCancel": self.count("delete"),
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "farChecked": self.far_checked,
            "farTotal": self.far_total,
            "keptCancelled": self.kept_cancelled,
        }


class Reconciler:
    def __init__(
        self,
        bpium: BpiumBulk,
        calendar: CalendarBulk,
        sync: MeetingSync,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        back: GoogleToBpium | None = None,
    ) -> None:
        self.settings: Settings = sync.settings
        self.schema: CatalogSchemaCache = sync.schema
        self.bpium = bpium
        self.calendar = calendar
        self.sync = sync
        self.clock = clock
        self.back = back

    def default_window(self) -> tuple[datetime, datetime]:
        now = self.clock()
        return (
            now - timedelta(days=self.settings.reconcile_lookback_days),
            now + timedelta(days=self.settings.reconcile_lookahead_days),
        )

    def run(self) -> dict[str, Any]:
        """The scheduled job: plan and apply over the settings' window."""
        plan = self.plan(*self.default_window())
        counts = self.apply(plan)
        log.info("reconciled", **counts)
        return counts

    # -- planning: reads only -------------------------------------------------------------

    def plan(self, start: datetime, end: datetime) -> Plan:
        fields, catalog = self.settings.fields, self.settings.meetings_catalog
        plan = Plan((start, end))
        window = {fields.start: {"at": bpium_time(start), "to": bpium_time(end)}}
        records = {str(r["id"]): r for r in self.bpium.list_records(catalog, filters=window)}
        meetings = self._meetings(records.values(), plan)
        calendars = {m.calendar_id or self.settings.calendar_id for m in meetings.values()}
        calendars.add(self.settings.calendar_id)
        # When meetings can name their calendar, a copy may be left in any we write to.
        calendars.update(self.sync.canceller.other_calendars())
        events: dict[tuple[str, str], dict[str, Any]] = {}
        far: dict[tuple[str, str], dict[str, Any]] = {}
        for calendar_id in sorted(calendars):
            for event in self._our_events(calendar_id):
                key = (calendar_id, event["id"])
                (events if overlaps(event, start, end) else far)[key] = event
        # Events of records that are not among the window's meetings: moved, or gone.
        strays: dict[tuple[str, str], str] = {}
        for key, event in events.items():
            record_id = self._record_of(event)
            if record_id and record_id not in meetings:
                strays[key] = record_id
        stray_ids = sorted(set(strays.values()))
        moved = self.bpium.records_by_id(catalog, stray_ids) if stray_ids else {}
        meetings.update(self._meetings(moved.values(), plan))
        gone_far = self._gone_far(far, meetings, plan)
        known = {**events, **far}  # a window meeting's event may still be outside it
        bodies = self._bodies(meetings)
        targets = self._place(meetings, known, bodies, plan)
        gone = {key: r for key, r in strays.items() if r not in meetings and r not in moved}
        # Ours, for a living record, but not its event: a copy left in a calendar the meeting
        # moved out of, or an earlier id of it, wherever it is in time.
        copies = {
            key: record
            for key, event in known.items()
            if (record := self._record_of(event)) in meetings and key not in targets
        }
        now = self.clock()
        for key, record_id in {**gone, **gone_far, **copies}.items():
            plan.ops.append(BatchOp("delete", *key))
            plan.records[key] = record_id
            ends = moment_of(known[key].get("end"))
            if ends is not None and ends <= now:
                plan.quiet.add(key)
        return plan

    def _place(
        self,
        meetings: Mapping[str, Meeting],
        known: Mapping[tuple[str, str], Mapping[str, Any]],
        bodies: Mapping[str, EventBody],
        plan: Plan,
    ) -> set[tuple[str, str]]:
        """Plans each meeting's event: create, patch or leave; answers where they are."""
        missing: list[tuple[str, tuple[str, str]]] = []
        targets: set[tuple[str, str]] = set()
        for record_id, meeting in sorted(meetings.items()):
            calendar_id = meeting.calendar_id or self.settings.calendar_id
            event_id = _target(meeting, known.get((calendar_id, meeting.stored_event_id or "")))
            key = (calendar_id, event_id)
            targets.add(key)
            plan.checked += 1
            plan.records[key] = record_id
            plan.meetings[key] = meeting
            current = known.get(key)
            body = bodies[record_id]
            if current is not None and meeting.meet and not has_conference(current):
                # A person removed the Meet link: the usual request id would be ignored.
                body = self._with_meet_renewal(body, meeting, current)
            if current is None:
                missing.append((record_id, key))
                continue
            plan.events[record_id] = current
            if differs(current, body):
                plan.ops.append(BatchOp("patch", calendar_id, event_id, body))
            else:
                plan.unchanged += 1
        self._missing(missing, bodies, plan)
        return targets

    def _missing(
        self,
        missing: Sequence[tuple[str, tuple[str, str]]],
        bodies: Mapping[str, EventBody],
        plan: Plan,
    ) -> None:
        """Meetings whose event is not among our live ones: absent (a webhook dropped: it
        is created), or cancelled by a person in Google (kept so: known from the push path
        or an earlier run, else found when the insert meets it)."""
        if self.back is not None and missing:
            # Cancelled by a person, as the push path or an earlier run found: no lookup.
            known = self.back.state.mirrors(
                self.settings.meetings_catalog, [record_id for record_id, _ in missing]
            )
            kept = [
                (record_id, key)
                for record_id, key in missing
                if (mirror := known.get(record_id))
                and mirror.get("status") == "cancelled"
                and mirror.get("eventId") == key[1]
            ]
            for record_id, key in kept:
                plan.kept_cancelled += 1
                plan.events[record_id] = {"id": key[1], "status": "cancelled"}
            missing = [item for item in missing if item not in kept]
        for record_id, key in missing:
            plan.ops.append(BatchOp("insert", *key, bodies[record_id]))

    def _gone_far(
        self,
        far: Mapping[tuple[str, str], Mapping[str, Any]],
        meetings: Mapping[str, Meeting],
        plan: Plan,
    ) -> dict[tuple[str, str], str]:
        """Our events outside the window whose record Bpium no longer has. At most
        FAR_CHECK_CALLS reads a run: with more records than that covers, a share of them
        that rotates by the hour, so each is checked within a few runs."""
        records = {key: r for key, e in far.items() if (r := self._record_of(e))}
        ids = sorted({r for r in records.values() if r not in meetings})
        plan.far_total = len(ids)
        capacity = FAR_CHECK_CALLS * IDS_PER_REQUEST
        if len(ids) > capacity:
            shares = -(-len(ids) // capacity)
            turn = int(self.clock().timestamp() // 3600) % shares
            ids = [i for i in ids if _share(i, shares) == turn]
        plan.far_checked = len(ids)
        alive = self.bpium.records_by_id(self.settings.meetings_catalog, ids) if ids else {}
        checked = set(ids)
        return {k: r for k, r in records.items() if r in checked and r not in alive}

    @staticmethod
    def _with_meet_renewal(
        body: EventBody, meeting: Meeting, event: Mapping[str, Any]
    ) -> EventBody:
        renewal = str(event.get("etag") or event.get("updated") or event.get("id"))
        request = {**body["conferenceData"]["createRequest"]}
        request["requestId"] = meet_request_id(meeting, renewal)
        return {**body, "conferenceData": {"createRequest": request}}

    def _record_of(self, event: Mapping[str, Any]) -> str | None:
        return record_of(event, self.settings.meetings_catalog)

    def _our_events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Every live event carrying our catalog's mark, wherever it is in time."""
        params = {
            "privateExtendedProperty": f"{PRIVATE_CATALOG_KEY}={self.settings.meetings_catalog}",
        }
        try:
            items, _ = self.calendar.list_events(calendar_id, params, limit=None)
        except NotFound:
            # A calendar a meeting names that the account cannot see: its writes fail and
            # are counted; the other calendars are still reconciled.
            log.warning("calendar_missing", calendar_id=calendar_id)
            return []
        return [e for e in items if e.get("status") != "cancelled"]

    def _meetings(self, records: Iterable[Mapping[str, Any]], plan: Plan) -> dict[str, Meeting]:
        schema, catalog = self.schema.get(), self.settings.meetings_catalog
        meetings: dict[str, Meeting] = {}
        for record in records:
            record_id = str(record.get("id"))
            plan.values[record_id] = record.get("values") or {}
            try:
                meetings[record_id] = meeting_from_values(
                    catalog, record_id, record.get("values") or {}, schema, self.sync.options
                )
            except AppError as exc:
                plan.invalid += 1
                log.warning(
                    "meeting_invalid",
                    catalog_id=catalog,
                    record_id=record_id,
                    error=exc.message,
                    field=exc.details.get("field"),
                )
        return meetings

    def _bodies(self, meetings: Mapping[str, Meeting]) -> dict[str, EventBody]:
        refs = [ref for m in meetings.values() for ref in m.employees]
        emails = self.bpium.emails_by_ref(refs, self.settings.employee_email_field) if refs else {}
        bodies: dict[str, EventBody] = {}
        for record_id, meeting in meetings.items():
            found = [e for ref in meeting.employees for e in emails.get(ref, ())]
            bodies[record_id], _ = self.sync.body(meeting, found)
        return bodies

    # -- applying: writes (reconcile_apply) ----------------------------------------------

    def apply(self, plan: Plan, progress: Progress | None = None) -> dict[str, Any]:
        return PlanApplier(self.settings, self.calendar, self.back).apply(plan, progress)


def _target(meeting: Meeting, stored_event: Mapping[str, Any] | None) -> str:
    """The id the meeting's event has: the stored one when it is the record's (one of our
    ids for it, or an event carrying its marks), else our first. A record's field is anyone's
    to edit: another event's id typed there is never reached."""
    stored = meeting.stored_event_id
    ref = decode_event_id(stored) if stored and is_event_id(stored) else None
    if ref is not None and (ref.catalog_id, ref.record_id) == (
        meeting.catalog_id,
        meeting.record_id,
    ):
        return str(stored)
    if stored and stored_event is not None:
        private = (stored_event.get("extendedProperties") or {}).get("private") or {}
        if private.get(PRIVATE_RECORD_KEY) == meeting.record_id:
            return stored  # our marks (the catalog was checked when listing)
    return event_id_for(meeting.catalog_id, meeting.record_id)


def _share(record_id: str, shares: int) -> int:
    """A record's share out of `shares`, the same in every run (not Python's salted hash)."""
    digest = hashlib.sha256(record_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shares
