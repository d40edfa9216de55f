"""The doctor command against the stand-ins: all ✔ when sound, and each ✘ naming its fix."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import functions_framework
import pytest
import requests

from bpium_calendar.commands.doctor import run
from sandbox import bpium
from sandbox.stack import CLIENT_ID, FIRESTORE_DATABASE, PROJECT, REFRESH_TOKEN, SCOPES, Stack
from tests.conftest import MAIN, TwoWay

SECRET_NAMES = (
    "bpium-credentials",
    "bpium-webhook-secret",
    "api-key",
    "google-oauth-client",
    "google-oauth-token",
    "google-channel-token",
)
PUT = {
    "bpium-credentials": "— fix: add it with `make secrets ONLY=bpium-credentials` "
    '(JSON {"login", "password"} of the Bpium API user)',
    "bpium-webhook-secret": "— fix: add it with `make secrets ONLY=bpium-webhook-secret` "
    "(the Bpium webhooks' «Секретная строка»)",
    "api-key": "— fix: add it with `make secrets ONLY=api-key` "
    "(the X-Api-Key of the Bpium scenarios' «Веб-запрос»)",
    "google-oauth-client": "— fix: run `make authorize CLIENT_FILE=client_secret.json` "
    "(Google's OAuth client file, of a Desktop app)",
    "google-oauth-token": "— fix: run `make authorize`",
    "google-channel-token": "— fix: add it with `make secrets ONLY=google-channel-token` "
    "(the token our Google push channels carry, any long random value)",
}


def secret_values(stack: Stack) -> list[str]:
    """Every secret value the stand-ins hold now, and the strings inside the JSON ones."""
    values: list[str] = []
    for name in SECRET_NAMES:
        text = stack.secrets.access(PROJECT, name).decode()
        values.append(text)
        try:
            data = json.loads(text)
        except ValueError:
            continue
        inner = data.get("installed", data) if isinstance(data, dict) else {}
        if isinstance(inner, dict):
            values += [v for v in inner.values() if isinstance(v, str) and len(v) >= 8]
    return values


def doctor(stack: Stack, *argv: str, **changes: str | None) -> tuple[int, list[str]]:
    """Runs the command with the stack's environment changed (None removes a variable)."""
    environ = {**stack.env, **changes}
    said: list[str] = []
    code = run(
        list(argv), environ={k: v for k, v in environ.items() if v is not None}, say=said.append
    )
    output = "\n".join(said)
    for value in [*secret_values(stack), bpium.DEMO_PASSWORD]:
        assert value not in output, "a secret value was printed"
    return code, said


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("✘")]


def line_of(lines: list[str], start: str) -> str:
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def catalog_fields(stack: Stack) -> list[dict]:
    """The Meetings catalog's fields, as the API serves them."""
    url = f"{stack.bpium_url}/api/v1/catalogs/{stack.meetings}"
    auth = (bpium.DEMO_LOGIN, bpium.DEMO_PASSWORD)
    return requests.get(url, auth=auth, timeout=10).json()["fields"]


def test_seeded_stack_is_all_green(two_way_servers: TwoWay, env: Stack) -> None:
    watched = functions_framework.create_app(target="watch_calendars", source=MAIN)
    assert watched.test_client().post("/").status_code == 200
    assert env.tasks.wait_idle(20.0)  # the first sync leaves the calendar's token
    code, lines = doctor(env)
    assert code == 0, lines
    assert all(line.startswith("✔ ") for line in lines), lines
    assert line_of(lines, "✔ Google token:") == (
        "✔ Google token: refreshes (the new token is not stored)"
    )
    assert "✔ calendar primary: reachable (owner)" in lines
    assert "✔ queue bpium-gcal-sync: running, 500 tasks/s, at most 8 at once" in lines
    assert "✔ field start: field 3 «Дата начала» is date" in lines
    assert "✔ employees' e-mail in catalog $users: field $email" in lines
    for name in SECRET_NAMES:
        assert f"✔ secret {name}: present and well-formed" in lines


def test_refresh_does_not_store_a_new_token(env: Stack) -> None:
    before = env.secrets.versions(PROJECT, "google-oauth-token")
    assert doctor(env)[0] == 0
    assert env.secrets.versions(PROJECT, "google-oauth-token") == before


