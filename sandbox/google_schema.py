"""Checks driven by the Calendar v3 discovery document that googleapiclient ships.

- `validate_schema`: a JSON body against a schema of the document (e.g. `Event`).
- `parse_query`: query parameters against a method's parameter list (types, enums, ranges,
  repeated or not), plus the standard parameters every Google API accepts.
- `oauth_scopes`: the OAuth scopes the document names.
- `check_event`: what Google checks in an event beyond its schema (start and end, reminder
  limits, attendees).

Every failure is a 400 `ApiError` worded as Google words it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from datetime import time as dtime
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from werkzeug.datastructures import MultiDict

from sandbox.google_wire import ApiError, bad, find_zone, parse_date, parse_date_time

# Parameters every Google API accepts besides the method's own.
STANDARD_PARAMS = frozenset(
    {
        "alt", "fields", "key", "oauth_token", "prettyPrint", "quotaUser", "userIp",
        "$.xgafv", "access_token", "callback", "upload_protocol", "uploadType",
    }
)  # fmt: skip


@cache
def discovery_document() -> dict[str, Any]:
    """The Calendar v3 discovery document googleapiclient ships (read, not imported)."""
    spec = find_spec("googleapiclient")
    if spec is None or spec.origin is None:
        raise RuntimeError("google-api-python-client is needed for the Calendar discovery doc")
    path = Path(spec.origin).parent / "discovery_cache" / "documents" / "calendar.v3.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def oauth_scopes() -> frozenset[str]:
    """Every scope of `auth.oauth2.scopes` in the discovery document."""
    return frozenset(discovery_document().get("auth", {}).get("oauth2", {}).get("scopes", {}))


# ---------------------------------------------------------------------------- bodies


def _type_name(schema: dict[str, Any], ref: str | None) -> str:
    if ref:
        return f"type.googleapis.com/google.apps.calendar.v3.{ref}"
    kind = schema.get("type")
    if kind == "integer":
        return "TYPE_INT64" if schema.get("format") == "int64" else "TYPE_INT32"
    return {"string": "TYPE_STRING", "boolean": "TYPE_BOOL", "array": "list"}.get(
        str(kind), "object"
    )


def validate_schema(
    value: Any,
    schema: dict[str, Any],
    path: str,
    schemas: dict[str, Any],
    ref: str | None = None,
) -> None:
    """Checks `value` against a discovery-document schema; raises a 400 `ApiError`.

    `null` is accepted anywhere (Google's JSON parsing treats it as "not set").
    """
    if "$ref" in schema:
        name = schema["$ref"]
        validate_schema(value, schemas[name], path, schemas, name)
        return
    if value is None:
        return
    kind = schema.get("type")

    def wrong() -> ApiError:
        return bad(f"Invalid value at '{path}' ({_type_name(schema, ref)}), {json.dumps(value)}")

    if kind == "any":
        return
    if kind == "string":
        if (
            schema.get("format") == "int64"
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            return
        if not isinstance(value, str):
            raise wrong()
        fmt = schema.get("format")
        if fmt == "date" and parse_date(value) is None:
            raise bad(f"Invalid value at '{path}' (date), {json.dumps(value)}")
        if fmt == "date-time" and parse_date_time(value) is None:
            raise bad(f"Invalid value at '{path}' (date-time), {json.dumps(value)}")
        if fmt == "int64" and not re.fullmatch(r"-?\d+", value):
            raise wrong()
        return
    if kind == "integer":
        number: int
        if isinstance(value, bool):
            raise wrong()
        if isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value)
        ):
            number = int(value)
        else:
            raise wrong()
        if schema.get("format") == "int32" and not -(2**31) <= number < 2**31:
            raise wrong()
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            raise wrong()
        return
    if kind == "array":
        if not isinstance(value, list):
            raise wrong()
        for index, item in enumerate(value):
            validate_schema(item, schema.get("items", {}), f"{path}[{index}]", schemas)
        return
    if kind == "object":
        if not isinstance(value, dict):
            raise wrong()
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                validate_schema(item, properties[key], f"{path}.{key}", schemas)
            elif extra is not None:
                validate_schema(item, extra, f"{path}.{key}", schemas)
            else:
                raise bad(
                    f"Invalid JSON payload received. Unknown name {json.dumps(key)} "
                    f"at '{path}': Cannot find field."
                )


# ---------------------------------------------------------------------------- query


def parse_query(method: dict[str, Any], args: MultiDict[str, str]) -> dict[str, Any]:
    """Query parameters checked against a method's discovery entry, parsed.

    Booleans and integers come back as such, `date-time` values as epoch seconds, repeated
    parameters as lists; standard parameters are checked (`alt`) and left out.
    """
    spec: dict[str, Any] = method.get("parameters", {})
    parsed: dict[str, Any] = {}
    for name in args:
        values = args.getlist(name)
        if name in STANDARD_PARAMS:
            if name == "alt" and values[-1] != "json":
                raise bad(f"Invalid value at 'alt', {json.dumps(values[-1])}")
            continue
        param = spec.get(name)
        if param is None or param.get("location") != "query":
            raise bad(
                f"Invalid JSON payload received. Unknown name {json.dumps(name)}: Cannot "
                f"bind query parameter. Field '{name}' could not be found in request message."
            )
        if not param.get("repeated") and len(values) > 1:
            raise bad(f"Multiple values for non-repeated parameter '{name}'.")
        items = [_query_value(name, param, value) for value in values]
        parsed[name] = items if param.get("repeated") else items[0]
    return parsed


def _query_value(name: str, param: dict[str, Any], value: str) -> Any:
    def invalid() -> ApiError:
        return ApiError(
            400, "invalid", f"Invalid value for parameter '{name}': {json.dumps(value)}",
            location=name,
        )  # fmt: skip

    kind = param.get("type")
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise invalid()
        return value.lower() == "true"
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            raise invalid()
        number = int(value)
        low, high = param.get("minimum"), param.get("maximum")
        if (low is not None and number < int(low)) or (high is not None and number > int(high)):
            raise invalid()
        return number
    if "enum" in param and value not in param["enum"]:
        raise invalid()
    if param.get("format") == "date-time":
        moment = parse_date_time(value)
        if moment is None or moment.tzinfo is None:
            raise ApiError(400, "badRequest", "Bad Request", location=name)
        return moment.timestamp()
    return value


# ---------------------------------------------------------------------------- events

EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_REMINDERS = 5
MAX_REMINDER_MINUTES = 40320
REMINDER_METHODS = ("popup", "email")
EVENT_STATUSES = ("confirmed", "tentative", "cancelled")
RESPONSE_STATUSES = ("needsAction", "declined", "tentative", "accepted")


def both_reminders() -> ApiError:
    """Google's answer to default reminders with overrides (phw198/OutlookGoogleCalendarSync
    #666 quotes it: domain calendar); a patch merges `reminders`, so `{"useDefault": true}`
    onto an event with overrides gets it too."""
    return ApiError(
        400, "cannotUseDefaultRemindersAndSpecifyOverride",
        "Cannot specify both default reminders and overrides at the same time.",
        domain="calendar",
    )  # fmt: skip


def check_event(event: dict[str, Any], time_zone: str) -> tuple[float, float, bool]:
    """What Google checks in an event beyond the schema: start and end, reminder limits,
    attendees. Returns the start and end instants and whether the event is all-day;
    `time_zone` is the calendar's (for dates without one)."""
    if event.get("status", "confirmed") not in EVENT_STATUSES:
        raise bad("Invalid value for: status")
    end = event.get("end")
    if not end:
        raise ApiError(400, "required", "Missing end time.")
    start = event.get("start")
    if not start:
        raise ApiError(400, "required", "Missing start time.")
    start_ts, start_all_day = instant(start, "start", time_zone)
    end_ts, end_all_day = instant(end, "end", time_zone)
    if start_all_day != end_all_day:
        raise bad("Start and end times must either both be date or both be dateTime.")
    if end_ts < start_ts or (start_all_day and end_ts == start_ts):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")

    reminders = event.get("reminders") or {}
    overrides = reminders.get("overrides") or []
    if reminders.get("useDefault") and overrides:
        raise both_reminders()
    if len(overrides) > MAX_REMINDERS:
        raise ApiError(400, "tooManyReminders", "The maximum number of override reminders is 5.")
    for override in overrides:
        if "method" not in override:
            raise ApiError(400, "required", "Missing reminder method.")
        if override["method"] not in REMINDER_METHODS:
            raise bad("Invalid reminder method.")
        if "minutes" not in override:
            raise ApiError(400, "required", "Missing reminder minutes.")
        if not 0 <= int(override["minutes"]) <= MAX_REMINDER_MINUTES:
            raise bad("Invalid reminder minutes value.")

    for attendee in event.get("attendees") or []:
        address = attendee.get("email")
        if not address:
            raise ApiError(400, "required", "Missing attendee email.")
        if not EMAIL_RE.match(address):
            raise bad("Invalid attendee email.")
        if attendee.get("responseStatus", "needsAction") not in RESPONSE_STATUSES:
            raise bad("Invalid attendee response status.")
    return start_ts, end_ts, start_all_day


def instant(when: dict[str, Any], which: str, time_zone: str) -> tuple[float, bool]:
    """Epoch seconds of an EventDateTime and whether it is all-day."""
    has_date, has_time = "date" in when, "dateTime" in when
    if not has_date and not has_time:
        raise ApiError(400, "required", f"Missing {which} time.")
    if has_date and has_time:
        raise bad(f"Invalid {which} time.")
    zone_name = when.get("timeZone")
    zone = find_zone(zone_name) if zone_name else None
    if zone_name and zone is None:
        raise bad(f"Invalid time zone definition for {which} time.")
    if has_date:
        day = parse_date(when["date"])
        if day is None:
            raise bad(f"Invalid {which} time.")
        local = zone or find_zone(time_zone) or UTC
        return datetime.combine(day, dtime(0), tzinfo=local).timestamp(), True
    moment = parse_date_time(when["dateTime"])
    if moment is None:
        raise bad(f"Invalid {which} time.")
    if moment.tzinfo is None:
        if zone is None:
            raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp(), False
