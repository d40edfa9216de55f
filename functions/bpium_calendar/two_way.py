"""What an event says back to its Bpium record (pure): answers, status, a person's edits.

`responses` is one line per attendee other than the organizer, in the event's order,
`e-mail: status`, empty until somebody has answered. A person's edit of a FROM_GOOGLE role
is told from our own write by the signature our writes leave in the event's private
properties: a digest of each role's value as we wrote it. A value that no longer matches its
digest was changed in Google since our last write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .domain import PRIVATE_CATALOG_KEY, PRIVATE_RECORD_KEY, PRIVATE_SIGNATURE_KEY, bpium_time
from .event_compare import instant_of
from .event_ids import decode_event_id
from .settings import FieldMap

ANSWERS = ("accepted", "declined", "tentative", "needsAction")
EVENT_STATUSES = ("confirmed", "tentative", "cancelled")
SIGNED_ROLES = ("title", "start", "end", "agenda", "location")


def record_of(event: Mapping[str, Any], catalog_id: str) -> str | None:
    """The record of `catalog_id` an event (or a cancelled item, which may carry only its
    id) belongs to; None when it is not one of ours."""
    private = (event.get("extendedProperties") or {}).get("private") or {}
    if private.get(PRIVATE_CATALOG_KEY) == catalog_id and private.get(PRIVATE_RECORD_KEY):
        return str(private[PRIVATE_RECORD_KEY])
    ref = decode_event_id(str(event.get("id") or ""))
    if ref is not None and ref.catalog_id == catalog_id:
        return ref.record_id
    return None


def responses_text(event: Mapping[str, Any]) -> str:
    """The attendees' answers as the `responses` field holds them ("" until one answers)."""
    organizer = str((event.get("organizer") or {}).get("email") or "").lower()
    lines: list[str] = []
    answered = False
    for attendee in event.get("attendees") or []:
        email = str(attendee.get("email") or "").strip().lower()
        if not email or attendee.get("organizer") or email == organizer:
            continue
        status = attendee.get("responseStatus")
        status = status if status in ANSWERS else "needsAction"
        answered = answered or status != "needsAction"
        lines.append(f"{email}: {status}")
    return "\n".join(lines) if answered else ""


def event_status(event: Mapping[str, Any]) -> str:
    status = event.get("status")
    return status if status in EVENT_STATUSES else "confirmed"


def role_values(event: Mapping[str, Any]) -> dict[str, str]:
    """The signed roles' values of an event body (ours or Google's), normalized."""
    return {
        "title": str(event.get("summary") or ""),
        # Comparable however Google spells a time: the date, or the UTC instant.
        "start": instant_of(event.get("start")) or "",
        "end": instant_of(event.get("end")) or "",
        "agenda": str(event.get("description") or ""),
        "location": str(event.get("location") or ""),
    }


def _digest(role: str, value: str) -> str:
    return hashlib.sha256(f"{role}\n{value}".encode()).hexdigest()[:10]


def signature(event: Mapping[str, Any]) -> str:
    """`title:…,start:…,…`: each signed role's digest, for the event's private properties."""
    values = role_values(event)
    return ",".join(f"{role}:{_digest(role, values[role])}" for role in SIGNED_ROLES)


def _signed(event: Mapping[str, Any]) -> dict[str, str]:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    raw = str(private.get(PRIVATE_SIGNATURE_KEY) or "")
    pairs = (item.partition(":") for item in raw.split(",") if item)
    return {role: digest for role, _, digest in pairs}


def person_edits(event: Mapping[str, Any], roles: Iterable[str]) -> dict[str, str]:
    """The roles among `roles` whose value changed in Google since our last write, with
    their signed digest there (an event without our signature tells nothing)."""
    signed = _signed(event)
    values = role_values(event)
    return {
        role: signed[role]
        for role in roles
        if role in signed and signed[role] != _digest(role, values[role])
    }


def bpium_value(event: Mapping[str, Any], role: str, time_zone: str) -> Any:
    """The value a Bpium field of `role` takes from the event (dates as Bpium writes them:
    UTC, an all-day date as its local midnight, the last day for an exclusive end date)."""
    if role == "title":
        return str(event.get("summary") or "")
    if role == "agenda":
        return str(event.get("description") or "")
    if role == "location":
        return str(event.get("location") or "")
    value = event.get(role) or {}
    if value.get("date"):
        day = date.fromisoformat(str(value["date"]))
        if role == "end":
            day -= timedelta(days=1)  # Google's all-day end is the day after
        return bpium_time(datetime.combine(day, time(), ZoneInfo(time_zone)))
    return bpium_time(datetime.fromisoformat(str(value.get("dateTime"))))


def field_of(fields: FieldMap, role: str) -> str | None:
    value = getattr(fields, role, None)
    return str(value) if value else None
