"""Use cases for Bpium scenarios («Веб-запрос»): list calendar events, create a calendar.

Parameters come as a query string (GET) or a JSON body (POST); the answers are flat JSON
that a scenario can read without knowing Google's shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from . import log
from .domain import EMAIL_PATTERN, PRIVATE_CATALOG_KEY, PRIVATE_RECORD_KEY, rfc3339
from .errors import AppError, BadRequest, Gone
from .settings import Settings

DEFAULT_WINDOW_DAYS = 30
DEFAULT_LIMIT = 10000
MAX_LIMIT = 100000
SHARE_ROLES = ("reader", "writer", "owner")
# A sync token excludes these (Google answers 400 otherwise).
NOT_WITH_SYNC = ("timeMin", "timeMax", "q", "updatedMin")
TRUE = ("true", "1", "yes", "on")


class SyncTokenExpired(AppError):
    """Google no longer knows the sync token: the caller must start again with sync=true."""

    status = 409
    code = "sync_token_expired"


class CalendarApi(Protocol):
    def list_events(
        self, calendar_id: str, params: Mapping[str, Any], *, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def calendars(self) -> list[dict[str, Any]]: ...

    def create_calendar(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def share(self, calendar_id: str, email: str, role: str) -> dict[str, Any]: ...


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return False
    if isinstance(value, str) and value.lower() in (*TRUE, "false", "0", "no", "off"):
        return value.lower() in TRUE
    raise BadRequest(f"{name} must be true or false", field=name)


def _string(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise BadRequest(f"{name} must be a string", field=name)
    return str(value).strip()


def parse_instant(value: str, name: str, zone: ZoneInfo) -> datetime:
    """Bpium's UTC ISO strings, any RFC 3339 time, or a plain date (local midnight)."""
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), time(), zone)
        else:
            parsed = datetime.fromisoformat(value)
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
        # A default window reaches this far from it: both ends must stay within Python's dates.
        (parsed - timedelta(days=DEFAULT_WINDOW_DAYS)).astimezone(UTC)
        (parsed + timedelta(days=DEFAULT_WINDOW_DAYS)).astimezone(UTC)
    except ValueError as exc:
        raise BadRequest(
            f"{name} is neither a date nor an ISO time: {value!r}", field=name
        ) from exc
    except OverflowError:
        raise BadRequest(f"{name} is out of range: {value!r}", field=name) from None
    return parsed


@dataclass(frozen=True)
class ListQuery:
    calendar_id: str
    params: dict[str, Any]
    limit: int | None
    sync: bool


