"""`make doctor [FIELDS=1]`: checks a deployment's settings, secrets and reach.

Same environment variables as the functions. Each line starts with ✔ or ✘; each ✘ names
its fix, and a check that needs a failed one is reported as skipped. Secret values are never
printed. `fields` lists the Meetings catalog's fields and proposes a `BPIUM_FIELDS` value.

    python -m bpium_calendar.commands.doctor [fields]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import google.auth.transport.requests
import google.oauth2.credentials
from google.api_core import exceptions
from google.auth.exceptions import GoogleAuthError
from google.cloud.tasks_v2 import Queue

from ..bpium import BpiumClient
from ..errors import AppError, ConfigError, NotFound, UpstreamUnavailable
from ..gcalendar import CalendarClient
from ..log import LOGGER_NAME
from ..oauth import (
    CALENDAR_SCOPE,
    OAuthClient,
    ReauthorizationRequired,
    StoredToken,
    refresh_token_grant,
)
from ..retry import deadline_in
from ..secret_store import (
    API_KEY,
    BPIUM_CREDENTIALS,
    BPIUM_WEBHOOK_SECRET,
    GOOGLE_CHANNEL_TOKEN,
    GOOGLE_OAUTH_CLIENT,
    GOOGLE_OAUTH_TOKEN,
    SecretStore,
)
from ..services import secret_source
from ..settings import OPTIONAL_ROLES, REQUIRED_ROLES, WRITTEN_ROLES, Settings
from ..tasks import tasks_client
from .doctor_push import check_push

T = TypeVar("T")
MIN_SECRET_LENGTH = 16
DEADLINE_SECONDS = 20.0  # bounds each check's retries
FIELDS_MODE = "make doctor FIELDS=1"
ROLES = (*REQUIRED_ROLES, *OPTIONAL_ROLES)
# Role: (the Bpium field types the code reads for it, names in Russian or English suggesting it).
ROLE_TABLE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "title": (("text",), ("название", "тема", "заголовок", "title", "subject")),
    "start": (("date",), ("дата начала", "начало", "время начала", "start", "start date", "begin")),
    "end": (
        ("date",),
        ("дата окончания", "окончание", "конец", "время окончания", "end", "end date"),
    ),
    "agenda": (("text",), ("повестка", "описание", "agenda", "description")),
    "employees": (
        ("user", "object"),
        ("участники", "сотрудники", "participants", "employees", "attendees"),
    ),
    "guests": (
        ("contact", "text"),
        ("дополнительные участники", "гости", "внешние участники", "guests"),
    ),
    "event_id": (("text",), ("код события", "id события", "идентификатор события", "event id")),
    "location": (("text",), ("место", "место проведения", "местоположение", "location", "place")),
    "reminders": (("text", "number"), ("напоминания", "напоминание", "reminders", "reminder")),
    "meet": (("switch", "boolean"), ("meet", "google meet", "видеовстреча", "видеозвонок")),
    "calendar": (("text",), ("календарь", "calendar")),
    "link": (
        ("text",),
        ("ссылка", "ссылка на событие", "ссылка на встречу", "link", "event link", "calendar link"),
    ),
    "responses": (
        ("text",),
        ("ответы", "ответы участников", "ответы на приглашение", "responses", "rsvp"),
    ),
    "status": (("text",), ("статус в календаре", "статус события", "event status")),
}
WANTED_TYPES = {role: types for role, (types, _) in ROLE_TABLE.items()}
ROLE_NAMES = {role: names for role, (_, names) in ROLE_TABLE.items()}
SHAPES = {
    BPIUM_CREDENTIALS: 'JSON {"login", "password"} of the Bpium API user',
    BPIUM_WEBHOOK_SECRET: "the Bpium webhooks' «Секретная строка»",
    API_KEY: "the X-Api-Key of the Bpium scenarios' «Веб-запрос»",
    GOOGLE_OAUTH_CLIENT: "Google's OAuth client file, of a Desktop app",
    GOOGLE_OAUTH_TOKEN: "written by `make authorize`",
    GOOGLE_CHANNEL_TOKEN: "the token our Google push channels carry, any long random value",
}
SECRETS = tuple(SHAPES)


@dataclass
class Report:
    """Says each line and counts the ✘ ones."""

    say: Callable[[str], None]
    failures: int = 0

    def ok(self, what: str, detail: str) -> None:
        self.say(f"✔ {what}: {detail}")

    def fail(self, what: str, problem: str, fix: str) -> None:
        self.failures += 1
        self.say(f"✘ {what}: {problem} — fix: {fix}")

    def skip(self, what: str, cause: str) -> None:
        self.fail(what, f"skipped: {cause} failed", "that first")


class _Bad(Exception):
    """A secret's value is malformed: what is wrong, and the fix if not the usual one."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def parse_secret(name: str, text: str) -> Any:
    """The secret's value, checked; _Bad says what is wrong without quoting the value."""
    if name in (BPIUM_WEBHOOK_SECRET, API_KEY, GOOGLE_CHANNEL_TOKEN):
        if len(text) < MIN_SECRET_LENGTH:
            problem = f"shorter than {MIN_SECRET_LENGTH} characters" if text else "empty"
            how = f"use a long random string: `make secrets ONLY={name}` makes one"
            raise _Bad(problem, f"{how}; put it also in {SHAPES[name]}")
        return text
    try:
        data = json.loads(text)
    except ValueError:
        raise _Bad("not valid JSON") from None  # the parser's message may quote the value
    if not isinstance(data, dict):
        raise _Bad("not a JSON object")
    if name == BPIUM_CREDENTIALS:
        login, password = data.get("login"), data.get("password")
        if not (isinstance(login, str) and login and isinstance(password, str) and password):
            raise _Bad("needs string login and password")
        return login, password
    try:
        if name == GOOGLE_OAUTH_CLIENT:
            return OAuthClient.from_json(data)
        token = StoredToken.from_json(data)
    except (ConfigError, TypeError, AttributeError):  # wrong shapes inside, too
        if name == GOOGLE_OAUTH_CLIENT:
            raise _Bad("needs string client_id and client_secret") from None
        raise _Bad("needs a string refresh_token and a list of scopes") from None
    if CALENDAR_SCOPE not in token.scopes:
        raise _Bad("lacks the Calendar scope", "run `make authorize` again")
    return token


