"""Pure mapping, standard library only: webhook → meeting → Calendar event body.

Nothing here does I/O or reads the clock; callers pass what they know.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypedDict
from zoneinfo import ZoneInfo

from .errors import BadRequest, Unprocessable, shown
from .event_ids import ID_PATTERN
from .settings import MAX_REMINDER_MINUTES, MAX_REMINDERS, FieldMap, Reminder

HookEvent = Literal["record.created", "record.updated", "record.deleted"]
HOOK_EVENTS: tuple[HookEvent, ...] = ("record.created", "record.updated", "record.deleted")
EMAIL_PATTERN = re.compile(r"^[^@\s,;<>()\[\]\"']+@[^@\s,;<>()\[\]\"']+\.[^@\s,;<>()\[\]\"'.]+$")
PRIVATE_CATALOG_KEY = "bpiumCatalogId"
PRIVATE_RECORD_KEY = "bpiumRecordId"
# Per role, a digest of the value we wrote (two_way.signature): a person's edit differs.
PRIVATE_SIGNATURE_KEY = "bpiumSig"
UNTITLED = "Встреча"


class EventDateTime(TypedDict, total=False):
    date: str
    dateTime: str
    timeZone: str


class EventBody(TypedDict, total=False):
    """The fields of a Calendar event that we own; we patch only these."""

    conferenceData: dict[str, Any]
    summary: str
    description: str
    location: str
    start: EventDateTime
    end: EventDateTime
    attendees: list[dict[str, str]]
    reminders: dict[str, Any]
    extendedProperties: dict[str, dict[str, str]]
    status: str


@dataclass(frozen=True)
class Webhook:
    """A Bpium webhook delivery, validated."""

    event: str
    hook_id: str
    sequence_id: str
    catalog_id: str
    record_id: str
    values: Mapping[str, Any]
    prev_values: Mapping[str, Any]
    user_id: str
    sent_at: datetime | None = None  # the hook's `timestamp`

    def full_values(self) -> dict[str, Any]:
        """The record's state after the change: Bpium sends only changed fields in `values`."""
        return {**self.prev_values, **self.values}

    def changed_fields(self) -> frozenset[str]:
        return frozenset(k for k, v in self.values.items() if self.prev_values.get(k) != v)

    def log_fields(self) -> dict[str, str]:
        return {
            "catalog_id": self.catalog_id,
            "record_id": self.record_id,
            "hook_event": self.event,
            "hook_id": self.hook_id,
            "sequence_id": self.sequence_id,
        }


@dataclass(frozen=True)
class FieldInfo:
    type: str
    date_only: bool = False


@dataclass(frozen=True)
class CatalogSchema:
    """What we need to know of a catalog's fields: type and whether a date has a time."""

    catalog_id: str
    fields: Mapping[str, FieldInfo]

    def type_of(self, field_id: str) -> str | None:
        info = self.fields.get(field_id)
        return info.type if info else None

    def is_date_only(self, field_id: str) -> bool:
        info = self.fields.get(field_id)
        return bool(info and info.date_only)


@dataclass(frozen=True)
class EmployeeRef:
    catalog_id: str
    record_id: str


@dataclass(frozen=True)
class Meeting:
    catalog_id: str
    record_id: str
    title: str
    start: datetime | date
    end: datetime | date
    agenda: str
    location: str | None
    employees: tuple[EmployeeRef, ...]
    guests: tuple[str, ...]
    stored_event_id: str | None
    reminders: tuple[Reminder, ...]
    calendar_id: str | None = None
    meet: bool = False
    stored_link: str | None = None

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


@dataclass(frozen=True)
class MappingOptions:
    """The settings the mapping needs, so the domain does not depend on all of them."""

    fields: FieldMap
    time_zone: str
    default_duration_minutes: int
    default_reminders: tuple[Reminder, ...]
    employees_catalog: str
    reminder_method: str = "popup"


@dataclass(frozen=True)
class Attendees:
    emails: tuple[str, ...]
    dropped: tuple[str, ...] = field(default=())


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise BadRequest(f"{where} must be a string", field=where)


