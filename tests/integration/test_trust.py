"""Trust boundaries: no Bpium user, scenario key or stranger reaches what is not theirs."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bpium_calendar import services
from bpium_calendar.commands.backfill import run as backfill
from bpium_calendar.event_ids import event_id_for
from sandbox.stack import API_KEY, Stack
from tests.conftest import hook_body, sign
from tests.integration.conftest import Functions
from tests.integration.google_helpers import insert_legacy_event
from tests.integration.test_meeting_roles import TEAM, roles  # noqa: F401 - a fixture
from tests.integration.test_reconcile import SOON, reconcile
from tests.integration.test_reconcile import meeting as soon_meeting
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
    assert answer.webhook.status_code == 200
    assert len(answer.webhook.data) < 2_000
    # Too large to travel in the task: the worker reads the record (here: none).
    assert answer.get_json() == {"status": "ignored", "reason": "record_gone"}
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
    # Too large for a task: the worker reads the record, so Bpium must hold it.
    guests = [{"contact": f"bad{i}", "comment": ""} for i in range(40_000)]
    stack.bpium.update_record(stack.meetings, record, {"7": guests}, fire=False)
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


# -- 1. a meeting editor cannot take over other events ----------------------------------------


def _values(stack: Stack, record: str) -> dict:
    return stack.bpium.record(stack.meetings, record)["values"]


def _change(fns: Functions, record: str, **values: object) -> dict:
    stack = fns.stack
    before = _values(stack, record)
    stack.bpium.update_record(stack.meetings, record, dict(values), fire=False)
    return fns.updated(record, dict(values), before).get_json()


def test_another_meetings_event_id_typed_into_the_field_is_never_reached(fns: Functions) -> None:
    stack = fns.stack
    victim = meeting(stack, **{"2": "Совет директоров"})
    victim_event = fns.created(victim).get_json()["eventId"]
    before = stack.google.event("primary", victim_event)
    attacker = meeting(stack, **{"2": "Моя встреча"})
    fns.created(attacker)
    answer = _change(fns, attacker, **{"8": victim_event, "2": "Перехвачено"})
    assert answer["eventId"] == event_id_for(stack.meetings, attacker)
    assert stack.google.event("primary", victim_event) == before  # untouched, nobody mailed
    assert _values(stack, attacker)["8"] == answer["eventId"]  # the field is ours again
    stack.bpium.delete_record(stack.meetings, attacker, fire=False)
    fns.deleted(attacker)
    assert stack.google.event("primary", victim_event)["status"] == "confirmed"


def test_a_persons_own_event_id_typed_into_the_field_is_never_reached(fns: Functions) -> None:
    stack = fns.stack
    private = "privateevent0001"
    insert_legacy_event(stack, private, summary="Личное")
    before = stack.google.event("primary", private)
    record = meeting(stack, **{"8": private})
    answer = fns.created(record).get_json()
    assert answer["status"] == "created"
    assert answer["eventId"] == event_id_for(stack.meetings, record)
    assert _values(stack, record)["8"] == answer["eventId"]
    assert stack.google.event("primary", private) == before
    assert reconcile(fns)["failed"] == 0
    assert stack.google.event("primary", private) == before


def test_reconcile_never_reaches_an_event_named_only_by_the_field(fns: Functions) -> None:
    stack = fns.stack
    private = "privateevent0002"
    insert_legacy_event(stack, private, SOON.isoformat(), summary="Личное")
    before = stack.google.event("primary", private)
    record = soon_meeting(stack, **{"8": private})
    counts = reconcile(fns)
    assert (counts["created"], counts["updated"], counts["failed"]) == (1, 0, 0)
    assert stack.google.event("primary", private) == before
    assert stack.google.event("primary", event_id_for(stack.meetings, record))


def _backfill(env: Stack, *flags: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = backfill(
        ["--from", (SOON - timedelta(days=1)).date().isoformat(), "--to",
         (SOON + timedelta(days=2)).date().isoformat(), *flags],
        say=lines.append,
        stream=io.StringIO(),
    )  # fmt: skip
    return code, lines


def test_adopting_the_bpmn_scenarios_events_marks_only_those_that_match(fns: Functions) -> None:
    stack = fns.stack
    start = SOON.astimezone(ZoneInfo("Europe/Moscow")).isoformat()
    insert_legacy_event(stack, "bpmnevent0001", start, summary="Встреча")
    insert_legacy_event(stack, "bpmnevent0002", start, summary="Что-то другое")
    matching = soon_meeting(stack, **{"8": "bpmnevent0001"})
    other = soon_meeting(stack, **{"8": "bpmnevent0002"})
    code, lines = _backfill(fns.stack, "--adopt", "--dry-run")
    assert code == 1  # one is not adopted
    assert any(f"would adopt record {matching}" in line for line in lines)
    assert any(f"record {other}" in line and "title differs" in line for line in lines)
    assert "extendedProperties" not in stack.google.event("primary", "bpmnevent0001")
    code, lines = _backfill(fns.stack, "--adopt")
    marks = stack.google.event("primary", "bpmnevent0001")["extendedProperties"]["private"]
    assert marks == {"bpiumCatalogId": stack.meetings, "bpiumRecordId": matching}
    assert "extendedProperties" not in stack.google.event("primary", "bpmnevent0002")
    # From now on the sync keeps the adopted event; the other record gets its own.
    assert _change(fns, matching, **{"2": "Встреча (новая)"})["eventId"] == "bpmnevent0001"
    assert _change(fns, other, **{"2": "Своя"})["eventId"] == event_id_for(stack.meetings, other)
    assert stack.google.event("primary", "bpmnevent0002")["summary"] == "Что-то другое"


# -- 2. the scenario key grants no ownership ------------------------------------------------


def test_owner_is_refused_naming_the_role(fns: Functions) -> None:
    params = {"summary": "Проект", "shareWith": [{"email": "x@partner.example", "role": "owner"}]}
    fns.reset_calls()
    answer = fns.scenario("create_calendar", params)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "shareWith[0].role"
    assert fns.calls()["google"] == 0


def test_if_not_exists_never_shares_the_primary_or_a_hand_made_calendar(fns: Functions) -> None:
    stack = fns.stack
    stack.google.add_calendar("handmade@group.calendar.google.com", "Проект")
    share = [{"email": "stranger@partner.example", "role": "writer"}]
    for summary in (stack.google.account_email, "Проект"):  # the primary's name, a hand-made
        answer = fns.scenario(
            "create_calendar", {"summary": summary, "ifNotExists": True, "shareWith": share}
        ).get_json()
        assert answer["created"] is True
        assert answer["id"] not in ("primary", stack.google.account_email)
        assert answer["id"] != "handmade@group.calendar.google.com"
    for calendar_id in (stack.google.account_email, "handmade@group.calendar.google.com"):
        scopes = [r["scope"].get("value") for r in stack.google.acl(calendar_id)]
        assert "stranger@partner.example" not in scopes
    again = fns.scenario(
        "create_calendar", {"summary": "Проект", "ifNotExists": True, "shareWith": share}
    ).get_json()
    assert again["created"] is False  # the one create_calendar made is found again
    assert again["description"] is None


def test_the_meetings_calendar_is_never_reshared(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = fns.stack
    made = fns.scenario("create_calendar", {"summary": "Встречи"}).get_json()
    monkeypatch.setenv("GOOGLE_CALENDAR_ID", made["id"])
    services.reset()
    share = [{"email": "stranger@partner.example", "role": "writer"}]
    answer = fns.scenario(
        "create_calendar", {"summary": "Встречи", "ifNotExists": True, "shareWith": share}
    ).get_json()
    assert answer["id"] != made["id"]
    scopes = [r["scope"].get("value") for r in stack.google.acl(made["id"])]
    assert "stranger@partner.example" not in scopes


# -- 3. moved meetings ----------------------------------------------------------------------


def test_a_meeting_moved_then_deleted_leaves_no_live_event(roles: Functions) -> None:  # noqa: F811
    stack = roles.stack
    record = meeting(stack)
    event_id = roles.created(record).get_json()["eventId"]
    assert _change(roles, record, **{"13": TEAM})["calendarId"] == TEAM
    stack.bpium.delete_record(stack.meetings, record, fire=False)
    assert roles.deleted(record).get_json()["status"] == "cancelled"
    for calendar_id in ("primary", TEAM):
        event = stack.google.event(calendar_id, event_id)
        assert event is None or event["status"] == "cancelled"


def test_a_move_that_overtook_its_create_leaves_one_copy_after_reconcile(
    roles: Functions,  # noqa: F811
) -> None:
    stack = roles.stack
    record = soon_meeting(stack)
    created_values = _values(stack, record)
    # The move's webhook arrives first, then the create's, with the values of its time.
    _change(roles, record, **{"13": TEAM})
    roles.post(
        "on_meeting_created",
        hook_body("record.created", record, created_values, catalog_id=stack.meetings),
    )
    alive = [
        (c, e["id"])
        for c in ("primary", TEAM)
        for e in stack.google.events(c)
        if e["status"] != "cancelled"
    ]
    assert len(alive) == 2  # the harm the reconcile must undo
    counts = reconcile(roles)
    assert counts["failed"] == 0
    alive = [
        (c, e["id"])
        for c in ("primary", TEAM)
        for e in stack.google.events(c)
        if e["status"] != "cancelled"
    ]
    assert alive == [(TEAM, event_id_for(stack.meetings, record))]
    assert reconcile(roles)["cancelled"] == 0


def test_a_foreign_id_typed_with_a_calendar_change_moves_nothing(
    roles: Functions,  # noqa: F811
) -> None:
    stack = roles.stack
    victim = meeting(stack, **{"2": "Совет директоров"})
    victim_event = roles.created(victim).get_json()["eventId"]
    attacker = meeting(stack)
    roles.created(attacker)
    answer = _change(roles, attacker, **{"8": victim_event, "13": TEAM})
    assert answer["calendarId"] == TEAM
    assert answer["eventId"] == event_id_for(stack.meetings, attacker)
    assert stack.google.event("primary", victim_event)["status"] == "confirmed"
    assert stack.google.event(TEAM, victim_event) is None