Fixes = dict[type[AppError] | str, str]


def _call(report: Report, what: str, call: Callable[[], T], fixes: Fixes) -> T | None:
    """Runs a check's call within the deadline; an error becomes a ✘ line with the fix for
    its code or, failing that, for its first class in `fixes` (which ends with AppError)."""
    try:
        with deadline_in(DEADLINE_SECONDS):
            return call()
    except AppError as exc:
        fix = fixes.get(exc.code) or next(
            f for kind, f in fixes.items() if isinstance(kind, type) and isinstance(exc, kind)
        )
        report.fail(what, exc.message, fix)
        return None


def _put(name: str) -> str:
    """How to store a good value of the secret."""
    if name == GOOGLE_OAUTH_TOKEN:
        return "run `make authorize`"
    if name == GOOGLE_OAUTH_CLIENT:
        return f"run `make authorize CLIENT_FILE=client_secret.json` ({SHAPES[name]})"
    return f"add it with `make secrets ONLY={name}` ({SHAPES[name]})"


def check_settings(
    report: Report, environ: Mapping[str, str] | None, *, fields_mode: bool = False
) -> Settings | None:
    """`fields_mode` needs only BPIUM_URL and BPIUM_MEETINGS_CATALOG of the Bpium settings."""
    settings: Settings | None = None
    problems: list[str] = []
    if fields_mode:  # it proposes BPIUM_FIELDS: a broken one must not stop it
        environ = {**(os.environ if environ is None else environ), "BPIUM_FIELDS": ""}
    try:
        settings = Settings.from_env(environ, require_bpium=not fields_mode)
    except ConfigError as exc:
        problems = list(exc.details.get("problems") or [exc.message])
    if settings is not None and fields_mode:
        needed = {
            "BPIUM_URL": settings.bpium_url,
            "BPIUM_MEETINGS_CATALOG": settings.meetings_catalog,
        }
        problems += [f"{name}: required" for name, value in needed.items() if not value]
    for problem in problems:
        name = problem.split(":", 1)[0]
        report.fail("settings", problem, f"set {name} as the README's Settings table says")
    if settings is None or problems:
        return None
    where = settings.secrets_dir if settings.secrets_backend == "local" else settings.gcp_project
    report.ok("settings", f"valid (secrets: {settings.secrets_backend}, {where})")
    return settings


