"""What an event says back to its record: whose it is, the answers, the status, a person's edits."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bpium_calendar.domain import (
    PRIVATE_SIGNATURE_KEY,
    CatalogSchema,
    FieldInfo,
    MappingOptions,
    Meeting,
    event_body,
    meeting_from_values,
)
from bpium_calendar.event_ids import event_id_for
from bpium_calendar.settings import FieldMap
from bpium_calendar.two_way import (
    bpium_value,
    event_status,
    person_edits,
    record_of,
    responses_text,
    signature,
)

ZONE = "Europe/Moscow"
ROLES = ("title", "start", "end", "agenda", "location")


def marked(catalog_id: str, record_id: str, **event: Any) -> dict[str, Any]:
    private = {"bpiumCatalogId": catalog_id, "bpiumRecordId": record_id}
    return {**event, "extendedProperties": {"private": private}}


def meeting(start: datetime | date, end: datetime | date, **kw: Any) -> Meeting:
    values: dict[str, Any] = {
        "catalog_id": "7",
        "record_id": "42",
        "title": "Plan",
        "start": start,
        "end": end,
        "agenda": "Budget\nHiring",
        "location": "Room 5",
        "employees": (),
        "guests": (),
        "stored_event_id": None,
        "reminders": (),
    }
    return Meeting(**{**values, **kw})


def signed_body(m: Meeting) -> dict[str, Any]:
    """The body as our sync writes it: the domain's body with the signature of itself."""
    body: dict[str, Any] = json.loads(json.dumps(event_body(m, ["ann@acme.example"], ZONE)))
    body["extendedProperties"]["private"][PRIVATE_SIGNATURE_KEY] = signature(body)
    return body