def _ident(value: Any, where: str) -> str:
    """A Bpium id (digits, or a system name such as `$users`): nothing that could steer a URL."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"{where} is missing or not an id", field=where)
    text = str(value)
    if not ID_PATTERN.fullmatch(text):
        raise BadRequest(f"{where} is not a Bpium id", field=where)
    return text


def _mapping(value: Any, where: str, *, required: bool) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object", field=where)
    return value


def load_json(body: bytes) -> Any:
    """JSON from a request body; BadRequest for anything that is not (or nests too deep)."""
    try:
        data = json.loads(body)
        # JSON may spell lone surrogates (\ud800), which no URL, log or API can carry.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BadRequest(f"body is not valid JSON: {reason}", code="invalid_json") from None
    return data


def parse_webhook(body: bytes) -> Webhook:
    """Parses and shape-checks a webhook body; BadRequest names the first problem."""
    root = _mapping(load_json(body), "body", required=True)
    hook = _mapping(root.get("hook"), "hook", required=True)
    payload = _mapping(root.get("payload"), "payload", required=True)
    user = _mapping(root.get("user"), "user", required=False)
    event = _text(hook.get("event"), "hook.event")
    if not event:
        raise BadRequest("hook.event is missing", field="hook.event")
    sequence = hook.get("sequenceId")
    webhook = Webhook(
        event=event,
        hook_id=_text(hook.get("id"), "hook.id"),
        sequence_id=_text(sequence, "hook.sequenceId"),
        catalog_id=_ident(payload.get("catalogId"), "payload.catalogId"),
        record_id=_ident(payload.get("recordId"), "payload.recordId"),
        values=_mapping(payload.get("values"), "payload.values", required=False),
        prev_values=_mapping(payload.get("prevValues"), "payload.prevValues", required=False),
        user_id=_text(user.get("id"), "user.id"),
    )
    return replace(webhook, sent_at=webhook_time(root.get("timestamp")))


def webhook_time(value: Any) -> datetime:
    """The webhook's `timestamp`: Unix seconds, as a string (`"1459500623"`, Bpium's docs
    integracii/webhooks.md) or a number; an ISO time is taken too. BadRequest otherwise."""
    where = "timestamp"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value) / (1000 if value > 10**11 else 1)  # milliseconds, if so
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    if value is None or value == "":
        raise BadRequest("timestamp is missing", field=where)
    raise BadRequest(f"timestamp is not a Unix time or an ISO time: {shown(value)}", field=where)


def parse_catalog(data: Mapping[str, Any]) -> CatalogSchema:
    """Reads `GET /catalogs/{c}`: each field's type, and for dates whether they have a time."""
    fields: dict[str, FieldInfo] = {}
    for item in data.get("fields") or []:
        if not isinstance(item, dict) or "id" not in item:
            continue
        config = item.get("config")
        if not isinstance(config, dict):
            config = {}
        kind = str(item.get("type", ""))
        date_only = kind == "date" and config.get("time") is False
        fields[str(item["id"])] = FieldInfo(kind, date_only)
    return CatalogSchema(str(data.get("id", "")), fields)


