"""Pure mapping: webhook → meeting → event body."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bpium_calendar.domain import (
    CatalogSchema,
    EmployeeRef,
    FieldInfo,
    MappingOptions,
    attendees,
    emails_in,
    event_body,
    meeting_from_values,
    parse_catalog,
    parse_webhook,
    update_is_noop,
)
from bpium_calendar.errors import BadRequest, Unprocessable
from bpium_calendar.event_ids import (
    EventRef,
    decode_event_id,
    event_id_for,
    generation_of,
    is_event_id,
)
from bpium_calendar.settings import FieldMap, Reminder

FIELDS = FieldMap(
    title="2",
    start="3",
    end="4",
    agenda="5",
    employees="6",
    guests="7",
    event_id="8",
    location="9",
)
SCHEMA = CatalogSchema(
    "7",
    {
        "2": FieldInfo("text"),
        "3": FieldInfo("date"),
        "4": FieldInfo("date"),
        "5": FieldInfo("text"),
        "6": FieldInfo("user"),
        "7": FieldInfo("contact"),
        "8": FieldInfo("text"),
        "9": FieldInfo("text"),
    },
)
OPTIONS = MappingOptions(
    fields=FIELDS,
    time_zone="Europe/Moscow",
    default_duration_minutes=60,
    default_reminders=(),
    employees_catalog="$users",
)


def hook(
    event: str = "record.created", values: dict | None = None, prev: dict | None = None
) -> bytes:
    return json.dumps(
        {
            "timestamp": "2026-11-30T10:00:00.000Z",
            "hook": {"id": "h1", "event": event, "sequenceId": 3},
            "payload": {
                "catalogId": 7,
                "recordId": 42,
                "values": values or {},
                "prevValues": prev or {},
            },
            "user": {"id": 1},
        }
    ).encode()


def test_parse_webhook_reads_ids_as_strings_and_merges_full_state() -> None:
    webhook = parse_webhook(hook("record.updated", {"2": "New"}, {"2": "Old", "3": "x"}))
    assert (webhook.catalog_id, webhook.record_id, webhook.sequence_id) == ("7", "42", "3")
    assert webhook.full_values() == {"2": "New", "3": "x"}
    assert webhook.changed_fields() == {"2"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", None),
        (b"[]", "body"),
        (json.dumps({"hook": {"event": "record.created"}}).encode(), "payload"),
        (
            json.dumps(
                {"hook": {"event": "record.created"}, "payload": {"catalogId": "7"}}
            ).encode(),
            "payload.recordId",
        ),
        (
            json.dumps({"hook": {}, "payload": {"catalogId": "7", "recordId": "1"}}).encode(),
            "hook.event",
        ),
        (
            json.dumps(
                {
                    "hook": {"event": "record.created"},
                    "payload": {"catalogId": "7", "recordId": "1", "values": []},
                }
            ).encode(),
            "payload.values",
        ),
    ],
)
def test_parse_webhook_names_the_problem(body: bytes, field: str | None) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_webhook(body)
    if field:
        assert caught.value.details["field"] == field
    else:
        assert caught.value.code == "invalid_json"


def test_event_id_is_deterministic_base32hex() -> None:
    first = event_id_for("7", "42")
    assert first == event_id_for("7", "42")
    assert first != event_id_for("7", "43")
    assert is_event_id(first)
    assert not is_event_id("has-dash")
    assert not is_event_id("abcd")  # too short
    assert not is_event_id("wxyz12")  # w..z are not base32hex


@pytest.mark.parametrize(
    ("catalog", "record", "generation"),
    [("7", "42", 0), ("7", "42", 3), ("$users", "9", 0), ("a_b-C", "x" * 64, 99)],
)
def test_event_id_names_its_record_and_generation(
    catalog: str, record: str, generation: int
) -> None:
    event_id = event_id_for(catalog, record, generation)
    assert is_event_id(event_id)
    assert decode_event_id(event_id) == EventRef(catalog, record, generation)
    assert generation_of(event_id, catalog, record) == generation
    assert generation_of(event_id, catalog, record + "0") == 0  # another record's id


def test_generations_of_one_record_differ() -> None:
    ids = {event_id_for("7", "42", g) for g in range(10)}
    assert len(ids) == 10


@pytest.mark.parametrize(
    "other",
    [
        "a" * 40,  # a legacy sha256 id, or any id Google or a person chose
        "3f2a9c0e7b",
        "",
        "abcde\n",
        event_id_for("7", "42").upper(),
        event_id_for("7", "42") + "0",  # not canonical base32
    ],
)
def test_other_ids_name_no_record(other: str) -> None:
    assert decode_event_id(other) is None


def test_meeting_maps_to_event_body_in_time_zone() -> None:
    values = {
        "2": "Планёрка",
        "3": "2026-12-01T07:00:00.000Z",
        "4": "2026-12-01T08:30:00.000Z",
        "5": "Повестка",
        "6": [{"id": "1", "title": "Анна"}],
        "7": [{"contact": "g@x.org"}],
        "9": "Room 1",
    }
    meeting = meeting_from_values("7", "42", values, SCHEMA, OPTIONS)
    body = event_body(meeting, ["a@x.org", "g@x.org"], "Europe/Moscow")
    assert body["start"] == {"dateTime": "2026-12-01T10:00:00+03:00", "timeZone": "Europe/Moscow"}
    assert body["end"] == {"dateTime": "2026-12-01T11:30:00+03:00", "timeZone": "Europe/Moscow"}
    assert body["summary"] == "Планёрка"
    assert body["description"] == "Повестка"
    assert body["location"] == "Room 1"
    assert body["attendees"] == [{"email": "a@x.org"}, {"email": "g@x.org"}]
    # The overrides are cleared in the same write: events.patch merges nested objects.
    assert body["reminders"] == {"useDefault": True, "overrides": None}
    assert "status" not in body  # a write never revives a cancelled event by itself
    assert body["extendedProperties"] == {"private": {"bpiumCatalogId": "7", "bpiumRecordId": "42"}}
    assert meeting.employees == (EmployeeRef("$users", "1"),)


def test_missing_end_uses_default_duration() -> None:
    values = {"3": "2026-12-01T07:00:00.000Z"}
    options = MappingOptions(FIELDS, "UTC", 45, (), "$users")
    body = event_body(meeting_from_values("7", "1", values, SCHEMA, options), [], "UTC")
    assert body["end"]["dateTime"] == "2026-12-01T07:45:00+00:00"
    assert body["summary"] == "Встреча"


def test_date_only_start_makes_an_all_day_event_on_the_local_date() -> None:
    schema = CatalogSchema("7", {**SCHEMA.fields, "3": FieldInfo("date", date_only=True)})
    # Local midnight of 6 Dec in Moscow, stored in UTC as Bpium does.
    values = {"3": "2026-12-05T21:00:00.000Z", "4": "2026-12-06T21:00:00.000Z"}
    meeting = meeting_from_values("7", "1", values, schema, OPTIONS)
    assert meeting.all_day
    assert (meeting.start, meeting.end) == (date(2026, 12, 6), date(2026, 12, 8))
    body = event_body(meeting, [], "Europe/Moscow")
    assert body["start"] == {"date": "2026-12-06"}
    assert body["end"] == {"date": "2026-12-08"}


def test_all_day_without_end_lasts_one_day() -> None:
    schema = CatalogSchema("7", {**SCHEMA.fields, "3": FieldInfo("date", date_only=True)})
    meeting = meeting_from_values("7", "1", {"3": "2026-12-05T21:00:00.000Z"}, schema, OPTIONS)
    assert (meeting.start, meeting.end) == (date(2026, 12, 6), date(2026, 12, 7))


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({}, "3"),
        ({"3": "tomorrow"}, "3"),
        ({"3": 5}, "3"),
        ({"3": "2026-12-01T10:00:00"}, "3"),
        ({"3": "2026-12-01T10:00:00Z", "4": "2026-12-01T09:00:00Z"}, "4"),
    ],
)
def test_impossible_meeting_names_the_field(values: dict, field: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        meeting_from_values("7", "1", values, SCHEMA, OPTIONS)
    assert caught.value.details["field"] == field
    assert caught.value.status == 422


def test_all_day_end_before_start_is_unprocessable() -> None:
    schema = CatalogSchema("7", {**SCHEMA.fields, "3": FieldInfo("date", date_only=True)})
    values = {"3": "2026-12-05T21:00:00.000Z", "4": "2026-12-03T21:00:00.000Z"}
    with pytest.raises(Unprocessable):
        meeting_from_values("7", "1", values, schema, OPTIONS)


def test_object_links_become_refs_to_their_catalog() -> None:
    schema = CatalogSchema("7", {**SCHEMA.fields, "6": FieldInfo("object")})
    values = {
        "3": "2026-12-01T07:00:00Z",
        "6": [
            {"catalogId": 8, "recordId": 3, "recordTitle": "Ольга"},
            {"catalogId": "8", "recordId": "3"},
            "junk",
            {"catalogId": "8"},
        ],
    }
    meeting = meeting_from_values("7", "1", values, schema, OPTIONS)
    assert meeting.employees == (EmployeeRef("8", "3"),)


def test_attendees_are_deduplicated_case_insensitively_and_invalid_dropped() -> None:
    result = attendees(
        ["Anna@X.org", "anna@x.org", "not-an-email", " ivan@x.org ", "a@b", "x y@z.org"]
    )
    assert result.emails == ("Anna@X.org", "ivan@x.org")
    assert result.dropped == ("not-an-email", "a@b", "x y@z.org")


def test_emails_in_contact_and_text_fields() -> None:
    assert emails_in([{"contact": "a@x.org", "comment": "c"}, {"contact": " "}, "b@x.org"]) == (
        "a@x.org",
        "b@x.org",
    )
    assert emails_in("a@x.org, b@x.org;c@x.org") == ("a@x.org", "b@x.org", "c@x.org")
    assert emails_in(None) == ()


def test_reminders_become_overrides() -> None:
    options = MappingOptions(
        FIELDS, "UTC", 60, (Reminder("popup", 10), Reminder("email", 1440)), "$users"
    )
    meeting = meeting_from_values("7", "1", {"3": "2026-12-01T07:00:00Z"}, SCHEMA, options)
    assert event_body(meeting, [], "UTC")["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 10}, {"method": "email", "minutes": 1440}],
    }


def test_update_of_only_event_id_field_is_our_own_write_back() -> None:
    webhook = parse_webhook(hook("record.updated", {"8": "abc123"}, {"8": None, "2": "T"}))
    assert update_is_noop(webhook, FIELDS) == "own_write_back"


def test_update_of_unsynced_field_needs_no_sync() -> None:
    webhook = parse_webhook(hook("record.updated", {"99": "x"}, {"99": "y"}))
    assert update_is_noop(webhook, FIELDS) == "no_synced_field_changed"


def test_update_that_changes_nothing_needs_no_sync() -> None:
    webhook = parse_webhook(hook("record.updated", {"2": "T"}, {"2": "T"}))
    assert update_is_noop(webhook, FIELDS) == "nothing_changed"


def test_update_of_title_must_sync() -> None:
    webhook = parse_webhook(hook("record.updated", {"2": "New", "8": "x"}, {"2": "Old"}))
    assert update_is_noop(webhook, FIELDS) is None


def test_parse_catalog_knows_date_only_fields() -> None:
    schema = parse_catalog(
        {
            "id": "7",
            "fields": [
                {"id": 3, "type": "date", "config": {"time": False}},
                {"id": "4", "type": "date", "config": {"time": True}},
                {"id": "6", "type": "user", "config": None},
                "junk",
            ],
        }
    )
    assert schema.is_date_only("3")
    assert not schema.is_date_only("4")
    assert schema.type_of("6") == "user"
    assert schema.type_of("nope") is None


@pytest.mark.parametrize("record_id", ["../../8/records/1", "1?x=2", "a b", "", "x" * 65, "1.2"])
def test_ids_that_could_steer_a_url_are_refused(record_id: str) -> None:
    body = json.dumps(
        {"hook": {"event": "record.created"}, "payload": {"catalogId": "7", "recordId": record_id}}
    ).encode()
    with pytest.raises(BadRequest) as caught:
        parse_webhook(body)
    assert caught.value.details["field"] == "payload.recordId"


@pytest.mark.parametrize("body", [b'{"a": "\\ud800"}', b"[" * 100_000 + b"]" * 100_000])
def test_lone_surrogates_and_deep_nesting_are_not_json_we_take(body: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_webhook(body)
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("start", ["9999-12-31T23:59:00+00:00", "0001-01-01T00:00:00+05:00"])
def test_dates_at_pythons_limits_are_unprocessable(start: str) -> None:
    with pytest.raises(Unprocessable):
        meeting_from_values("7", "1", {"3": start}, SCHEMA, OPTIONS)


def test_offsets_with_seconds_are_written_in_utc() -> None:
    meeting = meeting_from_values("7", "1", {"3": "1900-01-01T00:00:00.000Z"}, SCHEMA, OPTIONS)
    body = event_body(meeting, [], "Europe/Moscow")
    assert body["start"] == {"dateTime": "1900-01-01T00:00:00+00:00", "timeZone": "Europe/Moscow"}


def test_times_are_written_as_google_and_bpium_want_them() -> None:
    from datetime import UTC, datetime

    from bpium_calendar.domain import bpium_time, rfc3339

    assert rfc3339(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00Z"
    assert rfc3339(datetime(2026, 12, 1, 10, 0, 1, 999, tzinfo=UTC)) == "2026-12-01T10:00:01Z"
    assert (
        bpium_time(datetime(2026, 12, 1, 7, 0, 0, 123456, tzinfo=UTC)) == "2026-12-01T07:00:00.123Z"
    )
