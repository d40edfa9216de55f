"""Use cases for Bpium scenarios («Веб-запрос»): list calendar events, create a calendar.

Parameters come as a query string (GET) or a JSON body (POST); the answers are flat JSON
that a scenario can read without knowing Google's shapes.
"""

from __future__ import annotations

import time as time_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from . import log
from .domain import (
    EMAIL_PATTERN,
    PRIVATE_CATALOG_KEY,
    PRIVATE_RECORD_KEY,
    rfc3339,
)
from .errors import AppError, BadRequest, Gone, NotFound, UpstreamUnavailable, shown
from .event_ids import decode_event_id
from .settings import Settings

DEFAULT_WINDOW_DAYS = 30
DEFAULT_LIMIT = 10000
MAX_LIMIT = 100000
# `owner` would hand the account's calendar over (and let its holder share it on): a scenario
# key may grant reading or writing, never ownership.
SHARE_ROLES = ("reader", "writer")
# The last line of a calendar's description when create_calendar made it: calendars have no
# private properties, and only calendars made this way are ever found or shared again.
MADE_MARK = "[bpium-calendar: создан сценарием Bpium]"
# A sync token excludes these (Google answers 400 otherwise); a first sync may bound its
# window ("you may want to limit your full sync to only a certain date range",
# https://developers.google.com/calendar/api/guides/sync), but not filter by text or age.
NOT_WITH_SYNC_TOKEN = ("timeMin", "timeMax", "q", "updatedMin")
NOT_WITH_SYNC = ("q", "updatedMin")
CREATE_ATTEMPTS = 3
CREATE_BACKOFF = 0.5  # seconds, doubled each attempt
TRUE = ("true", "1", "yes", "on")


class SyncTokenExpired(AppError):
    """Google no longer knows the sync token: the caller must start again with sync=true."""

    status = 409
    code = "sync_token_expired"


class CalendarNotFound(AppError):
    """The calendarId names no calendar this account can see: the caller's mistake."""

    status = 404
    code = "calendar_not_found"


