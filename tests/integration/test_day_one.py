"""Day-one truth: what the real Google and Bpium do that a kinder stand-in hid, and the
product's answer to each, against the stand-ins in their harsh readings (and the kind one
where a switch has two)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator

import pytest

from bpium_calendar.event_ids import event_id_for
from sandbox import bpium
from sandbox.common import Fault
from sandbox.stack import Stack
from tests.conftest import hook_body
from tests.integration.conftest import Functions
from tests.integration.test_meeting_roles import roles  # noqa: F401 - a fixture
from tests.integration.test_reconcile import meeting as soon_meeting
from tests.integration.test_reconcile import reconcile
from tests.integration.test_webhooks import meeting

REMINDERS, MEET = "11", "12"


def full_values(stack: Stack, record: str) -> dict:
    return stack.bpium.record(stack.meetings, record)["values"]


def live(stack: Stack, calendar_id: str = "primary") -> list[dict]:
    return [e for e in stack.google.events(calendar_id) if e.get("status") != "cancelled"]


def change(fns: Functions, record: str, **values: object) -> dict:
    """Changes the record in Bpium (no webhook) and delivers its record.updated."""
    stack = fns.stack
    before = full_values(stack, record)
    stack.bpium.update_record(stack.meetings, record, dict(values), fire=False)
    answer = fns.updated(record, dict(values), before)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


# -- 1. reminders: events.patch merges nested objects ----------------------------------------


@pytest.mark.parametrize("refuse_empty", [True, False])
def test_clearing_the_reminders_field_goes_back_to_the_defaults(
    roles: Functions,  # noqa: F811
    refuse_empty: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both readings of `{"useDefault": true, "overrides": []}` (the documents are silent)."""
    stack = roles.stack
    monkeypatch.setattr(stack.google, "refuse_default_with_empty_overrides", refuse_empty)
    record = meeting(stack, **{REMINDERS: "10, 60"})
    event_id = roles.created(record).get_json()["eventId"]
    assert change(roles, record, **{REMINDERS: ""})["status"] == "updated"
    assert stack.google.event("primary", event_id)["reminders"] == {"useDefault": True}


def test_a_reminder_a_person_set_in_google_never_fails_a_later_update(
    roles: Functions,  # noqa: F811
) -> None:
    stack = roles.stack
    record = meeting(stack)
    event_id = roles.created(record).get_json()["eventId"]
    own = {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]}
    stack.google.person_edit("primary", event_id, {"reminders": own})
    assert change(roles, record, **{"2": "Новое название"})["status"] == "updated"
    event = stack.google.event("primary", event_id)
    assert event["summary"] == "Новое название"
    assert event["reminders"] == {"useDefault": True}


def test_reconcile_takes_a_persons_reminder_back_to_the_defaults(fns: Functions) -> None:
    stack = fns.stack
    record = soon_meeting(stack)
    reconcile(fns)
    event_id = event_id_for(stack.meetings, record)
    own = {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]}
    stack.google.person_edit("primary", event_id, {"reminders": own})
    counts = reconcile(fns)
    assert (counts["updated"], counts["failed"]) == (1, 0)
    assert stack.google.event("primary", event_id)["reminders"] == {"useDefault": True}


# -- 2. an update and a delete at once ---------------------------------------------------------


def test_an_update_overlapping_the_delete_leaves_the_event_cancelled(fns: Functions) -> None:
    """The update read the record, then the delete ran while its patch was on the way."""
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    before = full_values(stack, record)
    stack.bpium.update_record(stack.meetings, record, {"2": "Перенесли"}, fire=False)
    stack.google.recorder.add_fault(
        Fault(path=re.compile(event_id), method="PATCH", status=None, count=1, delay=1.5)
    )
    answers: list[dict] = []
    update = threading.Thread(
        target=lambda: answers.append(fns.updated(record, {"2": "Перенесли"}, before).get_json())
    )
    update.start()
    time.sleep(0.5)  # the update has read the record and waits on its patch
    stack.bpium.delete_record(stack.meetings, record, fire=False)
    assert fns.deleted(record).get_json()["status"] == "cancelled"
    update.join(10)
    # Its patch carried the etag it saw before reading: the delete changed it (412), so it
    # read the record again and found it gone.
    assert answers == [{"status": "ignored", "reason": "record_gone"}]
    assert stack.google.event("primary", event_id)["status"] == "cancelled"
    assert reconcile(fns)["failed"] == 0
    assert stack.google.event("primary", event_id)["status"] == "cancelled"