def test_invalid_settings_give_one_line_each_and_stop(env: Stack) -> None:
    code, lines = doctor(env, BPIUM_FIELDS='{"title": "2"}', TIME_ZONE="Mars/Olympus")
    assert code == 1
    assert len(lines) == 2, lines  # nothing after the settings
    zone = line_of(lines, "✘ settings: TIME_ZONE")
    assert "unknown IANA time zone" in zone
    assert zone.endswith("— fix: set TIME_ZONE as the README's Settings table says")
    fields = line_of(lines, "✘ settings: BPIUM_FIELDS")
    assert "missing roles start, end, agenda, employees, guests, event_id" in fields
    assert "fix: set BPIUM_FIELDS" in fields


@pytest.fixture
def folder(env: Stack, tmp_path: Path) -> Path:
    """Every secret copied from Secret Manager to a local folder."""
    for name in SECRET_NAMES:
        (tmp_path / name).write_bytes(env.secrets.access(PROJECT, name))
    return tmp_path


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_missing_local_secret_names_the_command_that_adds_it(
    env: Stack, folder: Path, name: str
) -> None:
    (folder / name).unlink()
    code, lines = doctor(env, SECRETS_BACKEND="local", SECRETS_DIR=str(folder))
    assert code == 1
    [line] = failures([x for x in lines if x.startswith("✘ secret")])
    assert line.startswith(f"✘ secret {name}: missing or unreadable")
    assert line.endswith(PUT[name])
    assert sum(x.startswith("✔ secret") for x in lines) == len(SECRET_NAMES) - 1


def test_missing_secrets_in_secret_manager_skip_what_needs_them(env: Stack) -> None:
    code, lines = doctor(env, GCP_PROJECT="empty-project")
    assert code == 1
    for name in SECRET_NAMES:
        line = line_of(lines, f"✘ secret {name}:")
        assert line.startswith(f"✘ secret {name}: missing or unreadable (NotFound) — fix: ")
        assert line.endswith(PUT[name])
    assert line_of(lines, "✘ Google token:") == (
        "✘ Google token: skipped: secret google-oauth-client failed — fix: that first"
    )
    assert line_of(lines, "✘ calendar primary:").startswith(
        "✘ calendar primary: skipped: Google token failed"
    )
    assert line_of(lines, "✘ Bpium catalog 7:").startswith(
        "✘ Bpium catalog 7: skipped: secret bpium-credentials failed"
    )
    assert line_of(lines, "✘ fields of BPIUM_FIELDS:").startswith(
        "✘ fields of BPIUM_FIELDS: skipped: Bpium catalog 7 failed"
    )
    # Only what needs no secret passes: the settings, the queue and Firestore (the caller's
    # own rights).
    passed = [x for x in lines if x.startswith("✔")]
    own = ("settings", "queue", "Firestore")
    assert [x for x in passed if not any(word in x for word in own)] == []


MALFORMED = [
    ("bpium-credentials", "login=api;password=zzzzzzzzzz", "not valid JSON", 'JSON {"login"'),
    ("bpium-credentials", '["api", "zzzzzzzzzz"]', "not a JSON object", 'JSON {"login"'),
    ("bpium-credentials", '{"login": "api@acme.example"}', "needs string login and password", ""),
    ("bpium-webhook-secret", "short-secret", "shorter than 16 characters", "«Секретная строка»"),
    ("api-key", "key-0123456", "shorter than 16 characters", "X-Api-Key"),
    (
        "google-oauth-client",
        '{"client_id": "x.apps"}',
        "needs string client_id and client_secret",
        "",
    ),
    (
        "google-oauth-client",
        '{"installed": "zzzz"}',
        "needs string client_id and client_secret",
        "",
    ),
    (
        "google-oauth-token",
        '{"access_token": "ya29.zzzz"}',
        "needs a string refresh_token and a list of scopes",
        "",
    ),
    (
        "google-oauth-token",
        '{"refresh_token": "1//zzzz", "scopes": 5}',
        "needs a string refresh_token and a list of scopes",
        "",
    ),
    (
        "google-oauth-token",
        '{"refresh_token": "1//zzzzzzzz", "scopes": ["email"]}',
        "lacks the Calendar scope",
        "make authorize",
    ),
]


