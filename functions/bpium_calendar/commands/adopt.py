"""`make backfill ADOPT=1`: adopt the events Bpium's old BPMN scenario made.

Those events carry none of our marks, so no webhook and no `reconcile` ever touches them
(anyone who may edit a meeting could type any event's id into its field). An operator
adopts them once: for each meeting of the window whose event-id field names an unmarked
event, the event is marked as the meeting's when its title and start match the meeting's,
without mailing anyone. Those that do not match are listed with the reason and left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain import PRIVATE_CATALOG_KEY, PRIVATE_RECORD_KEY, bpium_time, meeting_from_values
from ..errors import AppError, Gone, NotFound
from ..event_compare import instant_of
from ..event_ids import decode_event_id, is_event_id
from ..services import Services


@dataclass(frozen=True)
class Candidate:
    record_id: str
    calendar_id: str
    event_id: str
    title: str
    refusal: str | None = None  # why it is not adopted; None: it will be


def candidates(services: Services, start: datetime, end: datetime) -> list[Candidate]:
    """The window's meetings whose field names an event that is not (yet) ours."""
    settings, sync = services.settings, services.meeting_sync
    catalog, fields = settings.meetings_catalog, settings.fields
    window = {fields.start: {"at": bpium_time(start), "to": bpium_time(end)}}
    found: list[Candidate] = []
    for record in services.bpium.list_records(catalog, filters=window):
        record_id = str(record.get("id"))
        try:
            meeting = meeting_from_values(
                catalog, record_id, record.get("values") or {}, sync.schema.get(), sync.options
            )
        except AppError:
            continue  # reconcile reports invalid meetings
        stored = meeting.stored_event_id
        if not stored or not is_event_id(stored) or decode_event_id(stored) is not None:
            continue  # no id, or one of ours
        calendar_id = meeting.calendar_id or settings.calendar_id
        body, _ = sync.body(meeting, [])
        title = str(body.get("summary", ""))
        found.append(
            Candidate(record_id, calendar_id, stored, title, _refusal(services, meeting, body))
        )
    return found


def _refusal(services: Services, meeting: Any, body: Any) -> str | None:
    calendar_id = meeting.calendar_id or services.settings.calendar_id
    try:
        event = services.calendar.get_event(calendar_id, meeting.stored_event_id)
    except (NotFound, Gone):
        return "no such event in the calendar"
    if event.get("status") == "cancelled":
        return "the event is cancelled"
    private = (event.get("extendedProperties") or {}).get("private") or {}
    if private.get(PRIVATE_RECORD_KEY) or private.get(PRIVATE_CATALOG_KEY):
        mine = (private.get(PRIVATE_CATALOG_KEY), private.get(PRIVATE_RECORD_KEY)) == (
            meeting.catalog_id,
            meeting.record_id,
        )
        return "already adopted" if mine else "marked as another record's event"
    if (event.get("summary") or "").strip() != body.get("summary"):
        return f"title differs (the event's is {str(event.get('summary'))[:60]!r})"
    if instant_of(event.get("start")) != instant_of(body.get("start")):
        return "start differs"
    return None


def adopt(
    services: Services,
    start: datetime,
    end: datetime,
    *,
    dry_run: bool,
    say: Callable[[str], None],
) -> int:
    """Lists, and unless `dry_run` adopts; the number it could not adopt (0: all done)."""
    found = candidates(services, start, end)
    adoptable = [c for c in found if c.refusal is None]
    refused = [c for c in found if c.refusal not in (None, "already adopted")]
    verb = "would adopt" if dry_run else "adopted"
    for candidate in adoptable:
        if not dry_run:
            marks = {
                PRIVATE_CATALOG_KEY: services.settings.meetings_catalog,
                PRIVATE_RECORD_KEY: candidate.record_id,
            }
            services.calendar.patch(
                candidate.calendar_id,
                candidate.event_id,
                {"extendedProperties": {"private": marks}},
                send_updates="none",  # marking changes nothing an attendee sees
            )
        say(f"  {verb} record {candidate.record_id}: event {candidate.event_id} {candidate.title}")
    for candidate in refused:
        say(
            f"  not adopted: record {candidate.record_id}, event {candidate.event_id}: "
            f"{candidate.refusal}"
        )
    say(f"{verb}: {len(adoptable)}, not adopted: {len(refused)}")
    return len(refused)