def rfc3339(moment: datetime) -> str:
    """UTC time as Google wants it, `2026-12-01T07:00:00Z` (years below 1000 zero-padded)."""
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def bpium_time(moment: datetime) -> str:
    """UTC time as Bpium writes it, `2026-12-01T07:00:00.000Z`."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def _parse_instant(value: Any, field_id: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise Unprocessable(f"field {field_id} is not a date", field=field_id)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        message = f"field {field_id} is not an ISO date: {shown(value)}"
        raise Unprocessable(message, field=field_id) from exc
    if parsed.tzinfo is None:
        raise Unprocessable(f"field {field_id} has no time zone: {shown(value)}", field=field_id)
    return parsed


def _refs(value: Any, kind: str | None, employees_catalog: str) -> tuple[EmployeeRef, ...]:
    refs: list[EmployeeRef] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        if kind == "object" or "recordId" in item:
            if item.get("catalogId") is not None and item.get("recordId") is not None:
                refs.append(EmployeeRef(str(item["catalogId"]), str(item["recordId"])))
        elif item.get("id") is not None:
            refs.append(EmployeeRef(employees_catalog, str(item["id"])))
    return tuple(dict.fromkeys(refs))


def emails_in(value: Any) -> tuple[str, ...]:
    """E-mail strings in a contact field (`[{"contact", "comment"}]`) or a text field."""
    if isinstance(value, str):
        return tuple(p for p in re.split(r"[\s,;]+", value) if p)
    found: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and isinstance(item.get("contact"), str):
            found.append(item["contact"].strip())
        elif isinstance(item, str):
            found.append(item.strip())
    return tuple(e for e in found if e)


def _span(
    start_at: datetime,
    end_at: datetime | None,
    date_only: bool,
    zone: ZoneInfo,
    options: MappingOptions,
) -> tuple[datetime | date, datetime | date]:
    """The event's start and end; all-day dates when the start field has no time."""
    f = options.fields
    start: datetime | date
    end: datetime | date
    if date_only:
        # A date-only field holds local midnight in UTC: the local date is the day.
        start = start_at.astimezone(zone).date()
        end = (end_at.astimezone(zone).date() if end_at else start) + timedelta(days=1)
        if end <= start:
            raise Unprocessable(f"the meeting ends before it starts (field {f.end})", field=f.end)
    else:
        start = start_at
        end = end_at or start_at + timedelta(minutes=options.default_duration_minutes)
        if end < start:
            raise Unprocessable(f"the meeting ends before it starts (field {f.end})", field=f.end)
        # Both must be expressible in the events' zone (Python's dates end at year 9999).
        start.astimezone(zone)
        end.astimezone(zone)
    return start, end


def meeting_from_values(
    catalog_id: str,
    record_id: str,
    values: Mapping[str, Any],
    schema: CatalogSchema,
    options: MappingOptions,
) -> Meeting:
    """Reads a meeting from a record's values; Unprocessable names the field that is wrong."""
    f = options.fields
    zone = ZoneInfo(options.time_zone)
    start_at = _parse_instant(values.get(f.start), f.start)
    if start_at is None:
        raise Unprocessable(f"the meeting has no start (field {f.start})", field=f.start)
    end_at = _parse_instant(values.get(f.end), f.end)
    try:
        start, end = _span(start_at, end_at, schema.is_date_only(f.start), zone, options)
    except OverflowError:
        raise Unprocessable(
            f"the meeting's dates are out of range (fields {f.start}, {f.end})", field=f.start
        ) from None
    stored = _text(values.get(f.event_id), f.event_id).strip() or None
    return Meeting(
        catalog_id=catalog_id,
        record_id=record_id,
        title=_text(values.get(f.title), f.title).strip(),
        start=start,
        end=end,
        agenda=_text(values.get(f.agenda), f.agenda),
        location=_text(values.get(f.location), f.location) if f.location else None,
        employees=_refs(
            values.get(f.employees), schema.type_of(f.employees), options.employees_catalog
        ),
        guests=emails_in(values.get(f.guests)),
        stored_event_id=stored,
        reminders=meeting_reminders(values, f.reminders, options),
        calendar_id=calendar_of(values, f.calendar),
        meet=bool(f.meet and values.get(f.meet) is True),
        stored_link=_text(values.get(f.link), f.link).strip() or None if f.link else None,
    )


def calendar_of(values: Mapping[str, Any], field_id: str | None) -> str | None:
    """The calendar a meeting names in its calendar field (None: the default calendar)."""
    if not field_id:
        return None
    return _text(values.get(field_id), field_id).strip() or None


def _minutes(item: Any) -> int | None:
    if isinstance(item, bool):
        return None
    try:
        number = float(item)
    except (TypeError, ValueError):
        return None
    if not number.is_integer() or not 0 <= number <= MAX_REMINDER_MINUTES:
        return None  # NaN and infinities fail is_integer()
    return int(number)


