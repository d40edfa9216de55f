"""Use case: what changed in Google reaches the Bpium records (never deleting one).

For each changed event of ours: the attendees' answers go to the `responses` field, the
event's status to `status`, and, from incremental changes only, a person's edit of a
FROM_GOOGLE role to that role's field. What the push path last wrote to a record is kept
in Firestore, so a push that is repeated, late, or an echo of our own Calendar write costs
no Bpium write. A cancellation is written only to the record whose event it is (not a copy
we cancelled, not an event its meeting moved away from), after Bpium confirms the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import log
from .domain import calendar_of
from .errors import NotFound
from .event_ids import event_id_for
from .settings import Settings
from .state import StateStore
from .two_way import (
    bpium_value,
    event_status,
    field_of,
    person_edits,
    record_of,
    responses_text,
)


class RecordsPort(Protocol):
    def get_record(self, catalog_id: str, record_id: str) -> dict[str, Any]: ...

    def patch_record(self, catalog_id: str, record_id: str, values: dict[str, Any]) -> None: ...


@dataclass
class Applied:
    events: int = 0  # changed events of ours seen
    written: int = 0  # Bpium records written
    unchanged: int = 0

    def to_json(self) -> dict[str, int]:
        return {"events": self.events, "written": self.written, "unchanged": self.unchanged}


class GoogleToBpium:
    def __init__(self, settings: Settings, bpium: RecordsPort, state: StateStore) -> None:
        self.settings = settings
        self.bpium = bpium
        self.state = state

    def apply(
        self, calendar_id: str, items: Iterable[Mapping[str, Any]], *, incremental: bool
    ) -> Applied:
        """Writes what `items` (events.list items of `calendar_id`) say to their records."""
        catalog = self.settings.meetings_catalog
        ours = [(r, item) for item in items if (r := record_of(item, catalog))]
        done = Applied(events=len(ours))
        mirrors = self.state.mirrors(catalog, sorted({r for r, _ in ours}))
        saved: dict[str, dict[str, Any]] = {}
        try:
            for record_id, event in ours:
                mirror = {**mirrors.get(record_id, {}), **saved.get(record_id, {})}
                if event_status(event) == "cancelled":
                    change = self._cancelled(calendar_id, record_id, event, mirror)
                else:
                    change = self._live(record_id, event, mirror, incremental=incremental)
                if change is None:
                    done.unchanged += 1
                    continue
                writes, new_mirror = change
                if writes and not self._patch(record_id, writes, event, calendar_id):
                    done.unchanged += 1
                    continue
                done.written += bool(writes)
                done.unchanged += not writes
                saved[record_id] = {**saved.get(record_id, {}), **new_mirror}
        finally:
            # Even when Bpium fails midway: what was written is not written again.
            self.state.save_mirrors(catalog, saved)
        return done

    def _live(
        self,
        record_id: str,
        event: Mapping[str, Any],
        mirror: Mapping[str, Any],
        *,
        incremental: bool,
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        f = self.settings.fields
        writes: dict[str, Any] = {}
        new: dict[str, Any] = {"eventId": event.get("id")}
        if f.responses:
            text = responses_text(event)
            # Nobody has answered yet: "" is what the field holds, nothing to write.
            if text != mirror.get("responses", ""):
                writes[f.responses] = new["responses"] = text
        if f.status:
            status = event_status(event)
            if status != mirror.get("status", "confirmed"):
                writes[f.status] = new["status"] = status
        if incremental and self.settings.from_google:
            known = dict(mirror.get("google") or {})
            for role, signed in person_edits(event, self.settings.from_google).items():
                value = bpium_value(event, role, self.settings.time_zone)
                seen = {"value": value, "sig": signed}
                field = field_of(f, role)
                if field and known.get(role) != seen:
                    writes[field] = value
                    known[role] = seen
            if known != (mirror.get("google") or {}):
                new["google"] = known
        return (writes, new) if writes else None

    def _cancelled(
        self, calendar_id: str, record_id: str, event: Mapping[str, Any], mirror: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        f = self.settings.fields
        event_id = str(event.get("id"))
        if not f.status or mirror.get("status") == "cancelled":
            return None
        catalog = self.settings.meetings_catalog
        try:
            record = self.bpium.get_record(catalog, record_id)
        except NotFound:
            return None  # deleted in Bpium: we cancelled its event, and never delete records
        values = record.get("values") or {}
        stored = str(values.get(f.event_id) or "").strip()
        current = stored or event_id_for(catalog, record_id)
        calendar = calendar_of(values, f.calendar) or self.settings.calendar_id
        if current != event_id or calendar != calendar_id:
            log.info(
                "cancellation_not_the_records",
                event_id=event_id,
                calendar_id=calendar_id,
                catalog_id=catalog,
                record_id=record_id,
            )
            return None  # a copy we cancelled, or the calendar the meeting moved out of
        new = {"status": "cancelled", "eventId": event_id}
        if values.get(f.status) == "cancelled":
            return {}, new
        return {f.status: "cancelled"}, new

    def _patch(
        self, record_id: str, writes: dict[str, Any], event: Mapping[str, Any], calendar_id: str
    ) -> bool:
        catalog = self.settings.meetings_catalog
        try:
            self.bpium.patch_record(catalog, record_id, writes)
        except NotFound:
            log.info("record_gone", catalog_id=catalog, record_id=record_id)
            return False
        log.info(
            "record_followed_google",
            catalog_id=catalog,
            record_id=record_id,
            event_id=event.get("id"),
            calendar_id=calendar_id,
            fields=sorted(writes),
        )
        return True

    def heal(
        self, record_id: str, values: Mapping[str, Any], event: Mapping[str, Any]
    ) -> dict[str, Any]:
        """What `reconcile` writes to one record: its event's answers and status, compared
        with the record itself (an empty status reads as confirmed)."""
        f = self.settings.fields
        writes: dict[str, Any] = {}
        if f.responses:
            text = responses_text(event)
            if text != str(values.get(f.responses) or ""):
                writes[f.responses] = text
        if f.status:
            status = event_status(event)
            if status != (str(values.get(f.status) or "") or "confirmed"):
                writes[f.status] = status
        return writes

    def write_heals(self, heals: Mapping[str, tuple[dict[str, Any], Mapping[str, Any]]]) -> int:
        """Writes reconcile's heals (record → (values, its event)); the number written."""
        catalog = self.settings.meetings_catalog
        f = self.settings.fields
        saved: dict[str, dict[str, Any]] = {}
        written = 0
        try:
            for record_id, (writes, event) in heals.items():
                if not self._patch(record_id, writes, event, ""):
                    continue
                written += 1
                mirror: dict[str, Any] = {"eventId": event.get("id")}
                if f.responses and f.responses in writes:
                    mirror["responses"] = writes[f.responses]
                if f.status and f.status in writes:
                    mirror["status"] = writes[f.status]
                saved[record_id] = mirror
        finally:
            self.state.save_mirrors(catalog, saved)
        return written
