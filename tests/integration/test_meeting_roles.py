"""Reminders, invitations, Meet, link and calendar roles of a meeting, end to end in-process."""

from __future__ import annotations

import json

import pytest

from bpium_calendar import services
from bpium_calendar.event_ids import event_id_for
from sandbox.stack import Stack
from tests.integration.conftest import Functions
from tests.integration.test_webhooks import meeting

ROLES = {"reminders": "11", "meet": "12", "calendar": "13", "link": "14"}
TEAM = "team@group.calendar.google.com"


@pytest.fixture
def roles(fns: Functions, monkeypatch: pytest.MonkeyPatch) -> Functions:
    stack = fns.stack
    catalog = json.loads(json.dumps(_catalog(stack)))
    catalog["fields"] += [
        {"id": "11", "name": "Напоминания (мин)", "type": "text", "config": {}},
        {"id": "12", "name": "Google Meet", "type": "switch", "config": {}},
        {"id": "13", "name": "Календарь", "type": "text", "config": {}},
        {"id": "14", "name": "Ссылка на событие", "type": "text", "config": {}},
    ]
    stack.bpium.add_catalog(stack.meetings, catalog["name"], catalog["fields"])
    stack.google.add_calendar(TEAM, "Team", "Europe/Moscow")
    monkeypatch.setenv("BPIUM_FIELDS", json.dumps({**stack.seed["fields"], **ROLES}))
    monkeypatch.setenv("REMINDER_METHOD", "email")
    services.reset()
    return fns


def _catalog(stack: Stack) -> dict:
    import requests

    from sandbox.bpium import DEMO_LOGIN, DEMO_PASSWORD

    return requests.get(
        f"{stack.bpium_url}/api/v1/catalogs/{stack.meetings}",
        auth=(DEMO_LOGIN, DEMO_PASSWORD),
        timeout=10,
    ).json()


def test_meeting_with_reminders_and_meet_switch_shows_both(roles: Functions) -> None:
    stack = roles.stack
    record = meeting(stack, **{"11": "10, 1440", "12": True})
    answer = roles.created(record).get_json()
    event = stack.google.event("primary", answer["eventId"])
    assert event["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "email", "minutes": 10}, {"method": "email", "minutes": 1440}],
    }
    assert event["conferenceData"]["entryPoints"][0]["uri"].startswith("https://meet.google.com/")
    assert event["hangoutLink"] == event["conferenceData"]["entryPoints"][0]["uri"]
    listed = roles.scenario(
        "list_events", {"timeMin": "2026-12-01", "timeMax": "2026-12-02"}
    ).get_json()
    assert listed["items"][0]["meetLink"] == event["hangoutLink"]
    assert listed["items"][0]["reminders"] == [
        {"method": "email", "minutes": 10},
        {"method": "email", "minutes": 1440},
    ]


def test_meet_link_stays_the_same_across_updates(roles: Functions) -> None:
    stack = roles.stack
    record = meeting(stack, **{"12": True})
    event_id = roles.created(record).get_json()["eventId"]
    link = stack.google.event("primary", event_id)["hangoutLink"]
    full = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.update_record(stack.meetings, record, {"2": "Renamed"}, fire=False)
    roles.updated(record, {"2": "Renamed"}, full)
    assert stack.google.event("primary", event_id)["hangoutLink"] == link


def test_too_many_reminders_is_refused_naming_the_field(roles: Functions) -> None:
    answer = roles.created(meeting(roles.stack, **{"11": "1,2,3,4,5,6"}))
    assert answer.status_code == 200  # refused for good: not retried
    assert answer.get_json()["status"] == "refused"
    assert answer.get_json()["error"]["field"] == "11"
    assert roles.stack.google.events("primary") == []


def test_link_role_receives_the_events_link_on_write_back(roles: Functions) -> None:
    stack = roles.stack
    record = meeting(stack)
    event_id = roles.created(record).get_json()["eventId"]
    values = stack.bpium.record(stack.meetings, record)["values"]
    assert values["8"] == event_id
    assert values["14"] == stack.google.event("primary", event_id)["htmlLink"]
    roles.reset_calls()
    roles.created(record)  # holds both already: no write-back (and the e-mails are cached)
    assert [c.method for c in stack.bpium.recorder.snapshot()] == []


def test_update_of_only_written_fields_is_ignored(roles: Functions) -> None:
    stack = roles.stack
    record = meeting(stack)
    roles.created(record)
    full = stack.bpium.record(stack.meetings, record)["values"]
    roles.reset_calls()
    answer = roles.updated(
        record, {"8": full["8"], "14": full["14"]}, {**full, "8": None, "14": None}
    )
    assert answer.get_json()["reason"] == "own_write_back"
    assert roles.calls() == {"google": 0, "bpium": 0, "secrets": 0}


def test_calendar_role_puts_the_meeting_in_another_calendar_and_moves_it(roles: Functions) -> None:
    stack = roles.stack
    record = meeting(stack, **{"13": TEAM})
    answer = roles.created(record).get_json()
    assert answer["calendarId"] == TEAM
    event_id = answer["eventId"]
    assert stack.google.event(TEAM, event_id)["status"] == "confirmed"
    full = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.update_record(stack.meetings, record, {"13": None}, fire=False)
    moved = roles.updated(record, {"13": None}, full).get_json()
    assert moved == {"status": "updated", "eventId": event_id, "calendarId": "primary"}
    assert stack.google.event("primary", event_id)["status"] == "confirmed"
    team_copy = stack.google.event(TEAM, event_id)
    assert team_copy is None or team_copy["status"] == "cancelled"


def test_delete_finds_the_event_in_the_meetings_calendar(roles: Functions) -> None:
    stack = roles.stack
    record = meeting(stack, **{"13": TEAM})
    event_id = roles.created(record).get_json()["eventId"]
    answer = roles.deleted(record).get_json()
    assert answer == {"status": "cancelled", "eventId": event_id, "calendarId": TEAM}
    assert stack.google.event(TEAM, event_id)["status"] == "cancelled"


def test_send_updates_governs_every_write_deletes_included(
    roles: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = roles.stack
    monkeypatch.setenv("SEND_UPDATES", "externalOnly")
    services.reset()
    record = meeting(stack)
    roles.created(record)
    full = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.update_record(stack.meetings, record, {"2": "New"}, fire=False)
    roles.updated(record, {"2": "New"}, full)
    roles.deleted(record)
    mine = [
        n
        for n in stack.google.notifications
        if n["eventId"] == event_id_for(stack.meetings, record)
    ]
    assert [n["action"] for n in mine] == ["insert", "patch", "delete"]
    assert {n["sendUpdates"] for n in mine} == {"externalOnly"}
