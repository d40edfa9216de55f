"""Sync jobs: what a webhook hands the worker through Cloud Tasks (pure, standard library).

A webhook decides at once, with no call, whether it needs a sync at all (`triage`); the rest
becomes a `SyncJob`, the body of one task. The task's id is a hash of the hook message's
ids, so a second delivery of the same message collides with the first task's name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .domain import Webhook, calendar_of, update_is_noop
from .errors import AppError, BadRequest
from .event_ids import decode_event_id, is_event_id
from .log import clip
from .settings import Settings

EVENTS = ("record.created", "record.updated", "record.deleted")
# A task holds at most 100 KB (CloudTasksClient.create_task's reference; the quotas page
# says 1 MB: the harsher figure holds). A body is sent base64 (4/3 larger), so a created
# hook's values travel only when under 64 KB; otherwise the worker reads the record, as it
# does for updates.
MAX_VALUES_BYTES = 64 * 1024
JOB_VERSION = 1


@dataclass(frozen=True)
class SyncJob:
    """One record to bring the calendar in line with."""

    event: str  # the hook event: record.created, record.updated or record.deleted
    catalog_id: str
    record_id: str
    # record.created: the hook's values (the common case needs no read); None: read it.
    values: Mapping[str, Any] | None = None
    # record.updated: the calendar before and after the change, when meetings name theirs.
    previous_calendar: str | None = None
    calendar: str | None = None
    # Our event id the record held at the hook's time, when it is one of ours for it.
    event_id: str | None = None
    hook_id: str = ""
    sequence_id: str = ""

    def task_id(self) -> str | None:
        """A Cloud Tasks task id (hashed, as Google advises over sequential names) that is
        the same for every delivery of one hook message; None without the ids."""
        if not self.hook_id or not self.sequence_id:
            return None
        key = "\n".join((self.hook_id, self.sequence_id, self.event, self.record_id))
        return "hook-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": JOB_VERSION,
            "event": self.event,
            "catalogId": self.catalog_id,
            "recordId": self.record_id,
            "hookId": self.hook_id,
            "sequenceId": self.sequence_id,
        }
        optional = {
            "values": None if self.values is None else dict(self.values),
            "previousCalendar": self.previous_calendar,
            "calendar": self.calendar,
            "eventId": self.event_id,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        return data

    @classmethod
    def from_json(cls, data: Any) -> SyncJob:
        """Reads a task body; BadRequest names what is wrong (only our webhooks write it)."""
        if not isinstance(data, dict):
            raise BadRequest("a task body is a JSON object", field="body")
        if data.get("v") != JOB_VERSION:
            raise BadRequest(f"unknown task version {data.get('v')!r}", field="v")
        if data.get("event") not in EVENTS:
            raise BadRequest("event must be a record hook event", field="event")
        texts: dict[str, str] = {}
        for key in ("catalogId", "recordId", "hookId", "sequenceId"):
            value = data.get(key, "")
            if not isinstance(value, str) or (key in ("catalogId", "recordId") and not value):
                raise BadRequest(f"{key} must be a non-empty string", field=key)
            texts[key] = value
        values = data.get("values")
        if values is not None and not isinstance(values, dict):
            raise BadRequest("values must be an object", field="values")
        optional: dict[str, str | None] = {}
        for key in ("previousCalendar", "calendar", "eventId"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"{key} must be a string", field=key)
            optional[key] = value
        return cls(
            event=data["event"],
            catalog_id=texts["catalogId"],
            record_id=texts["recordId"],
            values=values,
            previous_calendar=optional["previousCalendar"],
            calendar=optional["calendar"],
            event_id=optional["eventId"],
            hook_id=texts["hookId"],
            sequence_id=texts["sequenceId"],
        )

    def log_fields(self) -> dict[str, str]:
        return {
            "catalog_id": self.catalog_id,
            "record_id": self.record_id,
            "hook_event": self.event,
            "hook_id": self.hook_id,
            "sequence_id": self.sequence_id,
        }


@dataclass(frozen=True)
class SyncResult:
    """What a job did: the webhook's answer when it syncs inline, the worker's otherwise."""

    status: str  # created, updated, cancelled, ignored (refused: the worker's, for good)
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


def triage(webhook: Webhook, expected_event: str, settings: Settings) -> str | None:
    """Why a webhook needs no sync (a reason code), or None: decided with no call."""
    if webhook.catalog_id != settings.meetings_catalog:
        return "other_catalog"
    if webhook.event != expected_event:
        return "unexpected_event"
    if webhook.event == "record.updated":
        return update_is_noop(webhook, settings.fields)
    return None


def job_of(webhook: Webhook, settings: Settings) -> SyncJob:
    """The job a webhook that needs a sync hands on."""
    fields = settings.fields
    base: dict[str, Any] = {
        "event": webhook.event,
        "catalog_id": webhook.catalog_id,
        "record_id": webhook.record_id,
        "hook_id": webhook.hook_id,
        "sequence_id": webhook.sequence_id,
    }
    if webhook.event == "record.deleted":
        return SyncJob(**base)
    state = webhook.full_values()
    stored = state.get(fields.event_id)
    ref = decode_event_id(stored) if isinstance(stored, str) and is_event_id(stored) else None
    ours = ref is not None and (ref.catalog_id, ref.record_id) == (
        webhook.catalog_id,
        webhook.record_id,
    )
    calendar = _calendar(state, fields.calendar)
    if webhook.event == "record.created":
        size = len(json.dumps(webhook.values, ensure_ascii=False).encode("utf-8"))
        values = webhook.values if size <= MAX_VALUES_BYTES else None
        return SyncJob(**base, values=values, calendar=calendar, event_id=stored if ours else None)
    previous = None
    if fields.calendar:
        previous = _calendar(webhook.prev_values, fields.calendar) or settings.calendar_id
    return SyncJob(
        **base,
        previous_calendar=previous,
        calendar=calendar,
        event_id=stored if ours else None,
    )


def _calendar(values: Mapping[str, Any], field_id: str | None) -> str | None:
    """The calendar a state names; a value that names none is the worker's to refuse."""
    try:
        return calendar_of(values, field_id)
    except AppError:
        return None
