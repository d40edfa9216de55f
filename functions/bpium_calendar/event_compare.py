"""Comparing an event with what a meeting makes of it, and placing it in time (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .domain import PRIVATE_SIGNATURE_KEY, EventBody


def moment_of(value: Mapping[str, Any] | None) -> datetime | None:
    """An event time as an aware datetime (a date as its UTC midnight)."""
    if not value:
        return None
    try:
        if "date" in value:
            return datetime.fromisoformat(str(value["date"])).replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value.get("dateTime"))).astimezone(UTC)
    except ValueError:
        return None


def overlaps(event: Mapping[str, Any], start: datetime, end: datetime) -> bool:
    """Whether the event is in the window the way events.list's timeMin/timeMax bound it
    (it ends after the start and starts before the end); unreadable times count as in."""
    begins, ends = moment_of(event.get("start")), moment_of(event.get("end"))
    if begins is None or ends is None:
        return True
    return ends > start and begins < end


def instant_of(value: Mapping[str, Any] | None) -> str | None:
    """An event time as one comparable string (a date, or the UTC instant)."""
    if not value:
        return None
    if "date" in value:
        return str(value["date"])
    try:
        return datetime.fromisoformat(str(value.get("dateTime"))).astimezone(UTC).isoformat()
    except ValueError:
        return None


def _reminders(value: Mapping[str, Any] | None) -> tuple[Any, ...]:
    value = value or {"useDefault": True}
    if value.get("useDefault", False):
        return ("default",)
    return tuple(sorted((r.get("method"), r.get("minutes")) for r in value.get("overrides") or []))


def differs(event: Mapping[str, Any], body: EventBody) -> bool:
    """Whether the event's fields that we own differ from what the meeting makes of them."""
    texts = [
        (event.get(k) or "", body.get(k) or "")
        for k in ("summary", "description", "location")
        if k in body
    ]
    private = (event.get("extendedProperties") or {}).get("private") or {}
    return any(
        (
            event.get("status") == "cancelled",
            any(have != want for have, want in texts),
            instant_of(event.get("start")) != instant_of(dict(body["start"])),
            instant_of(event.get("end")) != instant_of(dict(body["end"])),
            {str(a.get("email", "")).lower() for a in event.get("attendees") or []}
            != {a["email"].lower() for a in body.get("attendees", [])},
            _reminders(event.get("reminders")) != _reminders(body.get("reminders")),
            # The signature follows the fields compared here: alone it is no reason to write.
            any(
                private.get(k) != v
                for k, v in body["extendedProperties"]["private"].items()
                if k != PRIVATE_SIGNATURE_KEY
            ),
            "conferenceData" in body and not event.get("conferenceData"),
        )
    )