@pytest.mark.parametrize(("name", "value", "problem", "fix"), MALFORMED)
def test_malformed_secret_says_what_is_wrong_and_the_fix(
    env: Stack, name: str, value: str, problem: str, fix: str
) -> None:
    env.put_secret(name, value)
    code, lines = doctor(env)
    assert code == 1
    line = line_of(lines, f"✘ secret {name}:")
    assert line.startswith(f"✘ secret {name}: {problem} — fix: ")
    assert fix in line.split("— fix:")[1]
    assert "zzzz" not in "\n".join(lines)  # no part of the bad value either
    if name in ("bpium-webhook-secret", "api-key"):
        assert f"use a long random string: `make secrets ONLY={name}` makes one" in line
    elif "login" in fix or not fix:
        assert line.endswith(PUT[name])


def test_empty_secret_is_reported_as_empty(env: Stack, folder: Path) -> None:
    (folder / "api-key").write_text("")
    _, lines = doctor(env, SECRETS_BACKEND="local", SECRETS_DIR=str(folder))
    assert line_of(lines, "✘ secret api-key:").startswith(
        "✘ secret api-key: empty — fix: use a long random string"
    )


def test_revoked_refresh_token_says_to_authorize_again(env: Stack) -> None:
    env.google.revoke_refresh_token(REFRESH_TOKEN)
    try:
        code, lines = doctor(env)
    finally:
        env.google.add_refresh_token(REFRESH_TOKEN, CLIENT_ID, SCOPES)
    assert code == 1
    line = line_of(lines, "✘ Google token:")
    assert "refused the refresh token" in line
    assert "— fix: run `make authorize` again, and publish the OAuth app" in line
    assert line_of(lines, "✘ calendar primary:").startswith(
        "✘ calendar primary: skipped: Google token failed"
    )
    assert len(failures(lines)) == 2  # Bpium is checked all the same
    assert "✔ field title: field 2 «Название» is text" in lines


def test_unknown_calendar_says_check_the_id_or_share_it(env: Stack) -> None:
    code, lines = doctor(env, GOOGLE_CALENDAR_ID="nobody@group.calendar.google.com")
    assert code == 1
    [line] = failures(lines)
    assert line.startswith("✘ calendar nobody@group.calendar.google.com: ")
    assert "404" in line
    assert "— fix: check GOOGLE_CALENDAR_ID, or share the calendar with the authorized" in line


def test_read_only_calendar_says_share_it_with_changes(env: Stack) -> None:
    env.google.add_calendar("shared@group.calendar.google.com", "Shared", access_role="reader")
    code, lines = doctor(env, GOOGLE_CALENDAR_ID="shared@group.calendar.google.com")
    assert code == 1
    [line] = failures(lines)
    assert "the account may only read it (reader)" in line
    assert "fix: share the calendar" in line
    assert "«Make changes to events»" in line


def test_wrong_bpium_password_says_check_the_credentials(env: Stack) -> None:
    env.put_secret("bpium-credentials", json.dumps({"login": bpium.DEMO_LOGIN, "password": "nope"}))
    code, lines = doctor(env)
    assert code == 1
    line = line_of(lines, "✘ Bpium catalog 7:")
    assert "401" in line
    assert "— fix: check bpium-credentials: login and password of the API user" in line
    assert line_of(lines, "✘ fields of BPIUM_FIELDS:").startswith(
        "✘ fields of BPIUM_FIELDS: skipped: Bpium catalog 7 failed"
    )


def test_unknown_catalog_says_check_the_catalog_id(env: Stack) -> None:
    code, lines = doctor(env, BPIUM_MEETINGS_CATALOG="999")
    assert code == 1
    line = line_of(lines, "✘ Bpium catalog 999:")
    assert "404" in line
    assert "— fix: check BPIUM_MEETINGS_CATALOG" in line


def test_unreachable_bpium_says_check_the_url(env: Stack) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, lines = doctor(env, BPIUM_URL=f"http://127.0.0.1:{port}")
    assert code == 1
    line = line_of(lines, "✘ Bpium catalog 7:")
    assert "unreachable" in line
    assert f"— fix: check BPIUM_URL (http://127.0.0.1:{port}) and the network" in line


