"""Settings: the names of DESIGN §4, and one error that lists every problem."""

from __future__ import annotations

import json

import pytest

from bpium_calendar.errors import ConfigError
from bpium_calendar.settings import Reminder, Settings, parse_reminders
from tests.unit.settings_env import BASE, FIELDS


def test_defaults_follow_the_design() -> None:
    settings = Settings.from_env(BASE)
    assert settings.bpium_api_url == "https://acme.bpium.ru/api/v1"
    assert settings.fields.event_id == "8"
    assert settings.employees_catalog == "$users"
    assert settings.employee_email_field == "$email"
    assert settings.calendar_id == "primary"
    assert settings.time_zone == "Europe/Moscow"
    assert settings.default_duration_minutes == 60
    assert settings.default_reminders == ()
    assert settings.send_updates == "all"
    assert settings.token_refresh_margin_minutes == 40
    assert (settings.reconcile_lookback_days, settings.reconcile_lookahead_days) == (1, 90)
    assert settings.secrets_backend == "secret-manager"
    assert settings.google_calendar_endpoint == "https://www.googleapis.com/calendar/v3/"
    assert settings.google_token_uri == "https://oauth2.googleapis.com/token"
    assert settings.secret_manager_endpoint is None
    assert settings.function_timeout_seconds == 60
    assert settings.work_deadline_seconds == 50
    assert settings.employee_email_cache_minutes == 10
    assert settings.bpium_rate_window_seconds == 30
    assert (settings.tasks_service_account, settings.tasks_endpoint) == (None, None)


def test_every_variable_is_read() -> None:
    env = {
        **BASE,
        "BPIUM_FIELDS": json.dumps({**FIELDS, "location": 9, "link": "11"}),
        "BPIUM_EMPLOYEES_CATALOG": "8",
        "BPIUM_EMPLOYEE_EMAIL_FIELD": "3",
        "GOOGLE_CALENDAR_ID": "team@group.calendar.google.com",
        "TIME_ZONE": "Asia/Yekaterinburg",
        "DEFAULT_DURATION_MINUTES": "30",
        "DEFAULT_REMINDERS": "popup:10, email:1440",
        "SEND_UPDATES": "externalOnly",
        "TOKEN_REFRESH_MARGIN_MINUTES": "15",
        "RECONCILE_LOOKBACK_DAYS": "2",
        "RECONCILE_LOOKAHEAD_DAYS": "30",
        "LOG_LEVEL": "debug",
        "SECRETS_BACKEND": "local",
        "SECRETS_DIR": "/tmp/s",
        "GOOGLE_CALENDAR_ENDPOINT": "http://127.0.0.1:1/calendar/v3/",
        "GOOGLE_TOKEN_URI": "http://127.0.0.1:1/token",
        "SECRET_MANAGER_ENDPOINT": "http://127.0.0.1:2",
        "FUNCTION_TIMEOUT_SECONDS": "1800",
        "EMPLOYEE_EMAIL_CACHE_MINUTES": "0",
        "BPIUM_RATE_WINDOW_SECONDS": "3",
        "TASKS_SERVICE_ACCOUNT": "tasks@acme.iam.gserviceaccount.com",
        "TASKS_ENDPOINT": "http://127.0.0.1:3",
    }
    s = Settings.from_env(env)
    assert (s.function_timeout_seconds, s.work_deadline_seconds) == (1800, 1770)
    assert (s.employee_email_cache_minutes, s.bpium_rate_window_seconds) == (0, 3)
    assert s.tasks_queue.endswith("/queues/bpium-gcal-meetings")
    assert s.sync_worker_url.endswith("/sync-meeting")
    assert s.tasks_service_account == "tasks@acme.iam.gserviceaccount.com"
    assert s.tasks_endpoint == "http://127.0.0.1:3"
    assert s.fields.location == "9"
    assert s.fields.written() == {"8", "11"}
    assert "9" in s.fields.synced()
    assert "8" not in s.fields.synced()
    assert (s.employees_catalog, s.employee_email_field) == ("8", "3")
    assert s.calendar_id == "team@group.calendar.google.com"
    assert s.time_zone == "Asia/Yekaterinburg"
    assert s.default_duration_minutes == 30
    assert s.default_reminders == (Reminder("popup", 10), Reminder("email", 1440))
    assert s.send_updates == "externalOnly"
    assert s.token_refresh_margin_minutes == 15
    assert (s.reconcile_lookback_days, s.reconcile_lookahead_days) == (2, 30)
    assert s.log_level == "DEBUG"
    assert (s.secrets_backend, s.secrets_dir) == ("local", "/tmp/s")
    assert s.google_calendar_endpoint.startswith("http://127.0.0.1:1/")
    assert s.google_token_uri == "http://127.0.0.1:1/token"
    assert s.secret_manager_endpoint == "http://127.0.0.1:2"


def test_one_error_lists_every_problem() -> None:
    env = {
        "BPIUM_FIELDS": json.dumps({"title": "2", "colour": "x"}),
        "TIME_ZONE": "Mars/Olympus",
        "DEFAULT_DURATION_MINUTES": "soon",
        "SEND_UPDATES": "everyone",
        "DEFAULT_REMINDERS": "sms:5",
        "GOOGLE_TOKEN_URI": "ftp://x",
        "FUNCTION_TIMEOUT_SECONDS": "5",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    problems = caught.value.details["problems"]
    text = " ".join(problems)
    for name in (
        "BPIUM_URL",
        "BPIUM_MEETINGS_CATALOG",
        "unknown roles colour",
        "missing roles",
        "TIME_ZONE",
        "DEFAULT_DURATION_MINUTES",
        "SEND_UPDATES",
        "DEFAULT_REMINDERS",
        "GOOGLE_TOKEN_URI",
        "GCP_PROJECT",
        "TASKS_QUEUE: required",
        "SYNC_WORKER_URL: required",
        "FUNCTION_TIMEOUT_SECONDS",
    ):
        assert name in text
    assert caught.value.status == 500


@pytest.mark.parametrize(
    "raw", ["{", "[]", json.dumps({**FIELDS, "title": True}), json.dumps({**FIELDS, "start": ""})]
)
def test_bad_field_maps_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="BPIUM_FIELDS"):
        Settings.from_env({**BASE, "BPIUM_FIELDS": raw})


def test_calendar_endpoint_must_include_the_api_path() -> None:
    with pytest.raises(ConfigError, match="calendar/v3"):
        Settings.from_env({**BASE, "GOOGLE_CALENDAR_ENDPOINT": "http://127.0.0.1:1/"})


@pytest.mark.parametrize("raw", ["popup", "popup:x", "popup:40321", ",".join(["popup:1"] * 6)])
def test_bad_reminders_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"method:minutes|outside|at most"):
        parse_reminders(raw)


def test_negative_numbers_are_refused() -> None:
    with pytest.raises(ConfigError, match="RECONCILE_LOOKAHEAD_DAYS: must be at least 1"):
        Settings.from_env({**BASE, "RECONCILE_LOOKAHEAD_DAYS": "0"})


@pytest.mark.parametrize(
    "queue", ["meetings", "projects/p/queues/q", "projects/p/locations/l/queues/a/b", " "]
)
def test_a_queue_that_is_not_a_full_name_is_refused(queue: str) -> None:
    with pytest.raises(ConfigError, match="TASKS_QUEUE"):
        Settings.from_env({**BASE, "TASKS_QUEUE": queue + "x" if queue == " " else queue})