def as_google_returns(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The event Google answers with: our fields plus its own, times spelled its way."""
    event = json.loads(json.dumps(body))
    event.pop("reminders")
    event.update(
        id=event_id_for("7", "42"),
        etag='"3456"',
        status="confirmed",
        htmlLink="https://www.google.com/calendar/event?eid=x",
        organizer={"email": "owner@acme.example", "self": True},
        creator={"email": "owner@acme.example"},
        attendees=[{"email": "ann@acme.example", "responseStatus": "accepted"}],
        updated="2026-11-20T08:00:00.000Z",
    )
    event.update(changes)
    return event


# record_of


def test_an_event_marked_with_the_catalog_names_its_record() -> None:
    event = marked("7", "42", id="someone0else0made0this")
    assert record_of(event, "7") == "42"


def test_a_cancelled_item_with_only_our_id_names_its_record() -> None:
    assert record_of({"id": event_id_for("7", "42"), "status": "cancelled"}, "7") == "42"
    assert record_of({"id": event_id_for("7", "42", 3), "status": "cancelled"}, "7") == "42"


def test_an_event_of_another_catalog_is_not_ours() -> None:
    assert record_of(marked("8", "42"), "7") is None
    assert record_of({"id": event_id_for("8", "42"), "status": "cancelled"}, "7") is None
    assert record_of({"id": event_id_for("8", "42")}, "8") == "42"


@pytest.mark.parametrize(
    "event_id",
    [
        "3q2b1kd8mhs0n1v9cjg3h0b0ld",  # Calendar's own ids are base32hex too
        "abcde",
        "_60q30c1g60o30e1i60o4ac1g60rj8gpl88rj2c1h84s34h9g",  # an instance of a series
        "",
    ],
)
def test_a_persons_event_is_not_ours(event_id: str) -> None:
    assert record_of({"id": event_id, "status": "confirmed", "summary": "Lunch"}, "7") is None


def test_marks_without_a_record_fall_back_to_the_id() -> None:
    event = {"id": event_id_for("7", "43"), **marked("7", "")}
    assert record_of(event, "7") == "43"
    assert record_of({"id": "person0id0x", **marked("7", "")}, "7") is None


# responses_text


def test_responses_leave_out_the_organizer_either_way_and_keep_the_order() -> None:
    event = {
        "organizer": {"email": "Owner@Acme.example"},
        "attendees": [
            {"email": "Zed@Acme.example", "responseStatus": "declined"},
            {"email": "owner@acme.example", "responseStatus": "accepted"},
            {"email": "boss@acme.example", "organizer": True, "responseStatus": "accepted"},
            {"email": "ann@acme.example", "responseStatus": "tentative"},
            {"email": "bob@acme.example", "responseStatus": "needsAction"},
            {"email": "cat@acme.example", "responseStatus": "accepted"},
        ],
    }
    assert responses_text(event) == (
        "zed@acme.example: declined\n"
        "ann@acme.example: tentative\n"
        "bob@acme.example: needsAction\n"
        "cat@acme.example: accepted"
    )


def test_responses_are_empty_until_someone_answers() -> None:
    waiting = {
        "organizer": {"email": "owner@acme.example"},
        "attendees": [
            {"email": "owner@acme.example", "responseStatus": "accepted"},
            {"email": "ann@acme.example", "responseStatus": "needsAction"},
            {"email": "bob@acme.example", "responseStatus": "maybe"},
            {"email": "cat@acme.example"},
        ],
    }
    assert responses_text(waiting) == ""
    assert responses_text({"summary": "nobody invited"}) == ""


def test_once_one_answers_every_line_appears_and_unknown_statuses_read_needs_action() -> None:
    event = {
        "organizer": {"email": "owner@acme.example"},
        "attendees": [
            {"email": "ann@acme.example", "responseStatus": "maybe"},
            {"email": "bob@acme.example"},
            {"email": "cat@acme.example", "responseStatus": "accepted"},
        ],
    }
    assert responses_text(event).splitlines() == [
        "ann@acme.example: needsAction",
        "bob@acme.example: needsAction",
        "cat@acme.example: accepted",
    ]


# event_status


@pytest.mark.parametrize(
    ("given", "status"),
    [
        ({"status": "confirmed"}, "confirmed"),
        ({"status": "tentative"}, "tentative"),
        ({"status": "cancelled"}, "cancelled"),
        ({"status": "deleted"}, "confirmed"),
        ({}, "confirmed"),
    ],
)
def test_event_status_reads_googles_three_values(given: dict[str, Any], status: str) -> None:
    assert event_status(given) == status


# signature and person_edits


def test_our_own_write_read_back_from_google_shows_no_edit() -> None:
    start = datetime(2026, 12, 1, 7, tzinfo=UTC)
    body = signed_body(meeting(start, datetime(2026, 12, 1, 8, tzinfo=UTC)))
    assert body["start"] == {"dateTime": "2026-12-01T10:00:00+03:00", "timeZone": ZONE}
    event = as_google_returns(
        body,
        start={"dateTime": "2026-12-01T07:00:00Z", "timeZone": ZONE},
        end={"dateTime": "2026-12-01T11:00:00+03:00", "timeZone": ZONE},
    )
    assert person_edits(event, ROLES) == {}


def test_a_changed_summary_shows_exactly_the_title() -> None:
    body = signed_body(
        meeting(datetime(2026, 12, 1, 7, tzinfo=UTC), datetime(2026, 12, 1, 8, tzinfo=UTC))
    )
    event = as_google_returns(body, summary="Plan (moved room)")
    edits = person_edits(event, ROLES)
    assert list(edits) == ["title"]
    raw = body["extendedProperties"]["private"][PRIVATE_SIGNATURE_KEY]
    signed = dict(part.split(":") for part in raw.split(","))
    assert edits["title"] == signed["title"]


def test_a_moved_start_shows_only_start_and_only_among_the_roles_asked() -> None:
    body = signed_body(
        meeting(datetime(2026, 12, 1, 7, tzinfo=UTC), datetime(2026, 12, 1, 8, tzinfo=UTC))
    )
    event = as_google_returns(
        body,
        start={"dateTime": "2026-12-01T09:30:00Z", "timeZone": ZONE},
        location="Room 6",
    )
    assert set(person_edits(event, ROLES)) == {"start", "location"}
    assert set(person_edits(event, ("start", "end"))) == {"start"}
    assert person_edits(event, ("title", "end")) == {}


def test_an_event_without_our_signature_shows_nothing() -> None:
    event = marked("7", "42", summary="Changed", start={"dateTime": "2026-12-01T07:00:00Z"})
    assert person_edits(event, ROLES) == {}
    assert person_edits({"summary": "Lunch"}, ROLES) == {}


def test_all_day_dates_are_signed_as_dates() -> None:
    body = signed_body(meeting(date(2026, 12, 1), date(2026, 12, 3)))
    assert (body["start"], body["end"]) == ({"date": "2026-12-01"}, {"date": "2026-12-03"})
    assert person_edits(as_google_returns(body), ROLES) == {}
    longer = as_google_returns(body, end={"date": "2026-12-04"})
    assert list(person_edits(longer, ROLES)) == ["end"]


def test_an_untitled_meeting_without_agenda_or_location_reads_back_unedited() -> None:
    body = signed_body(
        meeting(
            datetime(2026, 12, 1, 7, tzinfo=UTC),
            datetime(2026, 12, 1, 8, tzinfo=UTC),
            title="",
            agenda="",
            location=None,
        )
    )
    event = as_google_returns(body)
    del event["description"]  # Google leaves empty fields out of its answer
    assert person_edits(event, ROLES) == {}


def test_signature_names_every_signed_role_in_order() -> None:
    sig = signature({"summary": "Plan", "start": {"date": "2026-12-01"}})
    roles = [part.split(":")[0] for part in sig.split(",")]
    assert roles == list(ROLES)
    assert all(len(part.split(":")[1]) == 10 for part in sig.split(","))
    assert sig != signature({"summary": "Plan", "start": {"date": "2026-12-02"}})


# bpium_value


def test_text_roles_take_the_events_text() -> None:
    event = {"summary": "Plan", "description": "Budget\nHiring", "location": "Room 6"}
    assert bpium_value(event, "title", ZONE) == "Plan"
    assert bpium_value(event, "agenda", ZONE) == "Budget\nHiring"
    assert bpium_value(event, "location", ZONE) == "Room 6"
    assert bpium_value({}, "location", ZONE) == ""


def test_a_time_becomes_bpiums_utc_with_milliseconds() -> None:
    event = {
        "start": {"dateTime": "2026-12-01T10:00:00+03:00", "timeZone": ZONE},
        "end": {"dateTime": "2026-12-01T08:30:00Z", "timeZone": ZONE},
    }
    assert bpium_value(event, "start", ZONE) == "2026-12-01T07:00:00.000Z"
    assert bpium_value(event, "end", ZONE) == "2026-12-01T08:30:00.000Z"


def test_an_all_day_event_becomes_local_midnights_with_the_last_day_as_end() -> None:
    event = {"start": {"date": "2026-12-01"}, "end": {"date": "2026-12-03"}}
    assert bpium_value(event, "start", ZONE) == "2026-11-30T21:00:00.000Z"
    assert bpium_value(event, "end", ZONE) == "2026-12-01T21:00:00.000Z"
    summer = {"start": {"date": "2026-07-01"}, "end": {"date": "2026-07-02"}}
    assert bpium_value(summer, "start", "America/New_York") == "2026-07-01T04:00:00.000Z"
    assert bpium_value(summer, "end", "America/New_York") == "2026-07-01T04:00:00.000Z"


def test_all_day_values_read_back_as_the_same_all_day_meeting() -> None:
    fields = FieldMap("2", "3", "4", "5", "6", "7", "8")
    options = MappingOptions(fields, ZONE, 60, (), "$users")
    schema = CatalogSchema("7", {"3": FieldInfo("date", True), "4": FieldInfo("date", True)})
    event = {"start": {"date": "2026-12-01"}, "end": {"date": "2026-12-03"}}
    values = {"3": bpium_value(event, "start", ZONE), "4": bpium_value(event, "end", ZONE)}
    again = meeting_from_values("7", "42", values, schema, options)
    assert (again.start, again.end) == (date(2026, 12, 1), date(2026, 12, 3))