def test_mapped_field_missing_from_the_catalog(env: Stack) -> None:
    roles = {**bpium.ROLES, "location": "99"}
    code, lines = doctor(env, BPIUM_FIELDS=json.dumps(roles))
    assert code == 1
    [line] = failures(lines)
    assert line.startswith("✘ field location: field 99 is not in catalog 7 — fix: ")
    assert 'set "location" in BPIUM_FIELDS to a field of the catalog' in line


def test_field_of_the_wrong_type_names_found_and_wanted(env: Stack) -> None:
    fields = catalog_fields(env)
    fields[1]["type"] = "text"  # «Дата начала»
    fields[4]["type"] = "contact"  # «Участники»
    env.bpium.add_catalog(env.meetings, "Встречи", fields)
    code, lines = doctor(env)
    assert code == 1
    assert failures(lines) == [
        '✘ field start: field 3 «Дата начала» is text, wanted date — fix: map "start" in '
        "BPIUM_FIELDS to a date field, or change the type in Bpium",
        "✘ field employees: field 6 «Участники» is contact, wanted user or object — fix: map "
        '"employees" in BPIUM_FIELDS to a user or object field, or change the type in Bpium',
    ]


def test_optional_roles_with_fitting_types_pass(env: Stack) -> None:
    fields = catalog_fields(env)
    fields[5]["type"] = "text"  # guests as a text field of e-mails: the code reads it
    fields += [
        {"id": "11", "name": "Напоминания", "type": "number"},
        {"id": "12", "name": "Видеовстреча", "type": "switch"},
        {"id": "13", "name": "Календарь", "type": "text"},
        {"id": "14", "name": "Ссылка", "type": "text"},
    ]
    env.bpium.add_catalog(env.meetings, "Встречи", fields)
    roles = {**bpium.ROLES, "reminders": "11", "meet": "12", "calendar": "13", "link": "14"}
    code, lines = doctor(env, BPIUM_FIELDS=json.dumps(roles))
    assert code == 0, lines
    assert "✔ field meet: field 12 «Видеовстреча» is switch" in lines
    assert "✔ field reminders: field 11 «Напоминания» is number" in lines
    assert line_of(lines, "✔ field guests:").endswith(
        "(e-mails as text; a contact field is better)"
    )


def test_meet_field_that_is_not_a_switch_fails(env: Stack) -> None:
    fields = [*catalog_fields(env), {"id": "12", "name": "Meet", "type": "dropdown"}]
    env.bpium.add_catalog(env.meetings, "Встречи", fields)
    code, lines = doctor(env, BPIUM_FIELDS=json.dumps({**bpium.ROLES, "meet": "12"}))
    assert code == 1
    [line] = failures(lines)
    assert line.startswith("✘ field meet: field 12 «Meet» is dropdown, wanted switch or boolean")


def test_employee_email_field_missing_says_which_setting(env: Stack) -> None:
    code, lines = doctor(env, BPIUM_EMPLOYEE_EMAIL_FIELD="$mail")
    assert code == 1
    [line] = failures(lines)
    assert line == (
        "✘ employees' e-mail in catalog $users: field $mail is not in the catalog — fix: set "
        "BPIUM_EMPLOYEE_EMAIL_FIELD to the catalog's e-mail field"
    )


def proposal_of(lines: list[str]) -> dict[str, str]:
    line = line_of(lines, "BPIUM_FIELDS='")
    assert line.endswith("'")
    return json.loads(line[len("BPIUM_FIELDS='") : -1])


@pytest.mark.parametrize("fields", [None, "{not json"])
def test_fields_mode_proposes_the_seeded_role_map(env: Stack, fields: str | None) -> None:
    code, lines = doctor(env, "fields", BPIUM_FIELDS=fields)
    assert code == 0, lines
    assert proposal_of(lines) == bpium.ROLES
    listing = [line.split() for line in lines if line.startswith("  ")]
    assert listing[0] == ["2", "text", "Название"]
    assert ["10", "object", "Сотрудники", "(каталог)"] in listing
    assert all(line.startswith(("✔", "  ", "BPIUM_FIELDS=")) for line in lines)


