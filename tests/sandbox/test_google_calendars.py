"""Calendars, calendar list, ACLs, move, recurring events, Meet and sync tokens of the Google
stand-in, driven by google-api-python-client."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from googleapiclient.http import BatchHttpRequest

from sandbox.common import ServerThread
from sandbox.google_calendar import ApiError, GoogleStandIn
from tests.sandbox.conftest import CLIENT_ID, failure

ACCOUNT = "owner@example.com"
MASTER = "abcdef0123"
MOSCOW = "Europe/Moscow"


@pytest.fixture
def google(shared: tuple[GoogleStandIn, ServerThread]) -> GoogleStandIn:
    stand_in = shared[0]
    stand_in.reset()
    stand_in.add_client(CLIENT_ID, "secret-1")
    return stand_in


def every_page(method: Any, **params: Any) -> list[dict[str, Any]]:
    """The pages of a list call, following nextPageToken."""
    pages = []
    request = method().list(**params)
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = method().list_next(request, page)
    return pages


def items(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page["items"]]


def listed(api: Any, calendar_id: str = "primary", **params: Any) -> list[dict[str, Any]]:
    return items(every_page(api.events, calendarId=calendar_id, **params))


def timed(start: str, end: str, zone: str | None = MOSCOW, **extra: Any) -> dict[str, Any]:
    """A timed event; `start`/`end` local times in `zone` (offset +03:00 when None)."""
    if zone is None:
        return {"start": {"dateTime": start + "+03:00"}, "end": {"dateTime": end + "+03:00"}}
    return {
        "summary": "Standup",
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


def recurring(rule: str, *extra_lines: str, **extra: Any) -> dict[str, Any]:
    """10:00-10:30 Moscow time from Monday 2026-03-02, repeating by `rule`."""
    body = timed("2026-03-02T10:00:00", "2026-03-02T10:30:00", id=MASTER, **extra)
    body["recurrence"] = [f"RRULE:{rule}", *extra_lines]
    return body


# ---------------------------------------------------------------------------- calendars


def test_calendar_insert_get_patch_delete(api: Any, google: GoogleStandIn) -> None:
    body = {"summary": "Rooms", "description": "Bookings", "timeZone": "Asia/Yekaterinburg"}
    created = api.calendars().insert(body=body).execute()

    assert re.fullmatch(r"c_[0-9a-f]{64}@group\.calendar\.google\.com", created["id"])
    assert created["kind"] == "calendar#calendar"
    assert (created["summary"], created["description"]) == ("Rooms", "Bookings")
    assert created["timeZone"] == "Asia/Yekaterinburg"
    assert created["dataOwner"] == ACCOUNT
    assert api.calendars().get(calendarId=created["id"]).execute() == created
    entry = api.calendarList().get(calendarId=created["id"]).execute()
    assert (entry["accessRole"], entry["summary"], entry.get("primary")) == ("owner", "Rooms", None)
    assert google.acl(created["id"]) == [
        {
            "kind": "calendar#aclRule",
            "etag": google.acl(created["id"])[0]["etag"],
            "id": f"user:{ACCOUNT}",
            "scope": {"type": "user", "value": ACCOUNT},
            "role": "owner",
        }
    ]
    event = api.events().insert(calendarId=created["id"], body=timed(
        "2026-03-02T10:00:00", "2026-03-02T11:00:00"
    )).execute()  # fmt: skip
    assert event["organizer"] == {"email": created["id"], "displayName": "Rooms", "self": True}

    patched = api.calendars().patch(calendarId=created["id"], body={"summary": "Halls"}).execute()
    assert (patched["summary"], patched["description"]) == ("Halls", "Bookings")
    replaced = api.calendars().update(calendarId=created["id"], body={"summary": "H"}).execute()
    assert "description" not in replaced
    assert replaced["timeZone"] == "Asia/Yekaterinburg"

    api.calendars().delete(calendarId=created["id"]).execute()
    assert failure(api.calendars().get(calendarId=created["id"])) == (404, "notFound")
    assert failure(api.events().list(calendarId=created["id"])) == (404, "notFound")
    assert failure(api.calendarList().get(calendarId=created["id"])) == (404, "notFound")
    assert [c["id"] for c in google.calendars()] == [ACCOUNT]
    gone = api.calendarList().list(showDeleted=True).execute()["items"]
    assert [(c["id"], c.get("deleted")) for c in gone] == [(ACCOUNT, None), (created["id"], True)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"description": "no title"}, (400, "required")),
        ({"summary": ""}, (400, "required")),
        ({"summary": "x", "timeZone": "Mars/Olympus"}, (400, "invalid")),
        ({"summary": "x", "colour": "red"}, (400, "invalid")),
        ({"summary": 5}, (400, "invalid")),
    ],
)
def test_calendar_insert_checks_its_body(
    api: Any, google: GoogleStandIn, body: dict[str, Any], expected: tuple[int, str]
) -> None:
    assert failure(api.calendars().insert(body=body)) == expected
    assert len(google.calendars()) == 1


def test_new_calendar_takes_the_primary_time_zone(api: Any) -> None:
    created = api.calendars().insert(body={"summary": "Plain"}).execute()
    assert created["timeZone"] == "UTC"


def test_primary_calendar_cannot_be_deleted_but_can_be_cleared(api: Any) -> None:
    assert failure(api.calendars().delete(calendarId="primary")) == (
        400,
        "cannotDeletePrimaryCalendar",
    )
    api.events().insert(calendarId="primary", body=timed(
        "2026-03-02T10:00:00", "2026-03-02T11:00:00"
    )).execute()  # fmt: skip
    api.calendars().clear(calendarId="primary").execute()
    assert listed(api) == []
    assert [e["status"] for e in listed(api, showDeleted=True)] == ["cancelled"]


def test_calendar_list_pages_filters_and_syncs(api: Any, google: GoogleStandIn) -> None:
    ids = [api.calendars().insert(body={"summary": f"C{n}"}).execute()["id"] for n in range(5)]
    google.add_calendar("shared@example.com", "Shared", MOSCOW, access_role="reader")

    pages = every_page(api.calendarList, maxResults=2)
    entries = items(pages)
    assert [len(page["items"]) for page in pages] == [2, 2, 2, 1]
    assert ["nextSyncToken" in page for page in pages] == [False, False, False, True]
    assert [e["id"] for e in entries] == [ACCOUNT, *ids, "shared@example.com"]
    assert entries[0]["primary"] is True
    assert entries[0]["accessRole"] == "owner"
    assert sum(1 for e in entries if e.get("primary")) == 1
    assert entries[-1]["accessRole"] == "reader"
    assert entries[-1]["timeZone"] == MOSCOW
    assert [e["id"] for e in google.calendars()] == [e["id"] for e in entries]

    owned = items(every_page(api.calendarList, minAccessRole="owner"))
    assert "shared@example.com" not in [e["id"] for e in owned]
    assert len(items(every_page(api.calendarList, minAccessRole="reader"))) == 7

    sync_token = pages[-1]["nextSyncToken"]
    hidden = api.calendarList().patch(calendarId=ids[1], body={"hidden": True}).execute()
    assert hidden["hidden"] is True
    visible = [e["id"] for e in items(every_page(api.calendarList))]
    assert ids[1] not in visible
    assert ids[1] in [e["id"] for e in items(every_page(api.calendarList, showHidden=True))]
    changes = api.calendarList().list(syncToken=sync_token).execute()
    assert [e["id"] for e in changes["items"]] == [ids[1]]
    assert failure(api.calendarList().list(syncToken=sync_token, minAccessRole="owner"))[0] == 400


def test_a_shared_reader_calendar_refuses_writes(api: Any, google: GoogleStandIn) -> None:
    google.add_calendar("shared@example.com", access_role="reader")
    body = timed("2026-03-02T10:00:00", "2026-03-02T11:00:00")

    assert failure(api.events().insert(calendarId="shared@example.com", body=body)) == (
        403,
        "requiredAccessLevel",
    )
    assert failure(api.acl().list(calendarId="shared@example.com"))[0] == 403
    assert api.events().list(calendarId="shared@example.com").execute()["accessRole"] == "reader"
    assert google.acl("shared@example.com") == []


# ---------------------------------------------------------------------------- ACL


def test_acl_insert_list_replace_and_delete(api: Any, google: GoogleStandIn) -> None:
    calendar_id = api.calendars().insert(body={"summary": "Team"}).execute()["id"]
    acl = api.acl()
    rule = {"role": "reader", "scope": {"type": "user", "value": "Anna@Example.com"}}

    inserted = acl.insert(calendarId=calendar_id, body=rule, sendNotifications=False).execute()
    assert inserted["id"] == "user:anna@example.com"
    assert inserted["scope"] == {"type": "user", "value": "anna@example.com"}
    assert inserted["role"] == "reader"

    rule["role"] = "writer"  # the same scope again: its rule changes role
    again = acl.insert(calendarId=calendar_id, body=rule).execute()
    assert (again["id"], again["role"]) == ("user:anna@example.com", "writer")
    assert again["etag"] != inserted["etag"]
    rules = acl.list(calendarId=calendar_id).execute()["items"]
    assert [(r["id"], r["role"]) for r in rules] == [
        (f"user:{ACCOUNT}", "owner"),
        ("user:anna@example.com", "writer"),
    ]

    for body in (
        {"role": "freeBusyReader", "scope": {"type": "default"}},
        {"role": "reader", "scope": {"type": "domain", "value": "acme.example"}},
        {"role": "writer", "scope": {"type": "group", "value": "team@acme.example"}},
    ):
        acl.insert(calendarId=calendar_id, body=body).execute()
    ids = [r["id"] for r in google.acl(calendar_id)]
    assert ids[2:] == ["default", "domain:acme.example", "group:team@acme.example"]

    rule_id = "user:anna@example.com"
    assert acl.get(calendarId=calendar_id, ruleId=rule_id).execute()["role"] == "writer"
    patched = acl.patch(calendarId=calendar_id, ruleId=rule_id, body={"role": "reader"}).execute()
    assert patched["role"] == "reader"
    moved_scope = {"role": "reader", "scope": {"type": "user", "value": "ivan@example.com"}}
    assert failure(acl.update(calendarId=calendar_id, ruleId=rule_id, body=moved_scope))[0] == 400

    acl.delete(calendarId=calendar_id, ruleId=rule_id).execute()
    assert failure(acl.get(calendarId=calendar_id, ruleId=rule_id)) == (404, "notFound")
    assert rule_id not in [r["id"] for r in google.acl(calendar_id)]
    with_deleted = acl.list(calendarId=calendar_id, showDeleted=True).execute()["items"]
    assert {"id": rule_id, "role": "none"}.items() <= {
        k: v for r in with_deleted if r["id"] == rule_id for k, v in r.items()
    }.items()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"role": "reader", "scope": {"type": "user", "value": "not-an-email"}}, (400, "invalid")),
        ({"role": "reader", "scope": {"type": "group", "value": "a@b"}}, (400, "invalid")),
        ({"role": "reader", "scope": {"type": "domain", "value": "no domain"}}, (400, "invalid")),
        ({"role": "reader", "scope": {"type": "default", "value": "x@y.z"}}, (400, "invalid")),
        ({"role": "reader", "scope": {"type": "planet", "value": "x@y.z"}}, (400, "invalid")),
        ({"role": "boss", "scope": {"type": "user", "value": "x@y.z"}}, (400, "invalid")),
        ({"scope": {"type": "user", "value": "x@y.z"}}, (400, "required")),
        ({"role": "reader"}, (400, "required")),
        ({"role": "reader", "scope": {"type": "user"}}, (400, "required")),
        ({"role": "reader", "scope": {"type": "user", "value": 5}}, (400, "invalid")),
    ],
)
def test_acl_insert_checks_the_rule(
    api: Any, google: GoogleStandIn, body: dict[str, Any], expected: tuple[int, str]
) -> None:
    assert failure(api.acl().insert(calendarId="primary", body=body)) == expected
    assert [r["id"] for r in google.acl("primary")] == [f"user:{ACCOUNT}"]


def test_the_account_cannot_change_its_own_rule(api: Any) -> None:
    own = f"user:{ACCOUNT}"
    demote = {"role": "reader", "scope": {"type": "user", "value": ACCOUNT}}
    assert failure(api.acl().insert(calendarId="primary", body=demote)) == (
        403,
        "cannotChangeOwnAcl",
    )
    assert failure(api.acl().delete(calendarId="primary", ruleId=own))[0] == 403
    assert api.acl().get(calendarId="primary", ruleId=own).execute()["role"] == "owner"


def test_acl_rules_can_be_inserted_in_a_batch(api: Any, url: str, google: GoogleStandIn) -> None:
    answers: list[Any] = []
    batch = BatchHttpRequest(
        callback=lambda _i, r, e: answers.append(e or r), batch_uri=f"{url}/batch/calendar/v3"
    )
    for name in ("a", "b", "c"):
        rule = {"role": "reader", "scope": {"type": "user", "value": f"{name}@example.com"}}
        batch.add(api.acl().insert(calendarId="primary", body=rule))
    batch.execute()
    assert [a["id"] for a in answers] == [f"user:{n}@example.com" for n in "abc"]
    assert len(google.acl("primary")) == 4


# ---------------------------------------------------------------------------- move


def test_move_takes_the_event_to_the_destination(api: Any, google: GoogleStandIn) -> None:
    target = api.calendars().insert(body={"summary": "Team"}).execute()["id"]
    body = timed("2026-03-02T10:00:00", "2026-03-02T11:00:00", id="aaaaa1")
    api.events().insert(calendarId="primary", body=body).execute()
    sync_token = every_page(api.events, calendarId="primary")[-1]["nextSyncToken"]

    moved = (
        api.events()
        .move(calendarId="primary", eventId="aaaaa1", destination=target, sendUpdates="none")
        .execute()
    )

    assert moved["id"] == "aaaaa1"
    assert moved["organizer"]["email"] == target
    assert moved["status"] == "confirmed"
    assert api.events().get(calendarId=target, eventId="aaaaa1").execute()["summary"] == "Standup"
    assert [e["id"] for e in listed(api, target)] == ["aaaaa1"]
    assert listed(api) == []
    changes = api.events().list(calendarId="primary", syncToken=sync_token).execute()["items"]
    assert [(e["id"], e["status"]) for e in changes] == [("aaaaa1", "cancelled")]
    assert google.notifications[-1] == {
        "calendarId": ACCOUNT,
        "eventId": "aaaaa1",
        "action": "move",
        "sendUpdates": "none",
    }

    back = api.events().move(calendarId=target, eventId="aaaaa1", destination="primary").execute()
    assert back["organizer"] == {"email": ACCOUNT, "self": True}
    assert [e["id"] for e in listed(api)] == ["aaaaa1"]


def test_move_of_what_is_not_there_is_404(api: Any) -> None:
    events = api.events()
    assert failure(events.move(calendarId="primary", eventId="zzzzzz", destination="primary")) == (
        404,
        "notFound",
    )
    body = timed("2026-03-02T10:00:00", "2026-03-02T11:00:00", id="aaaaa1")
    events.insert(calendarId="primary", body=body).execute()
    nowhere = events.move(calendarId="primary", eventId="aaaaa1", destination="x@example.com")
    assert failure(nowhere) == (404, "notFound")


# ---------------------------------------------------------------------------- recurrence


def test_daily_count_is_one_master_or_its_instances(api: Any, google: GoogleStandIn) -> None:
    api.events().insert(calendarId="primary", body=recurring("FREQ=DAILY;COUNT=5")).execute()

    masters = listed(api)
    assert [(e["id"], e["recurrence"]) for e in masters] == [(MASTER, ["RRULE:FREQ=DAILY;COUNT=5"])]
    instances = listed(api, singleEvents=True)
    assert [e["id"] for e in instances] == [f"{MASTER}_2026030{d}T070000Z" for d in range(2, 7)]
    first = instances[0]
    assert first["recurringEventId"] == MASTER
    assert first["start"] == {"dateTime": "2026-03-02T10:00:00+03:00", "timeZone": MOSCOW}
    assert first["end"] == {"dateTime": "2026-03-02T10:30:00+03:00", "timeZone": MOSCOW}
    assert first["originalStartTime"] == first["start"]
    assert instances[4]["start"]["dateTime"] == "2026-03-06T10:00:00+03:00"
    assert all(e["summary"] == "Standup" and "recurrence" not in e for e in instances)
    assert len(google.events()) == 1
    got = api.events().get(calendarId="primary", eventId=instances[2]["id"]).execute()
    assert got == instances[2]
    unknown = f"{MASTER}_20260302T080000Z"
    assert failure(api.events().get(calendarId="primary", eventId=unknown)) == (404, "notFound")


def test_weekly_byday_and_exdate(api: Any) -> None:
    rule = recurring(
        "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=6", "EXDATE;TZID=Europe/Moscow:20260306T100000"
    )
    api.events().insert(calendarId="primary", body=rule).execute()

    starts = [e["start"]["dateTime"][:10] for e in listed(api, singleEvents=True)]
    # Six by the rule (Mo 2, We 4, Fr 6, Mo 9, We 11, Fr 13); EXDATE takes Friday the 6th.
    assert starts == ["2026-03-02", "2026-03-04", "2026-03-09", "2026-03-11", "2026-03-13"]


def test_until_and_interval(api: Any) -> None:
    rule = recurring("FREQ=DAILY;INTERVAL=2;UNTIL=20260310T070000Z")
    api.events().insert(calendarId="primary", body=rule).execute()

    starts = [e["start"]["dateTime"][:10] for e in listed(api, singleEvents=True)]
    assert starts == ["2026-03-02", "2026-03-04", "2026-03-06", "2026-03-08", "2026-03-10"]


def test_weekly_keeps_local_time_across_daylight_saving(api: Any) -> None:
    body = timed("2026-03-23T10:00:00", "2026-03-23T11:00:00", zone="Europe/Berlin", id=MASTER)
    body["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=2"]
    api.events().insert(calendarId="primary", body=body).execute()

    instances = listed(api, singleEvents=True)
    assert [e["id"] for e in instances] == [
        f"{MASTER}_20260323T090000Z",
        f"{MASTER}_20260330T080000Z",
    ]
    assert [e["start"]["dateTime"] for e in instances] == [
        "2026-03-23T10:00:00+01:00",
        "2026-03-30T10:00:00+02:00",
    ]


def test_all_day_monthly_skips_short_months(api: Any) -> None:
    body = {
        "id": MASTER,
        "summary": "Report",
        "start": {"date": "2026-01-31"},
        "end": {"date": "2026-02-01"},
        "recurrence": ["RRULE:FREQ=MONTHLY;COUNT=3"],
    }
    api.events().insert(calendarId="primary", body=body).execute()

    instances = listed(api, singleEvents=True)
    assert [e["id"] for e in instances] == [
        f"{MASTER}_20260131",
        f"{MASTER}_20260331",
        f"{MASTER}_20260531",
    ]
    assert instances[1]["start"] == {"date": "2026-03-31"}
    assert instances[1]["end"] == {"date": "2026-04-01"}
    assert instances[1]["originalStartTime"] == {"date": "2026-03-31"}


def test_yearly_rule(api: Any) -> None:
    api.events().insert(calendarId="primary", body=recurring("FREQ=YEARLY;COUNT=3")).execute()
    starts = [e["start"]["dateTime"][:10] for e in listed(api, singleEvents=True)]
    assert starts == ["2026-03-02", "2027-03-02", "2028-03-02"]


def test_time_window_and_the_guard_against_endless_rules(api: Any) -> None:
    api.events().insert(calendarId="primary", body=recurring("FREQ=WEEKLY")).execute()

    window = listed(
        api, singleEvents=True, timeMin="2026-04-01T00:00:00Z", timeMax="2026-05-01T00:00:00Z"
    )
    assert [e["start"]["dateTime"][:10] for e in window] == [
        "2026-04-06",
        "2026-04-13",
        "2026-04-20",
        "2026-04-27",
    ]
    # No COUNT, no UNTIL, no timeMax: 730 days of Mondays (days 0, 7, ..., 728).
    everything = listed(api, singleEvents=True, maxResults=2500)
    assert len(everything) == 105
    assert everything[-1]["start"]["dateTime"][:10] == "2028-02-28"
    # Unexpanded, the master is listed for any window its rule reaches.
    far = listed(api, timeMin="2030-01-01T00:00:00Z", timeMax="2030-02-01T00:00:00Z")
    assert [e["id"] for e in far] == [MASTER]
    before = listed(api, timeMin="2026-01-01T00:00:00Z", timeMax="2026-03-01T00:00:00Z")
    assert before == []


def test_order_by_start_time_interleaves_instances_and_single_events(api: Any) -> None:
    events = api.events()
    events.insert(calendarId="primary", body=recurring("FREQ=DAILY;COUNT=3")).execute()
    single = timed("2026-03-03T12:00:00", "2026-03-03T13:00:00", id="bbbbb1", summary="Lunch")
    events.insert(calendarId="primary", body=single).execute()

    ordered = every_page(
        api.events, calendarId="primary", singleEvents=True, orderBy="startTime", maxResults=2
    )
    assert [e["id"] for e in items(ordered)] == [
        f"{MASTER}_20260302T070000Z",
        f"{MASTER}_20260303T070000Z",
        "bbbbb1",
        f"{MASTER}_20260304T070000Z",
    ]
    # Google answers no nextSyncToken after orderBy.
    assert all("nextSyncToken" not in page for page in ordered)
    unordered = every_page(api.events, calendarId="primary", singleEvents=True)
    assert "nextSyncToken" in unordered[-1]
    assert [e["id"] for e in items(unordered)][-1] == "bbbbb1"


def test_instances_endpoint(api: Any) -> None:
    api.events().insert(calendarId="primary", body=recurring("FREQ=DAILY;COUNT=4")).execute()

    pages = []
    request = api.events().instances(calendarId="primary", eventId=MASTER, maxResults=3)
    while request is not None:
        pages.append(request.execute())
        request = api.events().instances_next(request, pages[-1])
    assert [len(page["items"]) for page in pages] == [3, 1]
    assert [e["start"]["dateTime"][:10] for e in items(pages)] == [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
    ]
    some = (
        api.events()
        .instances(calendarId="primary", eventId=MASTER, timeMin="2026-03-03T08:00:00Z")
        .execute()
    )
    assert [e["id"] for e in some["items"]] == [
        f"{MASTER}_20260304T070000Z",
        f"{MASTER}_20260305T070000Z",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"recurrence": ["RRULE:FREQ=SOMETIMES"]}, (400, "invalid")),
        ({"recurrence": ["RRULE:COUNT=3"]}, (400, "invalid")),
        ({"recurrence": ["RRULE:FREQ=DAILY;COUNT=3;UNTIL=20260310T000000Z"]}, (400, "invalid")),
        ({"recurrence": ["RRULE:FREQ=DAILY;COUNT=0"]}, (400, "invalid")),
        ({"recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=XX"]}, (400, "invalid")),
        ({"recurrence": ["FREQ=DAILY"]}, (400, "invalid")),
        ({"recurrence": ["RRULE:FREQ=DAILY;BYHOUR=9"]}, (400, "invalid")),
        ({"start": {"dateTime": "2026-03-02T10:00:00+03:00"}}, (400, "required")),
    ],
)
def test_recurrence_is_checked(api: Any, change: dict[str, Any], expected: tuple[int, str]) -> None:
    body = {**recurring("FREQ=DAILY;COUNT=2"), **change}
    assert failure(api.events().insert(calendarId="primary", body=body)) == expected


# ---------------------------------------------------------------------------- conference


MEET_URI = re.compile(r"^https://meet\.google\.com/[a-z]{3}-[a-z]{4}-[a-z]{3}$")


def meet_request(request_id: str) -> dict[str, Any]:
    return {
        "createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }
    }


def test_meet_is_created_only_with_conference_data_version_1(api: Any) -> None:
    events = api.events()
    body = timed("2026-03-02T10:00:00", "2026-03-02T11:00:00", conferenceData=meet_request("r1"))

    ignored = events.insert(calendarId="primary", body={**body, "id": "aaaaa1"}).execute()
    assert "conferenceData" not in ignored
    assert "hangoutLink" not in ignored

    made = events.insert(
        calendarId="primary", body={**body, "id": "aaaaa2"}, conferenceDataVersion=1
    ).execute()
    conference = made["conferenceData"]
    uri = conference["entryPoints"][0]["uri"]
    assert MEET_URI.match(uri)
    assert made["hangoutLink"] == uri
    assert conference["entryPoints"][0]["entryPointType"] == "video"
    assert conference["conferenceId"] == uri.rsplit("/", 1)[1]
    assert conference["conferenceSolution"]["key"] == {"type": "hangoutsMeet"}
    assert conference["conferenceSolution"]["name"] == "Google Meet"
    assert conference["createRequest"] == {
        "requestId": "r1",
        "conferenceSolutionKey": {"type": "hangoutsMeet"},
        "status": {"statusCode": "success"},
    }


def test_meet_survives_patches_and_follows_request_ids(api: Any) -> None:
    events = api.events()
    body = timed("2026-03-02T10:00:00", "2026-03-02T11:00:00", id="aaaaa1")
    events.insert(calendarId="primary", body=body).execute()

    def patch(change: dict[str, Any], version: int | None = None) -> dict[str, Any]:
        extra = {} if version is None else {"conferenceDataVersion": version}
        request = events.patch(calendarId="primary", eventId="aaaaa1", body=change, **extra)
        result: dict[str, Any] = request.execute()
        return result

    first = patch({"conferenceData": meet_request("r1")}, 1)
    same = patch({"conferenceData": meet_request("r1"), "summary": "Again"}, 1)
    assert same["conferenceData"] == first["conferenceData"]
    assert same["hangoutLink"] == first["hangoutLink"]

    kept = patch({"conferenceData": None, "summary": "Version 0"})
    assert kept["conferenceData"] == first["conferenceData"]
    put = dict(body, summary="Replaced")
    replaced = events.update(calendarId="primary", eventId="aaaaa1", body=put).execute()
    assert replaced["hangoutLink"] == first["hangoutLink"]

    other = patch({"conferenceData": meet_request("r2")}, 1)
    assert other["conferenceData"]["conferenceId"] != first["conferenceData"]["conferenceId"]
    assert other["hangoutLink"] == other["conferenceData"]["entryPoints"][0]["uri"]

    removed = patch({"conferenceData": None}, 1)
    assert "conferenceData" not in removed
    assert "hangoutLink" not in removed

    wrong = {"createRequest": {"requestId": "r3", "conferenceSolutionKey": {"type": "zoom"}}}
    request = events.patch(
        calendarId="primary", eventId="aaaaa1", body={"conferenceData": wrong},
        conferenceDataVersion=1,
    )  # fmt: skip
    assert failure(request) == (400, "invalid")


# ---------------------------------------------------------------------------- sync tokens


def test_sync_with_single_events_answers_instances_of_a_changed_master(api: Any) -> None:
    events = api.events()
    events.insert(calendarId="primary", body=recurring("FREQ=DAILY;COUNT=3")).execute()
    single = timed("2026-03-03T12:00:00", "2026-03-03T13:00:00", id="bbbbb1")
    events.insert(calendarId="primary", body=single).execute()
    windowed = every_page(
        api.events, calendarId="primary", singleEvents=True, timeMin="2026-03-01T00:00:00Z"
    )
    assert "nextSyncToken" in windowed[-1]  # Google hands one out after timeMin too
    token = every_page(api.events, calendarId="primary", singleEvents=True)[-1]["nextSyncToken"]

    events.patch(calendarId="primary", eventId=MASTER, body={"summary": "Daily"}).execute()
    events.delete(calendarId="primary", eventId="bbbbb1").execute()

    pages = every_page(
        api.events, calendarId="primary", syncToken=token, singleEvents=True, maxResults=2
    )
    assert [len(page["items"]) for page in pages] == [2, 2]
    changes = items(pages)
    assert [(e["id"], e["status"]) for e in changes] == [
        (f"{MASTER}_20260302T070000Z", "confirmed"),
        (f"{MASTER}_20260303T070000Z", "confirmed"),
        (f"{MASTER}_20260304T070000Z", "confirmed"),
        ("bbbbb1", "cancelled"),
    ]
    assert all(e["summary"] == "Daily" for e in changes[:3])
    masters = events.list(calendarId="primary", syncToken=token).execute()
    assert [e["id"] for e in masters["items"]] == [MASTER, "bbbbb1"]
    follow = events.list(calendarId="primary", syncToken=pages[-1]["nextSyncToken"]).execute()
    assert follow["items"] == []

    for clash in ({"orderBy": "updated"}, {"showDeleted": False}, {"q": "x"}):
        assert failure(events.list(calendarId="primary", syncToken=token, **clash)) == (
            400,
            "syncTokenWithRequestRestrictions",
        )


# ---------------------------------------------------------------------------- helpers, load


def test_add_event_checks_like_the_api(google: GoogleStandIn) -> None:
    stored = google.add_event(
        "primary", timed("2026-03-02T10:00:00", "2026-03-02T11:00:00", id="aaaaa1")
    )
    assert stored == google.event("primary", "aaaaa1")
    assert stored["organizer"] == {"email": ACCOUNT, "self": True}
    with pytest.raises(ApiError) as caught:
        google.add_event("primary", {"summary": "no times"})
    assert (caught.value.code, caught.value.reason) == (400, "required")
    with pytest.raises(ApiError) as caught:
        google.add_event("primary", {"colour": "red"})
    assert caught.value.code == 400
    assert google.notifications == []


def test_5001_events_page_in_insertion_or_start_order(api: Any, google: GoogleStandIn) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    ids = []
    for n in range(5001):
        start = base + timedelta(minutes=10 * (5000 - n))  # inserted latest first
        body = {
            "summary": f"Meeting {n}",
            "description": "Room 1, floor 2",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
            "attendees": [{"email": "anna@example.com"}],
            "extendedProperties": {"private": {"record": str(n)}},
        }
        ids.append(google.add_event("primary", body)["id"])

    for params, expected in (
        ({}, ids),
        ({"singleEvents": True, "orderBy": "startTime"}, ids[::-1]),
    ):
        request = api.events().list(calendarId="primary", maxResults=2500, **params)
        sizes, seen = [], []
        while request is not None:
            page = request.execute()
            sizes.append(len(page["items"]))
            seen += [e["id"] for e in page["items"]]
            request = api.events().list_next(request, page)
        assert sizes == [2500, 2500, 1]
        assert seen == expected