def parse_list_query(params: Mapping[str, Any], settings: Settings, now: datetime) -> ListQuery:
    """Checks a list_events request and turns it into events.list parameters."""
    zone = ZoneInfo(settings.time_zone)
    calendar_id = _string(params, "calendarId") or settings.calendar_id
    sync_token = _string(params, "syncToken")
    sync = bool(sync_token) or _flag(params.get("sync"), "sync")
    if sync:
        given = [name for name in NOT_WITH_SYNC if _string(params, name)]
        if given:
            raise BadRequest(
                f"{', '.join(given)} cannot be used with sync (Google's sync tokens cover the "
                "whole calendar)",
                field=given[0],
            )
        query: dict[str, Any] = {"singleEvents": True}
        if sync_token:
            query["syncToken"] = sync_token
        # Every page must be read: only the last one carries the next sync token.
        return ListQuery(calendar_id, query, None, True)
    raw_min, raw_max = _string(params, "timeMin"), _string(params, "timeMax")
    time_min = parse_instant(raw_min, "timeMin", zone) if raw_min else now
    time_max = (
        parse_instant(raw_max, "timeMax", zone)
        if raw_max
        else time_min + timedelta(days=DEFAULT_WINDOW_DAYS)
    )
    if time_max <= time_min:
        raise BadRequest("timeMax must be after timeMin", field="timeMax")
    query = {
        "timeMin": rfc3339(time_min),
        "timeMax": rfc3339(time_max),
        "singleEvents": True,  # recurring events come as their instances
        "orderBy": "startTime",
    }
    if q := _string(params, "q"):
        query["q"] = q
    if updated_min := _string(params, "updatedMin"):
        query["updatedMin"] = rfc3339(parse_instant(updated_min, "updatedMin", zone))
    raw_limit = _string(params, "limit")
    try:
        limit = int(raw_limit) if raw_limit else DEFAULT_LIMIT
    except ValueError:
        raise BadRequest("limit must be a whole number", field="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return ListQuery(calendar_id, query, limit, False)


def _when(value: Mapping[str, Any] | None) -> str | None:
    if not value:
        return None
    return value.get("dateTime") or value.get("date")


def _meet_link(event: Mapping[str, Any]) -> str | None:
    for entry in (event.get("conferenceData") or {}).get("entryPoints") or []:
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    link = event.get("hangoutLink")
    return str(link) if link else None


def flat_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """One event as a scenario wants it: flat, with our Bpium marks when it is ours."""
    private = (event.get("extendedProperties") or {}).get("private") or {}
    reminders = event.get("reminders") or {}
    start = event.get("start") or {}
    return {
        "id": event.get("id"),
        "status": event.get("status"),
        "summary": event.get("summary"),
        "description": event.get("description"),
        "location": event.get("location"),
        "start": _when(start),
        "end": _when(event.get("end")),
        "allDay": "date" in start,
        "timeZone": start.get("timeZone"),
        "attendees": [
            {"email": a.get("email"), "responseStatus": a.get("responseStatus")}
            for a in event.get("attendees") or []
        ],
        "organizer": (event.get("organizer") or {}).get("email"),
        "htmlLink": event.get("htmlLink"),
        "meetLink": _meet_link(event),
        "reminders": (
            "default"
            if reminders.get("useDefault", True)
            else [
                {"method": r.get("method"), "minutes": r.get("minutes")}
                for r in reminders.get("overrides") or []
            ]
        ),
        "recurringEventId": event.get("recurringEventId"),
        "updated": event.get("updated"),
        "bpiumCatalogId": private.get(PRIVATE_CATALOG_KEY),
        "bpiumRecordId": private.get(PRIVATE_RECORD_KEY),
    }


@dataclass(frozen=True)
class Share:
    email: str
    role: str


@dataclass(frozen=True)
class NewCalendar:
    summary: str
    description: str | None
    time_zone: str
    share: tuple[Share, ...]
    if_not_exists: bool


def parse_new_calendar(params: Mapping[str, Any], settings: Settings) -> NewCalendar:
    summary = _string(params, "summary")
    if not summary:
        raise BadRequest("summary (the calendar's name) is required", field="summary")
    zone = _string(params, "timeZone") or settings.time_zone
    try:
        ZoneInfo(zone)
    except (ValueError, KeyError, OSError) as exc:  # a folder or a too long name: OSError
        raise BadRequest(f"timeZone {zone!r} is not an IANA time zone", field="timeZone") from exc
    raw_shares = params.get("shareWith") or []
    if not isinstance(raw_shares, list):
        raise BadRequest("shareWith must be a list of {email, role}", field="shareWith")
    shares = []
    for index, item in enumerate(raw_shares):
        where = f"shareWith[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be an object {{email, role}}", field=where)
        email = str(item.get("email") or "").strip()
        role = str(item.get("role") or "reader")
        if not EMAIL_PATTERN.match(email):
            raise BadRequest(f"{where}.email is not an e-mail address", field=f"{where}.email")
        if role not in SHARE_ROLES:
            raise BadRequest(
                f"{where}.role must be one of {', '.join(SHARE_ROLES)}", field=f"{where}.role"
            )
        shares.append(Share(email, role))
    return NewCalendar(
        summary=summary,
        description=_string(params, "description"),
        time_zone=zone,
        share=tuple(shares),
        if_not_exists=_flag(params.get("ifNotExists"), "ifNotExists"),
    )


class Scenarios:
    def __init__(
        self,
        settings: Settings,
        calendar: CalendarApi,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.clock = clock

    def list_events(self, params: Mapping[str, Any]) -> dict[str, Any]:
        query = parse_list_query(params, self.settings, self.clock())
        try:
            items, sync_token = self.calendar.list_events(
                query.calendar_id, query.params, limit=query.limit
            )
        except Gone as exc:
            raise SyncTokenExpired(
                "the sync token has expired: list again with sync=true (no syncToken) and "
                "keep the new nextSyncToken"
            ) from exc
        answer: dict[str, Any] = {
            "calendarId": query.calendar_id,
            "count": len(items),
            "items": [flat_event(e) for e in items],
        }
        if query.sync:
            answer["nextSyncToken"] = sync_token
        log.info("events_listed", calendar_id=query.calendar_id, count=len(items), sync=query.sync)
        return answer

    def create_calendar(self, params: Mapping[str, Any]) -> dict[str, Any]:
        new = parse_new_calendar(params, self.settings)
        existing = None
        if new.if_not_exists:
            existing = next(
                (
                    c
                    for c in self.calendar.calendars()
                    if c.get("summary") == new.summary and c.get("accessRole") == "owner"
                ),
                None,
            )
        if existing:
            calendar = existing
        else:
            body = {"summary": new.summary, "timeZone": new.time_zone}
            if new.description:
                body["description"] = new.description
            calendar = self.calendar.create_calendar(body)
        for share in new.share:  # idempotent: a second rule for the same person replaces it
            self.calendar.share(calendar["id"], share.email, share.role)
        log.info(
            "calendar_ready",
            calendar_id=calendar["id"],
            created=existing is None,
            shared=len(new.share),
        )
        return {
            "id": calendar["id"],
            "summary": calendar.get("summary"),
            "timeZone": calendar.get("timeZone"),
            "description": calendar.get("description"),
            "created": existing is None,
            "sharedWith": [{"email": s.email, "role": s.role} for s in new.share],
        }