class CalendarApi(Protocol):
    def list_events(
        self, calendar_id: str, params: Mapping[str, Any], *, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def calendars(self) -> list[dict[str, Any]]: ...

    def create_calendar(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def share(self, calendar_id: str, email: str, role: str) -> dict[str, Any]: ...

    def acl_rules(self, calendar_id: str) -> list[dict[str, Any]]: ...


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
            f"{name} is neither a date nor an ISO time: {shown(value)}", field=name
        ) from exc
    except OverflowError:
        raise BadRequest(f"{name} is out of range: {shown(value)}", field=name) from None
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
        excluded = NOT_WITH_SYNC_TOKEN if sync_token else NOT_WITH_SYNC
        given = [name for name in excluded if _string(params, name)]
        if given:
            why = "a syncToken covers every change since the first sync"
            if not sync_token:
                why = "a first sync may be bounded by timeMin and timeMax only"
            raise BadRequest(f"{', '.join(given)} cannot be used with sync: {why}", field=given[0])
        query: dict[str, Any] = {"singleEvents": True}
        if sync_token:
            query["syncToken"] = sync_token
        else:
            query.update(_sync_window(params, zone))
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


def _sync_window(params: Mapping[str, Any], zone: ZoneInfo) -> dict[str, str]:
    """A first sync's optional bounds (no orderBy: Google gives no sync token with one)."""
    window: dict[str, str] = {}
    bounds = {name: _string(params, name) for name in ("timeMin", "timeMax")}
    parsed = {name: parse_instant(raw, name, zone) for name, raw in bounds.items() if raw}
    if len(parsed) == 2 and parsed["timeMax"] <= parsed["timeMin"]:
        raise BadRequest("timeMax must be after timeMin", field="timeMax")
    for name, moment in parsed.items():
        window[name] = rfc3339(moment)
    return window


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
    catalog_id, record_id = private.get(PRIVATE_CATALOG_KEY), private.get(PRIVATE_RECORD_KEY)
    if not private and isinstance(event.get("id"), str):
        # A cancelled item in an incremental sync carries only its id, which names it.
        ref = decode_event_id(event["id"])
        if ref is not None:
            catalog_id, record_id = ref.catalog_id, ref.record_id
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
        "bpiumCatalogId": catalog_id,
        "bpiumRecordId": record_id,
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
        raise BadRequest(
            f"timeZone {shown(zone)} is not an IANA time zone", field="timeZone"
        ) from exc
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
        if not EMAIL_PATTERN.fullmatch(email):
            raise BadRequest(f"{where}.email is not an e-mail address", field=f"{where}.email")
        if role not in SHARE_ROLES:
            why = " (a scenario may not give a calendar away)" if role == "owner" else ""
            raise BadRequest(
                f"{where}.role must be one of {', '.join(SHARE_ROLES)}{why}",
                field=f"{where}.role",
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
        sleep: Callable[[float], None] = time_module.sleep,
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.clock = clock
        self.sleep = sleep

    def list_events(self, params: Mapping[str, Any]) -> dict[str, Any]:
        query = parse_list_query(params, self.settings, self.clock())
        try:
            items, sync_token = self.calendar.list_events(
                query.calendar_id, query.params, limit=query.limit
            )
        except NotFound as exc:
            raise CalendarNotFound(
                f"calendarId {shown(query.calendar_id)} names no calendar this account can see",
                field="calendarId",
            ) from exc
        except Gone as exc:
            if exc.details.get("reason") == "updatedMinTooLongAgo":
                raise BadRequest(
                    "updatedMin is too long ago for Google: use a later one, or list without it",
                    field="updatedMin",
                ) from exc
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
        named = self._made_here(new.summary)
        existing = named[0] if new.if_not_exists and named else None
        calendar = existing or self._insert_once(new, {c["id"] for c in named})
        rules = self.calendar.acl_rules(calendar["id"]) if existing else []
        held = {
            (str(r.get("scope", {}).get("value", "")).lower(), r.get("role"))
            for r in rules
            if r.get("scope", {}).get("type") == "user"
        }
        shared = 0
        for share in new.share:
            # acl.insert e-mails the person every time (sendNotifications defaults to true):
            # a rule they already hold is not sent again.
            if (share.email.lower(), share.role) in held:
                continue
            self.calendar.share(calendar["id"], share.email, share.role)
            shared += 1
        log.info(
            "calendar_ready",
            calendar_id=calendar["id"],
            created=existing is None,
            shared=shared,
        )
        return {
            "id": calendar["id"],
            "summary": calendar.get("summary"),
            "timeZone": calendar.get("timeZone"),
            "description": _without_mark(calendar.get("description")),
            "created": existing is None,
            "sharedWith": [{"email": s.email, "role": s.role} for s in new.share],
        }

    def _insert_once(self, new: NewCalendar, before: set[str]) -> dict[str, Any]:
        """calendars.insert is not idempotent: after a lost answer, the calendar may exist.
        Before trying again, look for one of this name that was not there before."""
        description = f"{new.description}\n\n{MADE_MARK}" if new.description else MADE_MARK
        body = {"summary": new.summary, "timeZone": new.time_zone, "description": description}
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return self.calendar.create_calendar(body)
            except UpstreamUnavailable:
                if attempt == CREATE_ATTEMPTS:
                    raise
                log.warning("calendar_insert_unanswered", attempt=attempt)
            self.sleep(CREATE_BACKOFF * 2 ** (attempt - 1))
            made = [c for c in self._made_here(new.summary) if c["id"] not in before]
            if made:
                return made[0]
        raise AssertionError("unreachable")  # pragma: no cover

    def _made_here(self, summary: str) -> list[dict[str, Any]]:
        """The account's calendars of that name that create_calendar made: never the
        meetings' calendar, the primary one, or one a person made by hand."""
        protected = {self.settings.calendar_id, "primary"}
        return [
            c
            for c in self.calendar.calendars()
            if c.get("summary") == summary
            and c.get("accessRole") == "owner"
            and not c.get("primary")
            and c["id"] not in protected
            and str(c.get("description") or "").endswith(MADE_MARK)
        ]


def _without_mark(description: Any) -> str | None:
    text = str(description or "").removesuffix(MADE_MARK).rstrip()
    return text or None