def check_secrets(report: Report, settings: Settings, names: Sequence[str]) -> dict[str, Any]:
    """Reads and checks each secret; returns the parsed value of each good one."""
    try:
        store = SecretStore(secret_source(settings))
    except GoogleAuthError as exc:
        fix = "run `gcloud auth application-default login`, or set SECRETS_BACKEND=local"
        report.fail("Secret Manager", f"no Google credentials ({type(exc).__name__})", fix)
        return {}
    good: dict[str, Any] = {}
    for name in names:
        what = f"secret {name}"
        try:
            with deadline_in(DEADLINE_SECONDS):
                text = store.get(name)
        except UpstreamUnavailable as exc:
            fix = "check the network, SECRET_MANAGER_ENDPOINT and GCP_PROJECT"
            report.fail(what, exc.message, fix)
            continue
        except AppError as exc:
            why = f" ({type(exc.__cause__).__name__})" if exc.__cause__ else ""
            report.fail(what, f"missing or unreadable{why}", _put(name))
            continue
        try:
            good[name] = parse_secret(name, text)
        except _Bad as bad:
            report.fail(what, bad.problem, bad.fix or _put(name))
        else:
            report.ok(what, "present and well-formed")
    return good


def check_google(report: Report, settings: Settings, secrets: Mapping[str, Any]) -> None:
    what, calendar_id = "Google token", settings.calendar_id
    client, token = secrets.get(GOOGLE_OAUTH_CLIENT), secrets.get(GOOGLE_OAUTH_TOKEN)
    fresh = None
    if client is None or token is None:
        report.skip(what, f"secret {GOOGLE_OAUTH_CLIENT if client is None else GOOGLE_OAUTH_TOKEN}")
    else:
        request = google.auth.transport.requests.Request()
        fixes: Fixes = {
            ReauthorizationRequired: "run `make authorize` again, and publish the OAuth app "
            "(consent screen: In production) so its tokens stop expiring after 7 days",
            UpstreamUnavailable: "check the network and GOOGLE_TOKEN_URI",
            AppError: f"store in {GOOGLE_OAUTH_CLIENT} the OAuth client that issued the token",
        }
        uri = settings.google_token_uri
        fresh = _call(report, what, lambda: refresh_token_grant(client, token, uri, request), fixes)
    what = f"calendar {calendar_id}"
    if fresh is None:
        report.skip(what, "Google token")
        return
    report.ok("Google token", "refreshes (the new token is not stored)")
    credentials = google.oauth2.credentials.Credentials(token=fresh.access_token)  # type: ignore[no-untyped-call]
    calendar = CalendarClient(credentials, settings.google_calendar_endpoint)
    share = "share the calendar with the authorized Google account («Make changes to events»)"
    fixes = {
        NotFound: f"check GOOGLE_CALENDAR_ID, or {share}",
        UpstreamUnavailable: "check the network and GOOGLE_CALENDAR_ENDPOINT",
        AppError: share,
    }
    listed = _call(report, what, lambda: calendar.list_events(calendar_id, {}, limit=1), fixes)
    entries = _call(report, what, calendar.calendars, fixes) if listed is not None else None
    if entries is None:
        return
    roles = [
        e.get("accessRole")
        for e in entries
        if e.get("id") == calendar_id or (calendar_id == "primary" and e.get("primary"))
    ]
    if roles and roles[0] in ("reader", "freeBusyReader"):
        report.fail(what, f"the account may only read it ({roles[0]})", share)
    else:
        report.ok(what, "reachable" + (f" ({roles[0]})" if roles else ""))


