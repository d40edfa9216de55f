"""Settings from the environment (the only module that reads it), validated all at once."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

REQUIRED_ROLES = ("title", "start", "end", "agenda", "employees", "guests", "event_id")
OPTIONAL_ROLES = ("location", "reminders", "calendar", "meet", "link", "responses", "status")
# Roles whose fields we write ourselves: a change to only these is our own write-back (or
# Google's answers and status, which never change the event).
WRITTEN_ROLES = ("event_id", "link", "responses", "status")
# Roles that may follow a person's change in Google (FROM_GOOGLE).
FROM_GOOGLE_ROLES = ("title", "start", "end", "agenda", "location")
SEND_UPDATES_VALUES = ("all", "externalOnly", "none")
REMINDER_METHODS = ("popup", "email")
MAX_REMINDERS = 5
MAX_REMINDER_MINUTES = 40320
SECRETS_BACKENDS = ("secret-manager", "local")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

GOOGLE_CALENDAR_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
# Cloud Tasks queue names: projects/{p}/locations/{l}/queues/{q}.
QUEUE_NAME = re.compile(r"projects/[a-z0-9:.-]+/locations/[a-z0-9-]+/queues/[A-Za-z0-9-]{1,100}")


@dataclass(frozen=True)
class Reminder:
    method: str
    minutes: int


@dataclass(frozen=True)
class FieldMap:
    """Role → Bpium field id of the Meetings catalog."""

    title: str
    start: str
    end: str
    agenda: str
    employees: str
    guests: str
    event_id: str
    location: str | None = None
    reminders: str | None = None
    calendar: str | None = None
    meet: str | None = None
    link: str | None = None
    responses: str | None = None
    status: str | None = None

    def written(self) -> frozenset[str]:
        """Field ids that only we write (the write-back)."""
        return frozenset(f for f in (getattr(self, r) for r in WRITTEN_ROLES) if f)

    def synced(self) -> frozenset[str]:
        """Field ids whose change must change the event."""
        roles = (*REQUIRED_ROLES, *OPTIONAL_ROLES)
        ids = (getattr(self, r) for r in roles if r not in WRITTEN_ROLES)
        return frozenset(f for f in ids if f)


@dataclass(frozen=True)
class Settings:
    bpium_url: str
    meetings_catalog: str
    fields: FieldMap
    employees_catalog: str = "$users"
    employee_email_field: str = "$email"
    bpium_rate_limit: int = 90
    calendar_id: str = "primary"
    time_zone: str = "Europe/Moscow"
    default_duration_minutes: int = 60
    default_reminders: tuple[Reminder, ...] = ()
    reminder_method: str = "popup"
    send_updates: str = "all"
    token_refresh_margin_minutes: int = 40
    reconcile_lookback_days: int = 1
    reconcile_lookahead_days: int = 90
    log_level: str = "INFO"
    gcp_project: str | None = None
    secrets_backend: str = "secret-manager"
    secrets_dir: str = ".secrets"
    google_calendar_endpoint: str = GOOGLE_CALENDAR_ENDPOINT
    google_token_uri: str = GOOGLE_TOKEN_URI
    secret_manager_endpoint: str | None = None
    webhook_max_age_minutes: int = 60
    bpium_rate_window_seconds: int = 30
    employee_email_cache_minutes: int = 10
    function_timeout_seconds: int = 60
    tasks_queue: str = ""
    sync_worker_url: str = ""
    tasks_service_account: str | None = None
    tasks_endpoint: str | None = None
    from_google: tuple[str, ...] = ()
    bpium_api_user_id: str | None = None
    calendar_push_url: str = ""
    calendar_worker_url: str = ""
    firestore_database: str = "(default)"
    push_debounce_seconds: int = 5

    @property
    def from_google_fields(self) -> frozenset[str]:
        """Field ids of the FROM_GOOGLE roles: written from Google by the integration."""
        return frozenset(getattr(self.fields, role) or "" for role in self.from_google) - {""}

    @property
    def two_way(self) -> bool:
        """Whether anything flows back from Google (a role to write it to is mapped)."""
        f = self.fields
        return bool(f.responses or f.status or self.from_google)

    @property
    def work_deadline_seconds(self) -> float:
        """How long a request may work: its function's timeout less a margin for the
        answer (60 s leaves 50; 1800 s leaves 1770)."""
        timeout = float(self.function_timeout_seconds)
        return timeout - max(5.0, min(30.0, timeout / 6))

    @property
    def bpium_api_url(self) -> str:
        return self.bpium_url + "/api/v1"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_bpium: bool = True
    ) -> Settings:
        """Reads every variable; raises one ConfigError that lists every problem.

        `require_bpium=False` serves the workstation tools (the authorize command), which
        need only the secrets and Google settings.
        """
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        settings = cls(
            bpium_url=reader.url("BPIUM_URL", required=require_bpium).rstrip("/"),
            meetings_catalog=reader.text("BPIUM_MEETINGS_CATALOG", required=require_bpium),
            fields=reader.field_map("BPIUM_FIELDS", required=require_bpium),
            employees_catalog=reader.text("BPIUM_EMPLOYEES_CATALOG") or "$users",
            employee_email_field=reader.text("BPIUM_EMPLOYEE_EMAIL_FIELD") or "$email",
            bpium_rate_limit=reader.integer("BPIUM_RATE_LIMIT", 90, low=0),
            calendar_id=reader.text("GOOGLE_CALENDAR_ID") or "primary",
            time_zone=reader.zone("TIME_ZONE", "Europe/Moscow"),
            default_duration_minutes=reader.integer("DEFAULT_DURATION_MINUTES", 60, low=1),
            default_reminders=reader.reminders("DEFAULT_REMINDERS"),
            reminder_method=reader.choice("REMINDER_METHOD", REMINDER_METHODS, "popup"),
            send_updates=reader.choice("SEND_UPDATES", SEND_UPDATES_VALUES, "all"),
            token_refresh_margin_minutes=reader.integer("TOKEN_REFRESH_MARGIN_MINUTES", 40, low=0),
            reconcile_lookback_days=reader.integer("RECONCILE_LOOKBACK_DAYS", 1, low=0),
            reconcile_lookahead_days=reader.integer("RECONCILE_LOOKAHEAD_DAYS", 90, low=1),
            log_level=reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
            gcp_project=reader.text("GCP_PROJECT") or None,
            secrets_backend=reader.choice("SECRETS_BACKEND", SECRETS_BACKENDS, "secret-manager"),
            secrets_dir=reader.text("SECRETS_DIR") or ".secrets",
            google_calendar_endpoint=reader.url("GOOGLE_CALENDAR_ENDPOINT")
            or GOOGLE_CALENDAR_ENDPOINT,
            google_token_uri=reader.url("GOOGLE_TOKEN_URI") or GOOGLE_TOKEN_URI,
            secret_manager_endpoint=reader.url("SECRET_MANAGER_ENDPOINT") or None,
            webhook_max_age_minutes=reader.integer("WEBHOOK_MAX_AGE_MINUTES", 60, low=1),
            bpium_rate_window_seconds=reader.integer("BPIUM_RATE_WINDOW_SECONDS", 30, low=1),
            employee_email_cache_minutes=reader.integer("EMPLOYEE_EMAIL_CACHE_MINUTES", 10, low=0),
            function_timeout_seconds=reader.integer("FUNCTION_TIMEOUT_SECONDS", 60, low=10),
            tasks_queue=reader.text("TASKS_QUEUE", required=require_bpium),
            sync_worker_url=reader.url("SYNC_WORKER_URL", required=require_bpium),
            tasks_service_account=reader.text("TASKS_SERVICE_ACCOUNT") or None,
            tasks_endpoint=reader.url("TASKS_ENDPOINT") or None,
            from_google=reader.roles("FROM_GOOGLE", FROM_GOOGLE_ROLES),
            bpium_api_user_id=reader.text("BPIUM_API_USER_ID") or None,
            calendar_push_url=reader.url("CALENDAR_PUSH_URL"),
            calendar_worker_url=reader.url("CALENDAR_WORKER_URL"),
            firestore_database=reader.text("FIRESTORE_DATABASE") or "(default)",
            push_debounce_seconds=reader.integer("PUSH_DEBOUNCE_SECONDS", 5, low=0),
        )
        unmapped = [r for r in settings.from_google if not getattr(settings.fields, r)]
        if unmapped and settings.fields.title:
            reader.problems.append(
                f"FROM_GOOGLE: role {', '.join(unmapped)} has no field in BPIUM_FIELDS"
            )
        if settings.tasks_queue and not QUEUE_NAME.fullmatch(settings.tasks_queue):
            reader.problems.append("TASKS_QUEUE: must be projects/{p}/locations/{l}/queues/{q}")
        if settings.secrets_backend == "secret-manager" and not settings.gcp_project:
            reader.problems.append("GCP_PROJECT: required with SECRETS_BACKEND=secret-manager")
        if not settings.google_calendar_endpoint.endswith("/calendar/v3/"):
            reader.problems.append("GOOGLE_CALENDAR_ENDPOINT: must end with /calendar/v3/")
        if reader.problems:
            raise ConfigError(
                "invalid configuration: " + "; ".join(reader.problems),
                problems=reader.problems,
            )
        return settings


class _Reader:
    """Collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, *, required: bool = False) -> str:
        value = self.env.get(name, "").strip()
        if required and not value:
            self.problems.append(f"{name}: required")
        return value

    def url(self, name: str, *, required: bool = False) -> str:
        value = self.text(name, required=required)
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                self.problems.append(f"{name}: not an http(s) URL")
        return value

    def integer(self, name: str, default: int, *, low: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}: not an integer")
            return default
        if value < low:
            self.problems.append(f"{name}: must be at least {low}")
        return value

    def choice(
        self, name: str, allowed: tuple[str, ...], default: str, *, upper: bool = False
    ) -> str:
        raw = self.text(name)
        value = raw.upper() if upper else raw
        if not value:
            return default
        if value not in allowed:
            self.problems.append(f"{name}: must be one of {', '.join(allowed)}")
            return default
        return value

    def roles(self, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        raw = self.text(name)
        roles = tuple(dict.fromkeys(r.strip() for r in raw.split(",") if r.strip()))
        unknown = [r for r in roles if r not in allowed]
        if unknown:
            self.problems.append(
                f"{name}: unknown roles {', '.join(unknown)} (allowed: {', '.join(allowed)})"
            )
            return ()
        return roles

    def zone(self, name: str, default: str) -> str:
        value = self.text(name) or default
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.problems.append(f"{name}: unknown IANA time zone {value!r}")
            return default
        return value

    def reminders(self, name: str) -> tuple[Reminder, ...]:
        raw = self.text(name)
        if not raw:
            return ()
        try:
            return parse_reminders(raw)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}")
            return ()

    def field_map(self, name: str, *, required: bool) -> FieldMap:
        raw = self.text(name, required=required)
        empty = FieldMap(*("" for _ in REQUIRED_ROLES))
        if not raw:
            return empty
        try:
            data = json.loads(raw)
        except ValueError:
            self.problems.append(f"{name}: not valid JSON")
            return empty
        if not isinstance(data, dict):
            self.problems.append(f"{name}: must be a JSON object of role to field id")
            return empty
        unknown = sorted(set(data) - set(REQUIRED_ROLES) - set(OPTIONAL_ROLES))
        if unknown:
            self.problems.append(f"{name}: unknown roles {', '.join(unknown)}")
        missing = [r for r in REQUIRED_ROLES if r not in data]
        if missing:
            self.problems.append(f"{name}: missing roles {', '.join(missing)}")
        ids: dict[str, str] = {}
        for role in (*REQUIRED_ROLES, *OPTIONAL_ROLES):
            value = data.get(role)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                self.problems.append(f"{name}: field id of {role} must be a string or number")
                continue
            ids[role] = str(value)
        if missing or len(ids) < len(data) - len(unknown):
            return empty
        return FieldMap(**ids)


def parse_reminders(raw: str) -> tuple[Reminder, ...]:
    """`popup:10,email:1440` → reminders; raises ValueError naming what is wrong."""
    reminders = []
    for item in raw.split(","):
        method, sep, minutes = item.strip().partition(":")
        if not sep or method not in REMINDER_METHODS or not minutes.strip().isdigit():
            raise ValueError(f"{item.strip()!r} is not method:minutes (method popup or email)")
        value = int(minutes)
        if value > MAX_REMINDER_MINUTES:
            raise ValueError(f"{value} minutes is outside 0..{MAX_REMINDER_MINUTES}")
        reminders.append(Reminder(method, value))
    if len(reminders) > MAX_REMINDERS:
        raise ValueError(f"at most {MAX_REMINDERS} reminders")
    return tuple(reminders)
