"""Cancelling a deleted meeting's events, wherever we put them."""

from __future__ import annotations

from typing import Any, Protocol

from . import log
from .errors import Gone, NotFound
from .event_ids import event_id_for
from .jobs import SyncJob, SyncResult
from .settings import Settings


class CancelCalendar(Protocol):
    def cancel(self, calendar_id: str, event_id: str, *, send_updates: str) -> None: ...

    def calendars(self) -> list[dict[str, Any]]: ...

    def find_by_record(
        self, calendar_id: str, catalog_id: str, record_id: str
    ) -> list[dict[str, Any]]: ...


class EventCanceller:
    """Cancels a record's events: ours by id, and the live ones carrying its marks."""

    def __init__(self, settings: Settings, calendar: CancelCalendar) -> None:
        self.settings = settings
        self.calendar = calendar

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

    def cancel_in(self, calendar_id: str, event_id: str) -> str:
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
            state = self.cancel_in(calendar_id, derived)
            if state == "cancelled":
                cancelled.append((calendar_id, derived))
                continue  # our first event was live: there is no later one
            repeated = repeated or state == "gone"
            for event in self.calendar.find_by_record(calendar_id, catalog_id, record_id):
                if self.cancel_in(calendar_id, event["id"]) == "cancelled":
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