def check_bpium(
    report: Report, settings: Settings, credentials: tuple[str, str] | None
) -> tuple[BpiumClient, dict[str, Any]] | None:
    what = f"Bpium catalog {settings.meetings_catalog}"
    if credentials is None:
        report.skip(what, f"secret {BPIUM_CREDENTIALS}")
        return None
    client = BpiumClient(settings.bpium_api_url, lambda: credentials)
    fixes: Fixes = {
        "bpium_unauthorized": f"check {BPIUM_CREDENTIALS}: login and password of the API user",
        NotFound: "check BPIUM_MEETINGS_CATALOG (the number in the catalog's address)",
        UpstreamUnavailable: f"check BPIUM_URL ({settings.bpium_url}) and the network",
        AppError: "check BPIUM_URL, and that the API user may read the catalog",
    }
    data = _call(report, what, lambda: client.get_catalog(settings.meetings_catalog), fixes)
    if data is None:
        return None
    report.ok(what, f"«{data.get('name', '')}» answers with {BPIUM_CREDENTIALS}")
    return client, data


def _fields_of(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    items = data.get("fields") or []
    return {str(f["id"]): f for f in items if isinstance(f, dict) and "id" in f}


def check_fields(report: Report, settings: Settings, client: BpiumClient, data: Any) -> None:
    fields, catalog = _fields_of(data), settings.meetings_catalog
    for role in ROLES:
        field_id: str | None = getattr(settings.fields, role)
        if not field_id:
            continue
        what, wanted = f"field {role}", " or ".join(WANTED_TYPES[role])
        field = fields.get(field_id)
        if field is None:
            fix = f'set "{role}" in BPIUM_FIELDS to a field of the catalog (`{FIELDS_MODE}`)'
            report.fail(what, f"field {field_id} is not in catalog {catalog}", fix)
            continue
        kind, name = str(field.get("type")), str(field.get("name", ""))
        if kind not in WANTED_TYPES[role]:
            fix = f'map "{role}" in BPIUM_FIELDS to a {wanted} field, or change the type in Bpium'
            report.fail(what, f"field {field_id} «{name}» is {kind}, wanted {wanted}", fix)
            continue
        text_guests = role == "guests" and kind == "text"
        note = " (e-mails as text; a contact field is better)" if text_guests else ""
        report.ok(what, f"field {field_id} «{name}» is {kind}{note}")
        if role == "employees" and kind == "user":
            check_employee_emails(report, settings, client)


def check_employee_emails(report: Report, settings: Settings, client: BpiumClient) -> None:
    """An employees (`user`) field's e-mails are read from BPIUM_EMPLOYEES_CATALOG."""
    catalog, email = settings.employees_catalog, settings.employee_email_field
    what = f"employees' e-mail in catalog {catalog}"
    fixes: Fixes = {NotFound: "check BPIUM_EMPLOYEES_CATALOG", AppError: "let the API user read it"}
    found = _call(report, what, lambda: client.get_catalog(catalog), fixes)
    if found is not None and email in _fields_of(found):
        report.ok(what, f"field {email}")
    elif found is not None:
        fix = "set BPIUM_EMPLOYEE_EMAIL_FIELD to the catalog's e-mail field"
        report.fail(what, f"field {email} is not in the catalog", fix)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower().replace("ё", "е"))


def _score(role: str, name: str) -> int:
    """3: the name is a known one; 2: it starts with one; 1: it contains one; 0: none.

    We write the fields of WRITTEN_ROLES: a lone word there («Ссылка») must be the whole name.
    """
    words, best = _words(name), 0
    for known in map(_words, ROLE_NAMES[role]):
        size = len(known)
        if words == known:
            return 3
        if size == 1 and role in WRITTEN_ROLES:
            continue
        if words[:size] == known:
            best = max(best, 2)
        elif any(words[i : i + size] == known for i in range(len(words))):
            best = max(best, 1)
    return best


