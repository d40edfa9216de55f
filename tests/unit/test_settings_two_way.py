"""Settings of Google → Bpium (DESIGN §10): FROM_GOOGLE, the answer fields, the push."""

from __future__ import annotations

import json

import pytest

from bpium_calendar.errors import ConfigError
from bpium_calendar.settings import Settings
from tests.unit.settings_env import BASE, FIELDS


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    found: list[str] = caught.value.details["problems"]
    return found


def test_two_way_is_off_by_default() -> None:
    s = Settings.from_env(BASE)
    assert s.from_google == ()
    assert s.from_google_fields == frozenset()
    assert s.two_way is False
    assert (s.fields.responses, s.fields.status) == (None, None)
    assert (s.calendar_push_url, s.calendar_worker_url) == ("", "")
    assert s.bpium_api_user_id is None
    assert s.push_debounce_seconds == 5
    assert s.firestore_database == "(default)"


def test_from_google_takes_spaces_and_duplicates() -> None:
    s = Settings.from_env({**BASE, "FROM_GOOGLE": " start , end,start ,, end "})
    assert s.from_google == ("start", "end")
    assert s.from_google_fields == {"3", "4"}
    assert s.two_way is True


def test_from_google_fields_are_the_mapped_ids_of_its_roles() -> None:
    env = {
        **BASE,
        "BPIUM_FIELDS": json.dumps({**FIELDS, "location": 9}),
        "FROM_GOOGLE": "title,agenda,location",
    }
    assert Settings.from_env(env).from_google_fields == {"2", "5", "9"}


@pytest.mark.parametrize(
    ("raw", "unknown"),
    [("start,colour", "colour"), ("employees", "employees"), ("end,meet", "meet")],
)
def test_an_unknown_from_google_role_is_refused(raw: str, unknown: str) -> None:
    found = problems({**BASE, "FROM_GOOGLE": raw})
    assert len(found) == 1
    assert found[0].startswith(f"FROM_GOOGLE: unknown roles {unknown} (allowed: title, start")


def test_a_from_google_role_without_a_field_is_refused() -> None:
    found = problems({**BASE, "FROM_GOOGLE": "start,location"})
    assert found == ["FROM_GOOGLE: role location has no field in BPIUM_FIELDS"]


def test_responses_and_status_roles_are_ours_to_write() -> None:
    env = {**BASE, "BPIUM_FIELDS": json.dumps({**FIELDS, "responses": "12", "status": 13})}
    s = Settings.from_env(env)
    assert (s.fields.responses, s.fields.status) == ("12", "13")
    assert s.fields.written() == {"8", "12", "13"}
    assert not {"12", "13"} & s.fields.synced()
    assert s.two_way is True
    assert s.from_google_fields == frozenset()


@pytest.mark.parametrize(("role", "field"), [("responses", "12"), ("status", "13")])
def test_either_answer_field_alone_turns_two_way_on(role: str, field: str) -> None:
    s = Settings.from_env({**BASE, "BPIUM_FIELDS": json.dumps({**FIELDS, role: field})})
    assert s.two_way is True
    assert field in s.fields.written()


def test_push_settings_are_read() -> None:
    env = {
        **BASE,
        "CALENDAR_PUSH_URL": "https://europe-west1-acme.cloudfunctions.net/on-calendar-push",
        "CALENDAR_WORKER_URL": "https://europe-west1-acme.cloudfunctions.net/sync-calendar",
        "PUSH_DEBOUNCE_SECONDS": "0",
        "BPIUM_API_USER_ID": " 77 ",
        "FIRESTORE_DATABASE": "bpium",
    }
    s = Settings.from_env(env)
    assert s.calendar_push_url.endswith("/on-calendar-push")
    assert s.calendar_worker_url.endswith("/sync-calendar")
    assert s.push_debounce_seconds == 0
    assert s.bpium_api_user_id == "77"
    assert s.firestore_database == "bpium"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("-1", "PUSH_DEBOUNCE_SECONDS: must be at least 0"),
        ("soon", "PUSH_DEBOUNCE_SECONDS: not an integer"),
    ],
)
def test_a_bad_debounce_is_refused(raw: str, problem: str) -> None:
    assert problems({**BASE, "PUSH_DEBOUNCE_SECONDS": raw}) == [problem]


@pytest.mark.parametrize("url", ["on-calendar-push", "ftp://acme.example/push", "https://"])
def test_a_push_url_that_is_not_an_url_is_refused(url: str) -> None:
    assert problems({**BASE, "CALENDAR_PUSH_URL": url}) == ["CALENDAR_PUSH_URL: not an http(s) URL"]
    assert problems({**BASE, "CALENDAR_WORKER_URL": url}) == [
        "CALENDAR_WORKER_URL: not an http(s) URL"
    ]
