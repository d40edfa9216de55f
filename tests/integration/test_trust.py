"""Trust boundaries: no Bpium user, scenario key or stranger reaches what is not theirs."""

from __future__ import annotations

import json
import time

import pytest

from bpium_calendar import services
from sandbox.stack import API_KEY
from tests.conftest import hook_body, sign
from tests.integration.conftest import Functions
from tests.integration.test_webhooks import meeting


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


# -- 4. weak secrets fail closed --------------------------------------------------------------


@pytest.mark.parametrize("weak", ["", "   ", "short-secret-15"])
def test_a_weak_webhook_secret_fails_closed_with_no_call(fns: Functions, weak: str) -> None:
    stack = fns.stack
    stack.put_secret("bpium-webhook-secret", weak)
    services.reset()
    record = meeting(stack)
    body = hook_body("record.created", record, stack.bpium.record(stack.meetings, record)["values"])
    fns.reset_calls()
    answer = fns.post("on_meeting_created", body, signature=sign(body, weak))
    assert answer.status_code == 500
    error = answer.get_json()["error"]
    assert (error["code"], error["problems"]) == ("config_invalid", ["bpium-webhook-secret"])
    calls = fns.calls()
    assert (calls["google"], calls["bpium"]) == (0, 0)


@pytest.mark.parametrize("weak", ["", "\t\n", "fifteen-chars!!"])
def test_a_weak_api_key_fails_closed_with_no_call(fns: Functions, weak: str) -> None:
    fns.stack.put_secret("api-key", weak)
    services.reset()
    fns.reset_calls()
    answer = fns.scenario("list_events", {}, key="a key the caller sends")
    assert answer.status_code == 500
    assert answer.get_json()["error"]["problems"] == ["api-key"]
    assert fns.calls()["google"] == 0


# -- 5. replays -------------------------------------------------------------------------------


def test_a_webhook_handled_once_is_a_replay_the_second_time(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    values = stack.bpium.record(stack.meetings, record)["values"]
    body = hook_body("record.created", record, values, sequence_id=4242)
    assert fns.post("on_meeting_created", body).get_json()["status"] == "created"
    fns.reset_calls()
    answer = fns.post("on_meeting_created", body)
    assert answer.get_json() == {"status": "ignored", "reason": "replayed"}
    calls = fns.calls()
    assert (calls["google"], calls["bpium"]) == (0, 0)


def test_a_captured_webhook_older_than_the_limit_is_a_replay(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = fns.stack
    monkeypatch.setenv("WEBHOOK_MAX_AGE_MINUTES", "30")
    services.reset()
    record = meeting(stack)
    values = stack.bpium.record(stack.meetings, record)["values"]
    old = str(int(time.time()) - 31 * 60)
    fns.reset_calls()
    answer = fns.post(
        "on_meeting_created", hook_body("record.created", record, values, timestamp=old)
    )
    assert answer.get_json() == {"status": "ignored", "reason": "replayed"}
    assert fns.calls()["google"] == 0
    assert stack.google.events("primary") == []
    fresh = str(int(time.time()) - 29 * 60)
    answer = fns.post(
        "on_meeting_created", hook_body("record.created", record, values, timestamp=fresh)
    )
    assert answer.get_json()["status"] == "created"


@pytest.mark.parametrize("stamp", [None, "", "yesterday", True, [1]])
def test_a_webhook_without_a_readable_timestamp_is_400(fns: Functions, stamp: object) -> None:
    body = json.loads(hook_body("record.created", "1", {}))
    if stamp is None:
        del body["timestamp"]
    else:
        body["timestamp"] = stamp
    answer = fns.post("on_meeting_created", json.dumps(body).encode())
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "timestamp"


# -- 6. ids are whole-string matches ------------------------------------------------------------


@pytest.mark.parametrize("name", ["on_meeting_created", "on_meeting_updated", "on_meeting_deleted"])
def test_a_record_id_with_a_trailing_newline_is_400(fns: Functions, name: str) -> None:
    event = {"on_meeting_created": "record.created", "on_meeting_updated": "record.updated"}
    body = hook_body(event.get(name, "record.deleted"), "6\n", {"2": "x"}, {"2": "y"})
    fns.reset_calls()
    answer = fns.post(name, body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "payload.recordId"
    assert fns.calls()["google"] == 0


# -- 7. bounded log lines ---------------------------------------------------------------------


def test_a_megabyte_field_gives_a_short_answer_and_short_log_lines(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = "9" * 900_000
    body = hook_body("record.created", "77", {"2": "x", "3": huge})
    answer = fns.post("on_meeting_created", body)
    assert answer.status_code == 422
    assert len(answer.data) < 2_000
    lines = log_lines(capsys)
    assert lines
    assert max(len(line) for line in lines) < 4_000


def test_forty_thousand_dropped_guests_are_counted_not_listed(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = fns.stack
    record = meeting(stack)
    values = dict(stack.bpium.record(stack.meetings, record)["values"])
    values["7"] = " ".join(f"bad{i}" for i in range(40_000))  # a text of guests, all invalid
    answer = fns.post("on_meeting_created", hook_body("record.created", record, values))
    assert answer.status_code == 200, answer.get_json()
    result = answer.get_json()
    assert result["droppedCount"] == 40_000
    assert len(result["droppedAttendees"]) == 20
    dropped = [json.loads(line) for line in log_lines(capsys) if "attendees_dropped" in line]
    assert len(dropped) == 1
    assert dropped[0]["dropped_count"] == 40_000
    assert len(dropped[0]["dropped"]) == 21  # twenty, and the count
    assert len(json.dumps(dropped[0])) < 4_000


def test_a_huge_execution_id_header_is_not_logged(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    fns.scenario("list_events", {"timeMin": "nope"})  # any request that logs
    capsys.readouterr()
    answer = fns.clients["list_events"].get(
        "/",
        query_string={"timeMin": "nope"},
        headers={"X-Api-Key": API_KEY, "Function-Execution-Id": "x" * 60_000},
    )
    assert answer.status_code == 400
    lines = log_lines(capsys)
    assert lines
    assert all(len(line) < 4_000 for line in lines)
    labels = [json.loads(line).get("logging.googleapis.com/labels", {}) for line in lines]
    assert all("execution_id" not in label for label in labels)