def meeting_reminders(
    values: Mapping[str, Any], field_id: str | None, options: MappingOptions
) -> tuple[Reminder, ...]:
    """Minutes from the reminders field (a number, `"10, 60"`, or a list), else the defaults."""
    raw = values.get(field_id) if field_id else None
    if raw in (None, "", []):
        return options.default_reminders
    assert field_id is not None
    items: list[Any]
    if isinstance(raw, list):
        items = raw
    elif isinstance(raw, str):
        items = [p for p in re.split(r"[\s,;]+", raw) if p]
    else:
        items = [raw]
    minutes: list[int] = []
    for item in items:
        number = _minutes(item)
        if number is None:
            raise Unprocessable(
                f"reminder {shown(item)} in field {field_id} is not a number of minutes between 0 "
                f"and {MAX_REMINDER_MINUTES}",
                field=field_id,
            )
        minutes.append(number)
    unique = list(dict.fromkeys(minutes))
    if len(unique) > MAX_REMINDERS:
        raise Unprocessable(
            f"field {field_id} has {len(unique)} reminders; Google allows {MAX_REMINDERS}",
            field=field_id,
        )
    return tuple(Reminder(options.reminder_method, m) for m in unique)


def attendees(candidates: Iterable[str]) -> Attendees:
    """De-duplicates case-insensitively (first spelling wins) and drops invalid e-mails."""
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for raw in candidates:
        email = raw.strip()
        if not EMAIL_PATTERN.fullmatch(email):
            dropped.append(email)
        else:
            kept.setdefault(email.lower(), email)
    return Attendees(tuple(kept.values()), tuple(dropped))


def _when(moment: datetime | date, time_zone: str) -> EventDateTime:
    if isinstance(moment, datetime):
        local = moment.astimezone(ZoneInfo(time_zone))
        offset = local.utcoffset()
        if offset is not None and offset.seconds % 60:
            # Local mean time (before ~1920) has offsets in seconds, which RFC 3339 cannot say.
            local = moment.astimezone(UTC)
        return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": time_zone}
    return {"date": moment.isoformat()}


def meet_request_id(meeting: Meeting, renewal: str = "") -> str:
    """The Meet `createRequest.requestId`: Google ignores one it has seen for the event, so
    the same id on every write keeps one conference; `renewal` (any text that differs once
    the conference is gone, such as the event's etag) asks for a new one."""
    base = f"bpium-{meeting.catalog_id}-{meeting.record_id}"
    if not renewal:
        return base
    return f"{base}-{hashlib.sha256(renewal.encode()).hexdigest()[:16]}"


def event_body(
    meeting: Meeting, people: Sequence[str], time_zone: str, *, meet_renewal: str = ""
) -> EventBody:
    """The event fields we own for this meeting; `people` are the attendees' e-mails.

    There is no `status`: a write never revives a cancelled event by itself (its record may
    be gone); reviving is a separate, checked step.
    """
    overrides = [{"method": r.method, "minutes": r.minutes} for r in meeting.reminders]
    body: EventBody = {
        "summary": meeting.title or UNTITLED,
        "description": meeting.agenda,
        "start": _when(meeting.start, time_zone),
        "end": _when(meeting.end, time_zone),
        "attendees": [{"email": e} for e in people],
        # events.patch merges nested objects: going back to the calendar's defaults must
        # clear the overrides in the same write, or Google answers 400
        # cannotUseDefaultRemindersAndSpecifyOverride. A JSON null clears a field in a patch;
        # an empty list beside useDefault is refused (reported: openclaw/gogcli#1016).
        "reminders": (
            {"useDefault": False, "overrides": overrides}
            if overrides
            else {"useDefault": True, "overrides": None}
        ),
        "extendedProperties": {
            "private": {
                PRIVATE_CATALOG_KEY: meeting.catalog_id,
                PRIVATE_RECORD_KEY: meeting.record_id,
            }
        },
    }
    if meeting.location is not None:
        body["location"] = meeting.location
    if meeting.meet:
        body["conferenceData"] = {
            "createRequest": {
                "requestId": meet_request_id(meeting, meet_renewal),
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        }
    return body


def update_is_noop(webhook: Webhook, fields: FieldMap) -> str | None:
    """Why an update needs no sync (a reason code), or None when it must be synced."""
    changed = webhook.changed_fields()
    if not changed:
        return "nothing_changed"
    if changed <= fields.written():
        return "own_write_back"
    if not changed & fields.synced():
        return "no_synced_field_changed"
    return None
