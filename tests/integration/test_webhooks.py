"""The three webhook functions against the stand-ins: every answer and rule of DESIGN §3."""

from __future__ import annotations

import json

import pytest

from bpium_calendar.event_ids import event_id_for
from bpium_calendar.two_way import signature
from sandbox.stack import Stack
from tests.conftest import hook_body, sign
from tests.integration.conftest import Functions

START, END = "2026-12-01T07:00:00.000Z", "2026-12-01T08:00:00.000Z"


def meeting(stack: Stack, **values: object) -> str:
    """A meeting record in the Bpium stand-in (no webhook fired: the test delivers it)."""
    base = {
        "2": "Планёрка",
        "3": START,
        "4": END,
        "5": "Повестка",
        "6": [{"id": "1", "title": "Анна"}, {"id": "2", "title": "Иван"}],
        "7": [{"contact": "guest@partner.example", "comment": ""}],
    }
    base.update(dict(values.items()))
    return stack.bpium.put_record(stack.meetings, base, fire=False)


def test_create_makes_the_event_and_writes_its_id_back(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    answer = fns.created(record)
    assert answer.status_code == 200, answer.get_json()
    event_id = event_id_for(stack.meetings, record)
    assert answer.get_json() == {"status": "created", "eventId": event_id, "calendarId": "primary"}
    event = stack.google.event("primary", event_id)
    assert event["summary"] == "Планёрка"
    assert event["start"] == {"dateTime": "2026-12-01T10:00:00+03:00", "timeZone": "Europe/Moscow"}
    assert [a["email"] for a in event["attendees"]] == [
        "anna@acme.example",
        "ivan@acme.example",
        "guest@partner.example",
    ]
    private = event["extendedProperties"]["private"]
    assert private.pop("bpiumSig") == signature(event)  # what we wrote, role by role
    assert private == {"bpiumCatalogId": stack.meetings, "bpiumRecordId": record}
    assert stack.bpium.record(stack.meetings, record)["values"]["8"] == event_id
    assert stack.google.notifications[-1]["sendUpdates"] == "all"


def test_warm_create_costs_one_calendar_call_and_one_bpium_write_no_secrets(fns: Functions) -> None:
    stack = fns.stack
    assert fns.created(meeting(stack)).status_code == 200  # warms the instance
    record = meeting(stack)
    fns.reset_calls()
    assert fns.created(record).status_code == 200
    google_calls = stack.google.recorder.snapshot()
    bpium_calls = stack.bpium.recorder.snapshot()
    assert [(c.method, c.status) for c in google_calls] == [("POST", 200)]
    # The employees' e-mails are cached: the write-back is Bpium's only call.
    assert [c.method for c in bpium_calls] == ["PATCH"]
    assert stack.secrets.recorder.snapshot() == []


def test_employees_emails_are_read_again_once_the_cache_expires(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMPLOYEE_EMAIL_CACHE_MINUTES", "0")
    stack = fns.stack
    fns.created(meeting(stack))
    fns.reset_calls()
    assert fns.created(meeting(stack)).status_code == 200
    bpium_calls = stack.bpium.recorder.snapshot()
    assert [c.method for c in bpium_calls] == ["GET", "PATCH"]
    assert "id=1" in bpium_calls[0].query
    assert "id=2" in bpium_calls[0].query


def test_duplicate_created_delivery_gives_one_event(fns: Functions) -> None:
    record = meeting(fns.stack)
    first, second = fns.created(record).get_json(), fns.created(record).get_json()
    assert first["status"] == "created"
    assert second["status"] == "updated"
    assert second["eventId"] == first["eventId"]
    assert len(fns.stack.google.events("primary")) == 1


def test_update_for_a_record_never_seen_creates_the_event(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    full = stack.bpium.record(stack.meetings, record)["values"]
    answer = fns.updated(record, {"2": "Новое название"}, {**full, "2": "Старое"})
    assert answer.get_json()["status"] == "created"
    # ...and the late `created` converges on the same event.
    late = fns.created(record).get_json()
    assert late["status"] == "updated"
    events = stack.google.events("primary")
    assert len(events) == 1
    assert events[0]["summary"] == "Планёрка"


def test_update_changes_the_event_by_the_stored_id(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    full = stack.bpium.record(stack.meetings, record)["values"]
    change = {"3": "2026-12-02T07:00:00.000Z", "4": "2026-12-02T09:00:00.000Z"}
    stack.bpium.update_record(stack.meetings, record, change, fire=False)
    answer = fns.updated(record, change, full)
    assert answer.get_json() == {"status": "updated", "eventId": event_id, "calendarId": "primary"}
    event = stack.google.event("primary", event_id)
    assert event["end"]["dateTime"] == "2026-12-02T12:00:00+03:00"


def test_update_of_only_event_id_field_makes_no_calls(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    full = stack.bpium.record(stack.meetings, record)["values"]
    fns.reset_calls()
    answer = fns.updated(record, {"8": event_id}, {**full, "8": None})
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "own_write_back"}
    assert fns.calls() == {"google": 0, "bpium": 0, "secrets": 0}


def test_write_back_is_skipped_when_the_record_holds_the_id(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    fns.created(record)
    fns.reset_calls()
    assert fns.created(record).get_json()["status"] == "updated"
    # No write-back (the record holds the id), no read (the e-mails are cached).
    assert [c.method for c in stack.bpium.recorder.snapshot()] == []


def test_an_adopted_legacy_event_id_keeps_its_event(fns: Functions) -> None:
    stack = fns.stack
    legacy = "oldbpmnevent00001"
    stack.google.add_calendar("team@group.calendar.google.com")  # unrelated calendar stays empty
    from tests.integration.google_helpers import insert_legacy_event

    record = meeting(stack, **{"8": legacy})
    insert_legacy_event(stack, legacy, adopted_by=record)
    fns.reset_calls()
    answer = fns.created(record).get_json()
    assert answer == {"status": "updated", "eventId": legacy, "calendarId": "primary"}
    assert len(stack.google.events("primary")) == 1
    assert stack.google.event("primary", legacy)["summary"] == "Планёрка"
    assert "PATCH" not in [c.method for c in stack.bpium.recorder.snapshot()]


def test_delete_cancels_the_event_and_a_repeat_is_harmless(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    answer = fns.deleted(record)
    assert answer.get_json() == {
        "status": "cancelled",
        "eventId": event_id,
        "calendarId": "primary",
    }
    assert stack.google.event("primary", event_id)["status"] == "cancelled"
    assert stack.google.notifications[-1] == {
        "calendarId": "owner@example.com",
        "eventId": event_id,
        "action": "delete",
        "sendUpdates": "all",
    }
    assert fns.deleted(record).get_json()["status"] == "cancelled"


def test_delete_of_a_record_with_no_event_is_ignored(fns: Functions) -> None:
    answer = fns.deleted("999")
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "ignored"


def test_recreated_record_revives_its_cancelled_event(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    fns.deleted(record)
    stack.bpium.update_record(stack.meetings, record, {"8": None}, fire=False)
    assert fns.created(record).get_json()["status"] == "updated"
    assert stack.google.event("primary", event_id)["status"] == "confirmed"


def test_bad_signature_is_401_and_changes_nothing(fns: Functions) -> None:
    record = meeting(fns.stack)
    fns.reset_calls()
    body = hook_body("record.created", record, fns.stack.bpium.record("7", record)["values"])
    answer = fns.post("on_meeting_created", body, signature=sign(body, "wrong-secret"))
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "signature_invalid"
    missing = fns.clients["on_meeting_created"].post(
        "/", data=body, content_type="application/json"
    )
    assert missing.status_code == 401
    assert missing.get_json()["error"]["code"] == "signature_missing"
    assert fns.stack.google.events("primary") == []
    assert fns.stack.bpium.recorder.snapshot() == []


def test_broken_body_is_400_naming_the_problem(fns: Functions) -> None:
    answer = fns.post("on_meeting_created", b"{broken")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "invalid_json"
    shaped = fns.post(
        "on_meeting_created",
        json.dumps({"hook": {"event": "record.created"}, "payload": {"catalogId": "7"}}).encode(),
    )
    assert shaped.status_code == 400
    assert shaped.get_json()["error"]["field"] == "payload.recordId"
    assert fns.stack.google.events("primary") == []


def test_impossible_meeting_is_422_naming_the_field(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack, **{"4": "2026-11-30T07:00:00.000Z"})
    answer = fns.created(record)
    # Refused for good: the worker answers 2xx so that Cloud Tasks does not loop on it.
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "refused"
    assert answer.get_json()["error"]["code"] == "invalid_meeting"
    assert answer.get_json()["error"]["field"] == "4"
    assert len(answer.worker) == 1
    no_start = meeting(stack, **{"3": None})
    assert fns.created(no_start).get_json()["error"]["field"] == "3"
    assert stack.google.events("primary") == []


def test_other_catalog_and_other_event_are_ignored(fns: Functions) -> None:
    other = fns.post(
        "on_meeting_created", hook_body("record.created", "1", {"2": "x"}, catalog_id="99")
    )
    assert other.status_code == 200
    assert other.get_json() == {"status": "ignored", "reason": "other_catalog"}
    wrong = fns.post("on_meeting_created", hook_body("record.deleted", "1"))
    assert wrong.get_json() == {"status": "ignored", "reason": "unexpected_event"}
    assert fns.stack.google.recorder.snapshot() == []


def test_oversized_body_is_refused_unread(fns: Functions) -> None:
    body = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    answer = fns.post("on_meeting_created", body, signature="x")
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "payload_too_large"


def test_get_is_refused_with_json(fns: Functions) -> None:
    answer = fns.clients["on_meeting_created"].get("/")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "method_not_allowed"


def test_transient_google_503_is_retried_and_the_meeting_syncs(fns: Functions) -> None:
    stack = fns.stack
    stack.google.recorder.add_fault(_fault("/events$", "POST", 503, count=2))
    record = meeting(stack)
    answer = fns.created(record)
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "created"
    assert len(stack.google.events("primary")) == 1


def test_google_down_answers_503_and_logs_a_replayable_line(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    fns.no_retries()
    stack = fns.stack
    record = meeting(stack)
    stack.google.recorder.add_fault(_fault("/events", None, 503, count=100))
    answer = fns.post(
        "on_meeting_created",
        hook_body(
            "record.created", record, stack.bpium.record("7", record)["values"], sequence_id=17
        ),
    )
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "calendar_unavailable"
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    failed = [x for x in lines if x["message"] == "sync_retry_later"]
    assert len(failed) == 1
    assert failed[0]["severity"] == "WARNING"  # the first attempts: the queue retries them
    assert {
        k: failed[0][k]
        for k in ("catalog_id", "record_id", "hook_event", "sequence_id", "error_code")
    } == {
        "catalog_id": "7",
        "record_id": record,
        "hook_event": "record.created",
        "sequence_id": "17",
        "error_code": "calendar_unavailable",
    }
    assert stack.bpium.record("7", record)["values"].get("8") in (None, "")


def test_quota_exceeded_is_not_retried(fns: Functions) -> None:
    stack = fns.stack
    body = {"error": {"code": 403, "message": "quota", "errors": [{"reason": "quotaExceeded"}]}}
    fns.no_retries()
    stack.google.recorder.add_fault(_fault("/events", "POST", 403, count=5, body=body))
    answer = fns.created(meeting(stack))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "calendar_quota_exceeded"
    assert len([c for c in stack.google.recorder.snapshot() if c.method == "POST"]) == 1


def test_rate_limit_403_is_retried(fns: Functions) -> None:
    stack = fns.stack
    body = {
        "error": {"code": 403, "message": "slow down", "errors": [{"reason": "rateLimitExceeded"}]}
    }
    stack.google.recorder.add_fault(_fault("/events", "POST", 403, count=1, body=body))
    assert fns.created(meeting(stack)).get_json()["status"] == "created"


def test_bpium_429_is_retried_honouring_retry_after(fns: Functions) -> None:
    stack = fns.stack
    stack.bpium.recorder.add_fault(
        _fault("/records$", "GET", 429, count=1, headers={"Retry-After": "0"})
    )
    assert fns.created(meeting(stack)).get_json()["status"] == "created"


def test_bpium_session_cookie_is_reused(fns: Functions) -> None:
    stack = fns.stack
    for _ in range(3):
        assert fns.created(meeting(stack)).status_code == 200
    assert stack.bpium.basic_auth_count == 1


def test_expired_bpium_session_logs_in_again(fns: Functions) -> None:
    stack = fns.stack
    fns.created(meeting(stack))
    stack.bpium.expire_sessions()
    assert fns.created(meeting(stack)).status_code == 200
    assert stack.bpium.basic_auth_count == 2


def test_invalid_attendee_emails_are_dropped_and_reported(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(
        stack, **{"7": [{"contact": "not-an-email"}, {"contact": "ANNA@acme.example"}]}
    )
    answer = fns.created(record).get_json()
    assert answer["droppedAttendees"] == ["not-an-email"]
    event = stack.google.event("primary", answer["eventId"])
    assert [a["email"] for a in event["attendees"]] == ["anna@acme.example", "ivan@acme.example"]


def test_expired_stored_token_is_refreshed_in_memory_with_a_warning(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = fns.stack
    stack.store_token(lifetime=60)  # within google-auth's skew: treated as expired
    answer = fns.created(meeting(stack))
    assert answer.status_code == 200
    out = capsys.readouterr().out
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    warnings = [x for x in lines if x["message"] == "stored_token_expired"]
    assert warnings
    assert warnings[0]["failing_job"] == "refresh_tokens"
    assert "local-refresh-token" not in out
    assert "local-client-secret" not in out


def test_revoked_refresh_token_answers_503(fns: Functions) -> None:
    fns.no_retries()
    stack = fns.stack
    stack.store_token(lifetime=60)
    stack.google.revoke_refresh_token("local-refresh-token")
    try:
        answer = fns.created(meeting(stack))
    finally:
        stack.google.add_refresh_token(
            "local-refresh-token",
            "local-client.apps.googleusercontent.com",
            ["https://www.googleapis.com/auth/calendar"],
        )
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "reauthorization_required"


def test_missing_settings_fail_with_one_error_listing_all(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpium_calendar import services

    monkeypatch.delenv("BPIUM_URL")
    monkeypatch.delenv("BPIUM_FIELDS")
    services.reset()
    answer = fns.post("on_meeting_created", hook_body("record.created", "1", {}))
    assert answer.status_code == 500
    problems = answer.get_json()["error"]["problems"]
    assert any(p.startswith("BPIUM_URL") for p in problems)
    assert any(p.startswith("BPIUM_FIELDS") for p in problems)


def test_field_map_naming_unknown_fields_is_a_config_error(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpium_calendar import services

    fields = {**fns.stack.seed["fields"], "location": "404"}
    monkeypatch.setenv("BPIUM_FIELDS", json.dumps(fields))
    services.reset()
    fns.no_retries()
    answer = fns.created(meeting(fns.stack))
    assert answer.status_code == 503  # an operator fixes BPIUM_FIELDS; the task waits for it
    assert answer.get_json()["error"]["code"] == "config_invalid"
    assert "location=404" in answer.get_json()["error"]["message"]


def test_all_day_meeting_from_a_date_only_field(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpium_calendar import services

    stack = fns.stack
    stack.bpium.add_catalog(
        "70",
        "Отпуска",
        [
            {"id": "2", "type": "text"},
            {"id": "3", "type": "date", "config": {"time": False}},
            {"id": "4", "type": "date", "config": {"time": False}},
            {"id": "5", "type": "text"},
            {"id": "6", "type": "object", "config": {"catalogs": [{"id": "8"}]}},
            {"id": "7", "type": "contact"},
            {"id": "8", "type": "text"},
            {"id": "9", "type": "text"},
            {"id": "21", "type": "text"},
            {"id": "22", "type": "text"},
        ],
    )
    monkeypatch.setenv("BPIUM_MEETINGS_CATALOG", "70")
    monkeypatch.setenv("BPIUM_EMPLOYEE_EMAIL_FIELD", "3")
    services.reset()
    record = stack.bpium.put_record(
        "70",
        {
            "2": "Offsite",
            "3": "2026-12-05T21:00:00.000Z",
            "4": "2026-12-06T21:00:00.000Z",
            "6": [{"catalogId": "8", "recordId": "3"}],
        },
        fire=False,
    )
    values = stack.bpium.record("70", record)["values"]
    answer = fns.post(
        "on_meeting_created", hook_body("record.created", record, values, catalog_id="70")
    )
    assert answer.status_code == 200, answer.get_json()
    event = stack.google.event("primary", answer.get_json()["eventId"])
    assert event["start"] == {"date": "2026-12-06"}
    assert event["end"] == {"date": "2026-12-08"}
    assert [a["email"] for a in event["attendees"]] == ["maria@acme.example"]


def _fault(
    path: str,
    method: str | None,
    status: int,
    *,
    count: int = 1,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> object:
    import re

    from sandbox.common import Fault

    return Fault(
        path=re.compile(path),
        method=method,
        status=status,
        count=count,
        delay=0.0,
        body=body,
        headers=headers or {},
    )


def test_a_stale_update_arriving_last_still_leaves_the_records_final_state(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    first = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.update_record(stack.meetings, record, {"2": "Второе"}, fire=False)
    second = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.update_record(stack.meetings, record, {"2": "Третье"}, fire=False)
    fns.updated(record, {"2": "Третье"}, second)  # the newest delivery first...
    fns.updated(record, {"2": "Второе"}, first)  # ...then an old one, late
    assert stack.google.event("primary", event_id)["summary"] == "Третье"


def test_update_of_a_record_deleted_meanwhile_is_ignored(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    fns.created(record)
    full = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.delete_record(stack.meetings, record, fire=False)
    answer = fns.updated(record, {"2": "x"}, full)
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ignored", "reason": "record_gone"}
