"""Failure paths: every upstream trouble gives a clear JSON answer, never 410, and a trace."""

from __future__ import annotations

import json
import re
import tempfile

import httplib2
import pytest

from bpium_calendar import services
from bpium_calendar.errors import UpstreamUnavailable
from bpium_calendar.event_ids import event_id_for
from bpium_calendar.gcalendar import CalendarClient
from bpium_calendar.oauth import StoredTokenCredentials
from bpium_calendar.secret_store import LocalFolderSource, SecretStore
from sandbox.common import Fault
from sandbox.stack import Stack
from tests.conftest import hook_body
from tests.integration.conftest import Functions
from tests.integration.google_helpers import insert_legacy_event
from tests.integration.test_webhooks import meeting


def fault(
    path: str,
    status: int | None,
    *,
    method: str | None = None,
    count: int = 1,
    delay: float = 0.0,
    body: object = None,
) -> Fault:
    return Fault(
        path=re.compile(path), method=method, status=status, count=count, delay=delay, body=body
    )


def log_lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{")]


def test_google_410_is_never_passed_on_to_bpium(fns: Functions) -> None:
    fns.no_retries()
    fns.stack.google.recorder.add_fault(fault("/events", 410, count=20))
    answer = fns.created(meeting(fns.stack))
    assert answer.webhook.status_code == 200  # Bpium hears "queued"
    assert answer.status_code == 503  # and the worker asks Cloud Tasks to try again
    assert answer.get_json()["error"]["code"] == "gone"


def test_secret_manager_down_answers_503(fns: Functions) -> None:
    fns.stack.secrets.recorder.add_fault(fault(":access", 503, count=50))
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "upstream_unavailable"
    assert fns.stack.google.events("primary") == []


def test_missing_secret_is_a_config_error(fns: Functions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCP_PROJECT", "project-without-secrets")
    services.reset()
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 500
    assert answer.get_json()["error"]["code"] == "secret_missing"


def test_wrong_bpium_password_is_retried_later_naming_the_secret(fns: Functions) -> None:
    fns.no_retries()
    fns.stack.put_secret(
        "bpium-credentials", json.dumps({"login": "api@acme.example", "password": "nope"})
    )
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 503  # an operator can fix it: the task waits for that
    assert "bpium-credentials" in answer.get_json()["error"]["message"]


def test_bpium_credentials_secret_must_have_login_and_password(fns: Functions) -> None:
    fns.no_retries()
    fns.stack.put_secret("bpium-credentials", json.dumps({"user": "x"}))
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 503
    assert "login and password" in answer.get_json()["error"]["message"]


def test_bpium_5xx_is_retried_then_answers_503(fns: Functions) -> None:
    stack = fns.stack
    stack.bpium.recorder.add_fault(fault("/catalogs/7$", 502, count=1))
    assert fns.created(meeting(stack)).status_code == 200
    services.reset()
    fns.no_retries()
    stack.bpium.recorder.add_fault(fault("/catalogs/7$", 503, count=50))
    answer = fns.created(meeting(stack))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "upstream_unavailable"


def test_bpium_unreachable_answers_503(fns: Functions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPIUM_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    services.reset()
    fns.no_retries()
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 503
    assert "unreachable" in answer.get_json()["error"]["message"]


def test_bpium_refusing_the_write_back_is_retried_later(fns: Functions) -> None:
    fns.no_retries()
    fns.stack.bpium.recorder.add_fault(
        fault("/records/", 400, method="PATCH", body={"error": "bad"})
    )
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "upstream_error"


def test_a_created_whose_record_is_deleted_meanwhile_leaves_no_live_event(
    fns: Functions,
) -> None:
    """Bpium delivers in parallel: the delete's webhook may have found no event yet. The
    write-back's 404 tells us, and the event just made is cancelled."""
    stack = fns.stack
    record = meeting(stack)
    values = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.delete_record(stack.meetings, record, fire=False)
    answer = fns.post("on_meeting_created", hook_body("record.created", record, values))
    assert answer.status_code == 200
    assert answer.get_json() == {
        "status": "ignored",
        "reason": "record_gone",
        "calendarId": "primary",
    }
    assert stack.google.event("primary", event_id_for(stack.meetings, record))["status"] == (
        "cancelled"
    )


def test_invalid_stored_event_id_is_replaced_by_ours(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack, **{"8": "not a google id!"})
    answer = fns.created(record).get_json()
    assert answer["eventId"] == event_id_for(stack.meetings, record)
    assert stack.bpium.record(stack.meetings, record)["values"]["8"] == answer["eventId"]


def test_stored_event_missing_from_google_is_recreated_under_our_id(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack, **{"8": "vanishedlegacyevent"})
    answer = fns.created(record).get_json()
    assert answer["status"] == "created"
    assert answer["eventId"] == event_id_for(stack.meetings, record)
    assert stack.bpium.record(stack.meetings, record)["values"]["8"] == answer["eventId"]


def test_delete_of_an_adopted_legacy_event_finds_it_by_our_marks(fns: Functions) -> None:
    stack = fns.stack
    legacy = "oldbpmnevent00002"
    record = meeting(stack, **{"8": legacy})
    insert_legacy_event(stack, legacy, adopted_by=record)
    assert fns.created(record).get_json()["eventId"] == legacy  # it carries our marks
    answer = fns.deleted(record).get_json()
    assert answer == {"status": "cancelled", "eventId": legacy, "calendarId": "primary"}
    assert stack.google.event("primary", legacy)["status"] == "cancelled"


def test_unexpected_exception_is_500_json_with_traceback_in_the_log(
    fns: Functions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("bpium_calendar.intake.Intake.handle", boom)
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 500
    assert answer.get_json() == {
        "error": {"code": "internal", "message": "internal error; see the logs"}
    }
    failed = [
        x for x in log_lines(capsys.readouterr().out) if x["message"] == "on_meeting_created_failed"
    ]
    assert "RuntimeError: unexpected" in failed[0]["stack_trace"]


def test_an_unexpected_exception_in_the_worker_asks_for_a_retry_with_its_traceback(
    fns: Functions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    fns.no_retries()
    monkeypatch.setattr("bpium_calendar.sync.MeetingSync.run", boom)
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "internal"
    failed = [x for x in log_lines(capsys.readouterr().out) if x["message"] == "sync_retry_later"]
    assert "RuntimeError: unexpected" in failed[0]["stack_trace"]
    assert failed[0]["record_id"]


def test_trace_and_execution_id_reach_every_log_line(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    fns.post(
        "on_meeting_created",
        hook_body("record.created", meeting(fns.stack), fns.stack.bpium.record("7", "1")["values"]),
        **{"X-Cloud-Trace-Context": f"{trace}/123;o=1", "Function-Execution-Id": "exec-42"},
    )
    lines = log_lines(capsys.readouterr().out)
    ours = [x for x in lines if x.get("logger") == "bpium_calendar"]
    assert {x["logging.googleapis.com/labels"]["function"] for x in ours} == {
        "on_meeting_created",
        "sync_meeting",
    }
    for line in ours:  # the task carries the trace on to the worker's lines
        assert line["logging.googleapis.com/trace"] == f"projects/local-project/traces/{trace}"
        if line["logging.googleapis.com/labels"]["function"] == "on_meeting_created":
            assert line["logging.googleapis.com/labels"]["execution_id"] == "exec-42"
    fns.post(
        "on_meeting_deleted",
        hook_body("record.deleted", "1"),
        traceparent=f"00-{trace}-00f067aa0ba902b7-01",
    )
    lines = log_lines(capsys.readouterr().out)
    queued = [x for x in lines if x.get("message") == "webhook_queued"]
    assert queued[0]["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    deleted = [x for x in lines if x.get("message") == "event_cancelled"]
    assert deleted[0]["logging.googleapis.com/trace"] == f"projects/local-project/traces/{trace}"


def test_no_secret_value_reaches_the_logs(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = fns.stack
    stack.store_token(lifetime=60)  # forces a refresh, which handles every credential
    fns.created(meeting(stack))
    fns.post("on_meeting_created", b"{}", signature="bad")
    out = capsys.readouterr().out
    for secret in (
        "local-webhook-secret-string",
        "bpium-demo-password",
        "local-client-secret",
        "local-refresh-token",
        "local-api-key-0123456789",
    ):
        assert secret not in out
    assert "stored_token_expired" in out


def test_local_secrets_backend_serves_the_same_functions(
    fns: Functions, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    stack = fns.stack
    folder = LocalFolderSource(str(tmp_path))
    for name in (
        "bpium-credentials",
        "bpium-webhook-secret",
        "api-key",
        "google-oauth-client",
        "google-oauth-token",
    ):
        folder.write(name, stack.secrets.access("local-project", name).decode())
    monkeypatch.setenv("SECRETS_BACKEND", "local")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    services.reset()
    stack.secrets.recorder.reset_calls()
    assert fns.created(meeting(stack)).get_json()["status"] == "created"
    assert stack.secrets.recorder.snapshot() == []


def test_calendar_timeouts_are_retried_then_reported_unavailable(env: Stack) -> None:
    """The adapter alone, with a short socket timeout, against a stand-in that stalls."""
    stack = env
    folder = LocalFolderSource(tempfile.mkdtemp())
    folder.write(
        "google-oauth-token", stack.secrets.access("local-project", "google-oauth-token").decode()
    )
    store = SecretStore(folder)
    client = CalendarClient(
        StoredTokenCredentials(store, stack.env["GOOGLE_TOKEN_URI"]),
        stack.env["GOOGLE_CALENDAR_ENDPOINT"],
        http_factory=lambda: httplib2.Http(timeout=0.3),
    )
    # Its own calendar: a stalled request finishing after the test cannot touch the next one's.
    stack.google.add_calendar("stalls@group.calendar.google.com")
    stack.google.recorder.add_fault(fault("/events", None, count=1, delay=0.6))
    body = {
        "summary": "x",
        "start": {"dateTime": "2026-12-01T10:00:00Z"},
        "end": {"dateTime": "2026-12-01T11:00:00Z"},
        "id": "timeoutagain01",
    }
    created = client.insert(
        "stalls@group.calendar.google.com", body, send_updates="none"
    )  # first try stalls, second works
    assert created["id"] == "timeoutagain01"
    stack.google.recorder.add_fault(fault("/events", None, count=10, delay=0.6))
    with pytest.raises(UpstreamUnavailable):
        client.insert(
            "stalls@group.calendar.google.com",
            {**body, "id": "timeoutagain02"},
            send_updates="none",
        )