def test_fields_mode_matches_english_names_and_optional_roles(env: Stack) -> None:
    env.bpium.add_catalog(
        env.meetings,  # seeded again for the next test
        "Meetings",
        [
            {"id": "title", "name": "Subject", "type": "text"},
            {"id": "notes", "name": "Start notes", "type": "text"},
            {"id": "startDate", "name": "Start", "type": "date"},
            {"id": "endDate", "name": "End date", "type": "date"},
            {"id": "desc", "name": "Description", "type": "text"},
            {"id": "people", "name": "Participants", "type": "object"},
            {"id": "guests", "name": "Guests", "type": "contact"},
            {"id": "gid", "name": "Google event ID", "type": "text"},
            {"id": "where", "name": "Location", "type": "text"},
            {"id": "remind", "name": "Reminders", "type": "number"},
            {"id": "meet", "name": "Google Meet", "type": "switch"},
            {"id": "cal", "name": "Calendar", "type": "text"},
            {"id": "url", "name": "Event link", "type": "text"},
        ],
    )
    code, lines = doctor(env, "fields", BPIUM_FIELDS=None)
    assert code == 0, lines
    assert proposal_of(lines) == {
        "title": "title",
        "start": "startDate",
        "end": "endDate",
        "agenda": "desc",
        "employees": "people",
        "guests": "guests",
        "event_id": "gid",
        "location": "where",
        "reminders": "remind",
        "meet": "meet",
        "calendar": "cal",
        "link": "url",
    }


def test_fields_mode_lists_required_roles_it_could_not_match(env: Stack) -> None:
    fields = [f for f in catalog_fields(env) if f["id"] not in ("7", "8")]
    fields.append({"id": "15", "name": "Ссылка на документ", "type": "text"})
    env.bpium.add_catalog(env.meetings, "Встречи", fields)
    code, lines = doctor(env, "fields")
    assert code == 1
    proposal = proposal_of(lines)
    assert "guests" not in proposal
    assert "link" not in proposal  # we would overwrite it: a lone «Ссылка» must be the name
    assert failures(lines) == [
        '✘ role guests: no field matched by name and type — fix: add "guests" to BPIUM_FIELDS '
        "by hand (a contact or text field), or add the field",
        '✘ role event_id: no field matched by name and type — fix: add "event_id" to '
        "BPIUM_FIELDS by hand (a text field), or add the field",
    ]


def test_fields_mode_needs_the_bpium_url(env: Stack) -> None:
    code, lines = doctor(env, "fields", BPIUM_URL=None, BPIUM_FIELDS=None)
    assert code == 1
    assert lines == [
        "✘ settings: BPIUM_URL: required — fix: set BPIUM_URL as the README's Settings table says"
    ]


def test_a_missing_queue_says_check_the_name_or_deploy(env: Stack) -> None:
    code, lines = doctor(env, TASKS_QUEUE="projects/local-project/locations/local/queues/nowhere")
    assert code == 1
    assert line_of(lines, "✘ queue nowhere:") == (
        "✘ queue nowhere: does not exist — fix: check TASKS_QUEUE, or `make deploy` to create it"
    )


def test_before_the_first_watch_doctor_says_to_run_it_without_failing(env: Stack) -> None:
    code, lines = doctor(env)
    assert code == 0, lines
    assert line_of(lines, "✔ Firestore database bpium-gcal:") == (
        "✔ Firestore database bpium-gcal: readable, 0 calendar(s) watched"
    )
    assert line_of(lines, "! push channels:").startswith(
        "! push channels: none yet (a fresh deployment) — fix: run the job watch_calendars"
    )


def test_an_expired_push_channel_fails_with_the_fix(two_way_servers: TwoWay, env: Stack) -> None:
    watched = functions_framework.create_app(target="watch_calendars", source=MAIN)
    assert watched.test_client().post("/").status_code == 200
    assert env.tasks.wait_idle(20.0)
    from google.cloud import firestore

    client = firestore.Client(project=PROJECT, database=FIRESTORE_DATABASE)
    [doc] = list(client.collection("calendars").stream())
    doc.reference.update({"expiration": 0})
    code, lines = doctor(env)
    assert code == 1
    [line] = failures(lines)
    assert line.startswith("✘ push channel of primary: none live")
    assert "watch_calendars" in line


def test_an_unreachable_firestore_is_one_failure_naming_the_database(
    env: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    code, lines = doctor(env)
    assert code == 1
    [line] = failures(lines)
    assert line.startswith("✘ Firestore database bpium-gcal:")