def propose(fields: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Role → field id, by name and fitting type; the best match first, each field once."""
    candidates = [
        (-score, ROLES.index(role), index, role, str(field["id"]))
        for index, field in enumerate(fields)
        for role in ROLES
        if str(field.get("type")) in WANTED_TYPES[role]
        and (score := _score(role, str(field.get("name", ""))))
    ]
    chosen: dict[str, str] = {}
    for *_, role, field_id in sorted(candidates):
        if role not in chosen and field_id not in chosen.values():
            chosen[role] = field_id
    return {role: chosen[role] for role in ROLES if role in chosen}


def fields_mode(report: Report, environ: Mapping[str, str] | None) -> None:
    settings = check_settings(report, environ, fields_mode=True)
    if settings is None:
        return
    secrets = check_secrets(report, settings, [BPIUM_CREDENTIALS])
    found = check_bpium(report, settings, secrets.get(BPIUM_CREDENTIALS))
    if found is None:
        return
    fields = list(_fields_of(found[1]).values())
    for field in fields:
        report.say(f"  {field['id']:>8}  {field.get('type', '')!s:<10}  {field.get('name', '')}")
    proposal = propose(fields)
    report.say(f"BPIUM_FIELDS='{json.dumps(proposal, ensure_ascii=False)}'")
    for role in REQUIRED_ROLES:
        if role not in proposal:
            wanted = " or ".join(WANTED_TYPES[role])
            fix = f'add "{role}" to BPIUM_FIELDS by hand (a {wanted} field), or add the field'
            report.fail(f"role {role}", "no field matched by name and type", fix)


def check_queue(report: Report, settings: Settings) -> None:
    """The webhooks' Cloud Tasks queue exists, runs, and can be read with these credentials."""
    what = f"queue {settings.tasks_queue.rsplit('/', 1)[-1]}"
    endpoint = settings.tasks_endpoint
    try:
        queue = tasks_client(endpoint).get_queue(name=settings.tasks_queue, timeout=15.0)
    except exceptions.NotFound:
        report.fail(what, "does not exist", "check TASKS_QUEUE, or `make deploy` to create it")
        return
    except exceptions.PermissionDenied:
        fix = "use an account with roles/cloudtasks.viewer on the project"
        report.fail(what, "may not be read with these credentials", fix)
        return
    except Exception as exc:  # any other trouble is one ✘ line
        report.fail(
            what, f"unreachable: {type(exc).__name__}", "check TASKS_ENDPOINT and the network"
        )
        return
    if queue.state != Queue.State.RUNNING:
        fix = f"`gcloud tasks queues resume {settings.tasks_queue.rsplit('/', 1)[-1]}`"
        report.fail(what, f"is {queue.state.name}: webhooks' work waits", fix)
        return
    rate = queue.rate_limits.max_dispatches_per_second
    report.ok(
        what,
        f"running, {rate:g} tasks/s, at most {queue.rate_limits.max_concurrent_dispatches} at once",
    )


def check_all(report: Report, environ: Mapping[str, str] | None) -> None:
    settings = check_settings(report, environ)
    if settings is None:
        return
    secrets = check_secrets(report, settings, SECRETS)
    check_google(report, settings, secrets)
    check_queue(report, settings)
    check_push(report, settings)
    found = check_bpium(report, settings, secrets.get(BPIUM_CREDENTIALS))
    if found is None:
        report.skip("fields of BPIUM_FIELDS", f"Bpium catalog {settings.meetings_catalog}")
    else:
        check_fields(report, settings, *found)


def run(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
) -> int:
    parser = argparse.ArgumentParser(prog="make doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=("check", "fields"), default="check")
    args = parser.parse_args(argv)
    report = Report(say)
    (fields_mode if args.mode == "fields" else check_all)(report, environ)
    return 1 if report.failures else 0


def main() -> None:
    logging.getLogger(LOGGER_NAME).setLevel(logging.ERROR)  # retry warnings: the lines say it
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