def test_a_late_update_of_a_deleted_record_revives_nothing(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    before = full_values(stack, record)
    stack.bpium.delete_record(stack.meetings, record, fire=False)
    fns.deleted(record)
    # The update's own read happens after the delete here: record_gone at once.
    assert fns.updated(record, {"2": "x"}, before).get_json()["reason"] == "record_gone"
    assert stack.google.event("primary", event_id)["status"] == "cancelled"


def test_a_cancelled_event_of_a_living_record_is_revived_by_its_next_change(
    fns: Functions,
) -> None:
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    fns.deleted(record)  # a delete delivered by mistake: the record lives on
    assert change(fns, record, **{"2": "Снова"})["eventId"] == event_id
    event = stack.google.event("primary", event_id)
    assert (event["status"], event["summary"]) == ("confirmed", "Снова")


# -- 3. an event a person deleted in Google --------------------------------------------------


@pytest.fixture(params=["refused", "revivable"])
def person_deletes(request: pytest.FixtureRequest, fns: Functions) -> Iterator[str]:
    """Both readings: Google refuses to revive what a person deleted (public reports), or
    restores it like any cancelled event (the discovery document)."""
    google = fns.stack.google
    google.refuse_revival_of_person_deleted = request.param == "refused"
    yield request.param
    google.refuse_revival_of_person_deleted = True


def test_an_event_a_person_deleted_comes_back_as_exactly_one_live_event(
    fns: Functions, person_deletes: str
) -> None:
    stack = fns.stack
    record = meeting(stack)
    first = fns.created(record).get_json()["eventId"]
    stack.google.person_delete("primary", first)
    answer = change(fns, record, **{"2": "После удаления"})
    events = live(stack)
    assert len(events) == 1
    assert events[0]["summary"] == "После удаления"
    if person_deletes == "refused":
        assert answer["eventId"] == event_id_for(stack.meetings, record, 1)
    else:
        assert answer["eventId"] == first
    assert full_values(stack, record)["8"] == answer["eventId"]
    # The next change costs two Calendar calls (the etag, then the conditional patch) on
    # the replacement's id; the delete cancels the replacement.
    stack.google.recorder.reset_calls()
    assert change(fns, record, **{"2": "Ещё раз"})["status"] == "updated"
    calls = stack.google.recorder.snapshot()
    assert [c.method for c in calls] == ["GET", "PATCH"]
    assert {c.path.rsplit("/", 1)[-1] for c in calls} == {answer["eventId"]}
    assert fns.deleted(record).get_json()["status"] == "cancelled"
    assert live(stack) == []


def test_reconcile_keeps_an_event_a_person_deleted_cancelled_and_then_rests(
    fns: Functions, person_deletes: str
) -> None:
    """A person's cancellation in Google stands (issue «two-way»): reconcile neither revives
    nor replaces the event, the record's status says so, and the next run costs nothing."""
    stack = fns.stack
    record = soon_meeting(stack)
    reconcile(fns)
    stack.google.person_delete("primary", event_id_for(stack.meetings, record))
    counts = reconcile(fns)
    assert (counts["failed"], counts["keptCancelled"], counts["healed"]) == (0, 1, 1)
    assert live(stack) == []
    assert full_values(stack, record)[bpium.ROLES["status"]] == "cancelled"
    stack.google.recorder.reset_calls()
    stack.bpium.recorder.reset_calls()
    again = reconcile(fns)
    assert (again["created"], again["updated"], again["failed"], again["healed"]) == (0, 0, 0, 0)
    assert stack.google.recorder.count("POST", "batch") == 0
    assert stack.bpium.recorder.count("PATCH") == 0


# -- 4, 5, 6. list_events: cancelled items, a bounded first sync, the caller's mistakes ------


@pytest.mark.parametrize("minimal", [True, False])
def test_an_incremental_sync_names_the_record_of_a_cancelled_event(
    fns: Functions, minimal: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Google guarantees only the id of a deleted event (the default); or it sends it whole."""
    stack = fns.stack
    monkeypatch.setattr(stack.google, "minimal_cancelled_in_list", minimal)
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    token = fns.scenario("list_events", {"sync": True}).get_json()["nextSyncToken"]
    fns.deleted(record)
    items = fns.scenario("list_events", {"syncToken": token}).get_json()["items"]
    assert [(i["id"], i["status"], i["bpiumCatalogId"], i["bpiumRecordId"]) for i in items] == [
        (event_id, "cancelled", stack.meetings, record)
    ]


def test_a_first_sync_may_be_bounded_by_a_window(fns: Functions) -> None:
    stack = fns.stack
    inside = meeting(stack, **{"3": "2026-12-10T07:00:00.000Z", "4": "2026-12-10T08:00:00.000Z"})
    outside = meeting(stack, **{"3": "2027-03-10T07:00:00.000Z", "4": "2027-03-10T08:00:00.000Z"})
    for record in (inside, outside):
        fns.created(record)
    window = {"sync": True, "timeMin": "2026-12-01", "timeMax": "2027-01-01"}
    first = fns.scenario("list_events", window).get_json()
    assert [i["bpiumRecordId"] for i in first["items"]] == [inside]
    assert first["nextSyncToken"]
    change(fns, inside, **{"2": "Изменено"})
    later = fns.scenario("list_events", {"syncToken": first["nextSyncToken"]}).get_json()
    assert [i["summary"] for i in later["items"]] == ["Изменено"]
    refused = fns.scenario(
        "list_events", {"syncToken": first["nextSyncToken"], "timeMin": "2026-12-01"}
    )
    assert refused.status_code == 400
    assert refused.get_json()["error"]["field"] == "timeMin"


def test_an_unknown_calendar_is_404_naming_the_field_at_warning(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = fns.scenario("list_events", {"calendarId": "nobody@example.com"})
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "calendar_not_found"
    assert answer.get_json()["error"]["field"] == "calendarId"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [e["severity"] for e in lines if e["message"].startswith("list_events_")] == ["WARNING"]


def test_updated_min_too_long_ago_is_400_naming_it(fns: Functions) -> None:
    answer = fns.scenario("list_events", {"updatedMin": "2020-01-01T00:00:00Z"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "updatedMin"


def test_a_long_search_text_is_sent_and_answered(fns: Functions) -> None:
    stack = fns.stack
    text = "Планёрка " * 300  # googleapiclient sends a GET this long as POST + override
    fns.created(meeting(stack, **{"2": text.strip()}))
    answer = fns.scenario(
        "list_events",
        {"q": text.strip(), "timeMin": "2026-11-30", "timeMax": "2026-12-02"},
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["count"] == 1


# -- 7. Meet ---------------------------------------------------------------------------------


def _drop_meet(stack: Stack, event_id: str) -> None:
    stack.google.person_edit("primary", event_id, {"conferenceData": None, "hangoutLink": None})
    assert not stack.google.event("primary", event_id).get("hangoutLink")


def test_a_meet_link_removed_in_google_comes_back_at_the_next_change(
    roles: Functions,  # noqa: F811
) -> None:
    stack = roles.stack
    record = meeting(stack, **{MEET: True})
    event_id = roles.created(record).get_json()["eventId"]
    old = stack.google.event("primary", event_id)["hangoutLink"]
    _drop_meet(stack, event_id)
    change(roles, record, **{"2": "С видео"})
    link = stack.google.event("primary", event_id).get("hangoutLink")
    assert link
    assert link != old


def test_reconcile_brings_back_a_removed_meet_link_once(roles: Functions) -> None:  # noqa: F811
    stack = roles.stack
    record = soon_meeting(stack, **{MEET: True})
    reconcile(roles)
    event_id = event_id_for(stack.meetings, record)
    _drop_meet(stack, event_id)
    assert reconcile(roles)["updated"] == 1
    assert stack.google.event("primary", event_id).get("hangoutLink")
    notified = len(stack.google.notifications)
    counts = reconcile(roles)
    assert (counts["updated"], counts["created"]) == (0, 0)
    assert len(stack.google.notifications) == notified


# -- 8. create_calendar ----------------------------------------------------------------------


def _acl_mails(stack: Stack) -> list[dict]:
    return [n for n in stack.google.notifications if str(n.get("action", "")).startswith("acl")]


def test_create_calendar_again_sends_no_new_invitations(fns: Functions) -> None:
    params = {
        "summary": "Проект",
        "ifNotExists": True,
        "shareWith": [{"email": "pm@partner.example", "role": "writer"}],
    }
    first = fns.scenario("create_calendar", params).get_json()
    second = fns.scenario("create_calendar", params).get_json()
    assert first["id"] == second["id"]
    assert second["created"] is False
    assert len(_acl_mails(fns.stack)) == 1


def test_a_lost_answer_to_calendar_insert_never_makes_a_second_calendar(
    fns: Functions,
) -> None:
    stack = fns.stack
    stack.google.recorder.add_fault(
        Fault(
            path=re.compile(r"/calendar/v3/calendars$"),
            method="POST",
            status=None,
            count=1,
            delay=0,
            drop_after=True,
        )
    )
    answer = fns.scenario("create_calendar", {"summary": "Отдел продаж"})
    assert answer.status_code == 200, answer.get_json()
    made = [c for c in stack.google.calendars() if c.get("summary") == "Отдел продаж"]
    assert [c["id"] for c in made] == [answer.get_json()["id"]]


# -- 9. Bpium's undocumented corners -------------------------------------------------------


@pytest.mark.parametrize("form", ["empty", "text", "record"])
def test_a_write_back_answered_with_any_2xx_body_succeeds(fns: Functions, form: str) -> None:
    stack = fns.stack
    stack.bpium.patch_answer = form
    try:
        record = meeting(stack)
        answer = fns.created(record)
    finally:
        stack.bpium.patch_answer = "empty"
    assert answer.status_code == 200, answer.get_json()
    assert full_values(stack, record)["8"] == answer.get_json()["eventId"]


@pytest.mark.parametrize("header", [False, True])
def test_a_429_with_or_without_retry_after_is_waited_out(fns: Functions, header: bool) -> None:
    stack = fns.stack
    record = meeting(stack)
    stack.bpium.retry_after_header = header
    stack.bpium.recorder.add_fault(
        Fault(path=re.compile("/records"), method=None, status=429, count=2, delay=0)
    )
    try:
        answer = fns.created(record)
    finally:
        stack.bpium.retry_after_header = False
    assert answer.status_code == 200, answer.get_json()
    assert full_values(stack, record)["8"] == answer.get_json()["eventId"]


@pytest.mark.parametrize("form", ["unix-string", "unix-int", "iso"])
def test_the_documented_timestamp_forms_are_accepted(fns: Functions, form: str) -> None:
    now = int(time.time())
    stamp = {
        "unix-string": str(now),  # integracii/webhooks.md shows "1459500623"
        "unix-int": now,
        "iso": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
    }[form]
    record = meeting(fns.stack)
    body = hook_body(
        "record.created",
        record,
        full_values(fns.stack, record),
        catalog_id=fns.stack.meetings,
        timestamp=stamp,
    )
    answer = fns.post("on_meeting_created", body)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "created"


# -- 10. batches: parts fail on their own ------------------------------------------------------


def test_reconcile_through_failing_batch_parts_ends_right(fns: Functions) -> None:
    stack = fns.stack
    records = [soon_meeting(stack) for _ in range(12)]
    stack.google.recorder.add_fault(
        Fault(
            path=re.compile("/events"),
            method="POST",
            status=503,
            count=6,
            delay=0,
            part=True,
        )
    )
    counts = reconcile(fns)
    assert (counts["created"], counts["failed"]) == (12, 0)
    assert {e["id"] for e in live(stack)} == {event_id_for(stack.meetings, r) for r in records}
    assert any(c.status == 503 for c in stack.google.part_calls)


def test_a_conflict_part_is_not_taken_for_an_existing_event(fns: Functions) -> None:
    stack = fns.stack
    record = soon_meeting(stack)
    stack.google.recorder.add_fault(
        Fault(
            path=re.compile("/events$"),
            method="POST",
            status=409,
            count=1,
            delay=0,
            part=True,
        )
    )
    counts = reconcile(fns)
    assert (counts["created"], counts["failed"]) == (1, 0)
    assert stack.google.event("primary", event_id_for(stack.meetings, record))["status"] == (
        "confirmed"
    )
