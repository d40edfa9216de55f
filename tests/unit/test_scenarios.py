"""Pure parts of the scenario calls and the meeting roles of issue «reminders and invitations»."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bpium_calendar.domain import (
    CatalogSchema,
    FieldInfo,
    MappingOptions,
    event_body,
    meeting_from_values,
)
from bpium_calendar.errors import BadRequest, Unprocessable
from bpium_calendar.event_ids import event_id_for
from bpium_calendar.scenarios import flat_event, parse_list_query, parse_new_calendar
from bpium_calendar.settings import FieldMap, Reminder, Settings

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SETTINGS = Settings.from_env(
    {
        "BPIUM_URL": "https://acme.bpium.ru",
        "BPIUM_MEETINGS_CATALOG": "7",
        "GCP_PROJECT": "p",
        "TASKS_QUEUE": "projects/p/locations/europe-west1/queues/meetings",
        "SYNC_WORKER_URL": "https://europe-west1-p.cloudfunctions.net/sync-meeting",
        "BPIUM_FIELDS": json.dumps(
            {
                "title": "2",
                "start": "3",
                "end": "4",
                "agenda": "5",
                "employees": "6",
                "guests": "7",
                "event_id": "8",
            }
        ),
    }
)


def test_default_window_is_now_to_thirty_days_with_instances_in_order() -> None:
    query = parse_list_query({}, SETTINGS, NOW)
    assert query.calendar_id == "primary"
    assert query.params == {
        "timeMin": "2026-11-30T09:00:00Z",
        "timeMax": "2026-12-30T09:00:00Z",
        "singleEvents": True,
        "orderBy": "startTime",
    }
    assert query.limit == 10000
    assert not query.sync


def test_bpium_iso_strings_and_plain_dates_are_accepted() -> None:
    query = parse_list_query(
        {
            "timeMin": "2026-12-01",
            "timeMax": "2026-12-05T21:00:00.000Z",
            "q": "Планёрка",
            "updatedMin": "2026-11-01",
            "limit": "50",
            "calendarId": "team@group.calendar.google.com",
        },
        SETTINGS,
        NOW,
    )
    assert query.params["timeMin"] == "2026-11-30T21:00:00Z"  # Moscow midnight
    assert query.params["timeMax"] == "2026-12-05T21:00:00Z"
    assert query.params["q"] == "Планёрка"
    assert query.params["updatedMin"] == "2026-10-31T21:00:00Z"
    assert query.limit == 50
    assert query.calendar_id == "team@group.calendar.google.com"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"timeMin": "yesterday"}, "timeMin"),
        ({"timeMin": "2026-12-02", "timeMax": "2026-12-01"}, "timeMax"),
        ({"limit": "lots"}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": 100001}, "limit"),
        ({"sync": "maybe"}, "sync"),
        ({"syncToken": "abc", "timeMin": "2026-12-01"}, "timeMin"),
        ({"sync": "true", "q": "x"}, "q"),
        ({"sync": "true", "timeMin": "2026-12-02", "timeMax": "2026-12-01"}, "timeMax"),
        ({"sync": "true", "timeMin": "never"}, "timeMin"),
        ({"syncToken": "abc", "q": "x"}, "q"),
        ({"calendarId": {"a": 1}}, "calendarId"),
    ],
)
def test_bad_list_parameters_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_list_query(params, SETTINGS, NOW)
    assert caught.value.details["field"] == field


def test_sync_mode_reads_every_page_without_a_window() -> None:
    first = parse_list_query({"sync": True}, SETTINGS, NOW)
    assert first.sync
    assert first.limit is None
    assert first.params == {"singleEvents": True}
    follow = parse_list_query({"syncToken": "tok"}, SETTINGS, NOW)
    assert follow.params == {"singleEvents": True, "syncToken": "tok"}


def test_a_first_sync_may_be_bounded_but_never_ordered() -> None:
    bounded = parse_list_query(
        {"sync": "true", "timeMin": "2026-12-01", "timeMax": "2027-01-01"}, SETTINGS, NOW
    )
    assert bounded.sync
    assert bounded.limit is None
    # No orderBy: Google gives no nextSyncToken to an ordered list.
    assert bounded.params == {
        "singleEvents": True,
        "timeMin": "2026-11-30T21:00:00Z",
        "timeMax": "2026-12-31T21:00:00Z",
    }


def test_flat_event_is_easy_to_read_from_a_scenario() -> None:
    event = {
        "id": "e1",
        "status": "confirmed",
        "summary": "S",
        "start": {"dateTime": "2026-12-01T10:00:00+03:00", "timeZone": "Europe/Moscow"},
        "end": {"dateTime": "2026-12-01T11:00:00+03:00"},
        "attendees": [{"email": "a@x.org", "responseStatus": "accepted", "self": True}],
        "organizer": {"email": "o@x.org"},
        "htmlLink": "https://cal/e1",
        "conferenceData": {
            "entryPoints": [
                {"entryPointType": "phone", "uri": "tel:1"},
                {"entryPointType": "video", "uri": "https://meet.google.com/a"},
            ]
        },
        "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]},
        "extendedProperties": {"private": {"bpiumCatalogId": "7", "bpiumRecordId": "42"}},
        "updated": "2026-11-30T00:00:00.000Z",
    }
    flat = flat_event(event)
    assert flat["start"] == "2026-12-01T10:00:00+03:00"
    assert flat["allDay"] is False
    assert flat["attendees"] == [{"email": "a@x.org", "responseStatus": "accepted"}]
    assert flat["organizer"] == "o@x.org"
    assert flat["meetLink"] == "https://meet.google.com/a"
    assert flat["reminders"] == [{"method": "popup", "minutes": 10}]
    assert (flat["bpiumCatalogId"], flat["bpiumRecordId"]) == ("7", "42")
    all_day = flat_event(
        {
            "id": "e2",
            "start": {"date": "2026-12-01"},
            "end": {"date": "2026-12-02"},
            "hangoutLink": "https://meet.google.com/b",
        }
    )
    assert all_day["allDay"] is True
    assert all_day["meetLink"] == "https://meet.google.com/b"
    assert all_day["reminders"] == "default"
    cancelled = flat_event({"id": "e3", "status": "cancelled"})
    assert cancelled["status"] == "cancelled"
    assert cancelled["start"] is None
    assert (cancelled["bpiumCatalogId"], cancelled["bpiumRecordId"]) == (None, None)


def test_a_bare_cancelled_item_of_ours_is_named_by_its_id() -> None:
    ours = flat_event({"id": event_id_for("7", "42", 2), "status": "cancelled"})
    assert (ours["bpiumCatalogId"], ours["bpiumRecordId"]) == ("7", "42")


def test_new_calendar_defaults_and_checks() -> None:
    new = parse_new_calendar(
        {"summary": "Переговорная", "shareWith": [{"email": "a@x.org"}], "ifNotExists": "true"},
        SETTINGS,
    )
    assert new.time_zone == "Europe/Moscow"
    assert new.share[0].role == "reader"
    assert new.if_not_exists


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "summary"),
        ({"summary": "x", "timeZone": "Mars/Base"}, "timeZone"),
        ({"summary": "x", "shareWith": "a@x.org"}, "shareWith"),
        ({"summary": "x", "shareWith": ["a@x.org"]}, "shareWith[0]"),
        ({"summary": "x", "shareWith": [{"email": "nope"}]}, "shareWith[0].email"),
        (
            {"summary": "x", "shareWith": [{"email": "a@x.org", "role": "admin"}]},
            "shareWith[0].role",
        ),
    ],
)
def test_bad_calendar_parameters_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_new_calendar(params, SETTINGS)
    assert caught.value.details["field"] == field


FIELDS = FieldMap(
    title="2",
    start="3",
    end="4",
    agenda="5",
    employees="6",
    guests="7",
    event_id="8",
    reminders="11",
    meet="12",
    calendar="13",
    link="14",
)
SCHEMA = CatalogSchema("7", {"3": FieldInfo("date"), "4": FieldInfo("date")})


def options(default: tuple[Reminder, ...] = ()) -> MappingOptions:
    return MappingOptions(FIELDS, "UTC", 60, default, "$users", reminder_method="email")


@pytest.mark.parametrize(
    ("raw", "minutes"),
    [
        (10, [10]),
        ("10, 60;1440", [10, 60, 1440]),
        (["15", 30], [15, 30]),
        ("0", [0]),
        (40320, [40320]),
        ("10,10", [10]),
    ],
)
def test_reminders_field_becomes_overrides_with_the_method_setting(
    raw: object, minutes: list[int]
) -> None:
    meeting = meeting_from_values(
        "7", "1", {"3": "2026-12-01T07:00:00Z", "11": raw}, SCHEMA, options()
    )
    assert meeting.reminders == tuple(Reminder("email", m) for m in minutes)


@pytest.mark.parametrize("raw", ["1,2,3,4,5,6", "40321", "-5", "soon", "1.5", [True], "nan"])
def test_bad_reminders_are_422_naming_the_field(raw: object) -> None:
    with pytest.raises(Unprocessable) as caught:
        meeting_from_values("7", "1", {"3": "2026-12-01T07:00:00Z", "11": raw}, SCHEMA, options())
    assert caught.value.details["field"] == "11"


def test_default_reminders_apply_when_the_meeting_has_none() -> None:
    default = (Reminder("popup", 5),)
    meeting = meeting_from_values(
        "7", "1", {"3": "2026-12-01T07:00:00Z", "11": ""}, SCHEMA, options(default)
    )
    assert meeting.reminders == default


def test_meet_switch_asks_for_a_conference_with_a_stable_request_id() -> None:
    values = {
        "3": "2026-12-01T07:00:00Z",
        "12": True,
        "13": " team@group.calendar.google.com ",
        "14": "L",
    }
    meeting = meeting_from_values("7", "9", values, SCHEMA, options())
    assert meeting.calendar_id == "team@group.calendar.google.com"
    assert meeting.stored_link == "L"
    body = event_body(meeting, [], "UTC")
    assert body["conferenceData"] == {
        "createRequest": {
            "requestId": "bpium-7-9",
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }
    }
    off = meeting_from_values("7", "9", {**values, "12": False}, SCHEMA, options())
    assert "conferenceData" not in event_body(off, [], "UTC")
