"""The Google stand-in's wire: batch parts failing on their own, the long-URL form of a GET,
lost answers after committed writes, `updatedMin` limits, ACL e-mails and sync tokens of a
date-bounded full sync; driven by google-api-python-client."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from sandbox.common import Fault
from sandbox.google_calendar import GoogleStandIn
from tests.sandbox.conftest import failure

ACCOUNT = "owner@example.com"
EVENTS_PATH = "/calendar/v3/calendars/primary/events"


def timed(event_id: str, hour: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": "Planning",
        "start": {"dateTime": f"2026-03-02T{hour:02d}:00:00+03:00"},
        "end": {"dateTime": f"2026-03-02T{hour + 1:02d}:00:00+03:00"},
        **extra,
    }


def run_batch(url: str, requests_by_id: dict[str, Any]) -> dict[str, Any]:
    """Answers (or HttpErrors) of one batch request, by request id."""
    answers: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Any) -> None:
        answers[request_id] = exception if exception is not None else response

    batch = BatchHttpRequest(callback=collect, batch_uri=f"{url}/batch/calendar/v3")
    for request_id, request in requests_by_id.items():
        batch.add(request, request_id=request_id)
    batch.execute()
    return answers


def error_body(exc: HttpError) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(exc.content)["error"]
    return error


# ---------------------------------------------------------------------------- batch parts


def test_a_part_fault_fails_only_its_part_and_whole_request_faults_never_hit_parts(
    api: Any, url: str, google: GoogleStandIn
) -> None:
    for event_id in ("aaaaa1", "aaaaa2", "aaaaa3"):
        google.add_event("primary", timed(event_id))
    google.recorder.add_fault(
        Fault(re.compile("/events/aaaaa2$"), "PATCH", 409, count=1, delay=0.0, part=True)
    )
    google.recorder.add_fault(Fault(re.compile("/events/aaaaa1$"), "PATCH", 500, 1, 0.0))
    google.recorder.reset_calls()
    events = api.events()

    def patch(event_id: str) -> Any:
        return events.patch(calendarId="primary", eventId=event_id, body={"summary": "New"})

    answers = run_batch(url, {e: patch(e) for e in ("aaaaa1", "aaaaa2", "aaaaa3")})

    assert answers["aaaaa1"]["summary"] == "New"  # the whole-request fault spared the part
    assert answers["aaaaa3"]["summary"] == "New"
    conflict = answers["aaaaa2"]
    assert isinstance(conflict, HttpError)
    # Google's wording for a batched item's conflict (Calendar errors guide, 409).
    assert error_body(conflict) == {
        "code": 409,
        "message": "Conflict",
        "errors": [{"domain": "global", "reason": "conflict", "message": "Conflict"}],
    }
    assert google.event("primary", "aaaaa2")["summary"] == "Planning"
    assert [(c.method, c.path, c.status) for c in google.recorder.snapshot()] == [
        ("POST", "/batch/calendar/v3", 200)
    ]
    assert [(c.method, c.path, c.status) for c in google.part_calls] == [
        ("PATCH", f"{EVENTS_PATH}/aaaaa1", 200),
        ("PATCH", f"{EVENTS_PATH}/aaaaa2", 409),
        ("PATCH", f"{EVENTS_PATH}/aaaaa3", 200),
    ]
    assert "alt=json" in google.part_calls[0].query

    assert failure(patch("aaaaa1"))[0] == 500  # the whole-request fault waited for this
    google.recorder.add_fault(
        Fault(re.compile("/events/aaaaa3$"), None, 503, count=5, delay=0.0, part=True)
    )
    assert patch("aaaaa3").execute()["summary"] == "New"  # part faults never hit requests


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (500, "backendError"), (503, "backendError")],
)
def test_part_faults_over_http_answer_a_reason_that_fits_the_status(
    api: Any, url: str, google: GoogleStandIn, status: int, reason: str
) -> None:
    google.add_event("primary", timed("aaaaa1"))
    fault = {"path": "/events/aaaaa1$", "method": "GET", "status": status, "part": True}
    assert requests.post(f"{url}/_sandbox/faults", json=fault, timeout=5).status_code == 200
    get = api.events().get(calendarId="primary", eventId="aaaaa1")

    answers = run_batch(
        url, {"1": get, "2": api.events().get(calendarId="primary", eventId="aaaaa1")}
    )

    assert isinstance(answers["1"], HttpError)
    assert answers["1"].status_code == status
    assert error_body(answers["1"])["errors"][0]["reason"] == reason
    assert answers["2"]["id"] == "aaaaa1"  # count 1: the next part is spared


def test_part_faults_honour_rate_and_count(api: Any, url: str, google: GoogleStandIn) -> None:
    google.add_event("primary", timed("aaaaa1"))
    google.recorder.add_fault(
        Fault(re.compile("/events/"), "GET", 503, count=10**6, delay=0.0, rate=0.5, part=True)
    )
    gets = {str(n): api.events().get(calendarId="primary", eventId="aaaaa1") for n in range(40)}
    answers = run_batch(url, gets)
    failed = sum(isinstance(answer, HttpError) for answer in answers.values())
    assert 8 <= failed <= 32

    google.recorder.clear_faults()
    google.recorder.add_fault(
        Fault(re.compile("/events/"), "GET", 503, count=2, delay=0.0, part=True)
    )
    answers = run_batch(url, {str(n): api.events().get(calendarId="primary", eventId="aaaaa1")
                              for n in range(5)})  # fmt: skip
    assert [isinstance(answers[str(n)], HttpError) for n in range(5)] == [
        True, True, False, False, False,
    ]  # fmt: skip


def test_a_part_fault_cannot_drop_a_connection(url: str) -> None:
    for spec in ({"part": True, "drop": True}, {"part": True, "drop_after": True}):
        answer = requests.post(f"{url}/_sandbox/faults", json={"path": "/", **spec}, timeout=5)
        assert answer.status_code == 400


# ---------------------------------------------------------------------------- long URLs


def test_the_long_url_form_of_a_list_is_served_as_the_get(api: Any, google: GoogleStandIn) -> None:
    word = "".join(chr(ord("a") + n % 26) for n in range(3000))
    props = {f"key{n:02d}": f"value-{n:02d}-" + "x" * 20 for n in range(70)}
    google.add_event("primary", timed("aaaaa1", description=f"agenda {word} end"))
    google.add_event(
        "primary", timed("aaaaa2", extendedProperties={"private": props}, summary="Tagged")
    )
    google.add_event("primary", timed("aaaaa3", extendedProperties={"private": {"key00": "x"}}))
    google.recorder.reset_calls()
    events = api.events()

    found = events.list(calendarId="primary", q=word).execute()["items"]
    wanted = [f"{k}={v}" for k, v in props.items()]
    tagged = events.list(calendarId="primary", privateExtendedProperty=wanted).execute()

    assert [e["id"] for e in found] == ["aaaaa1"]
    assert [e["id"] for e in tagged["items"]] == ["aaaaa2"]
    calls = google.recorder.snapshot()
    assert [(c.method, c.path, c.status) for c in calls] == [
        ("GET", EVENTS_PATH, 200),
        ("GET", EVENTS_PATH, 200),
    ]
    assert f"q={word}" in calls[0].query
    assert calls[1].query.count("privateExtendedProperty=") == 70


def test_the_long_url_form_gets_the_checks_of_the_get(
    api: Any, url: str, token: str, google: GoogleStandIn
) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "X-HTTP-Method-Override": "GET",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    path = f"{url}/calendar/v3/calendars/primary/events"
    bad = requests.post(path, data="maxResults=5000&alt=json", headers=headers, timeout=5)
    assert bad.status_code == 400
    assert bad.json()["error"]["errors"][0]["location"] == "maxResults"
    order = requests.post(path, data="orderBy=startTime", headers=headers, timeout=5)
    assert order.status_code == 400
    unauthorized = {**headers, "Authorization": "Bearer nope"}
    assert requests.post(path, data="q=x", headers=unauthorized, timeout=5).status_code == 401
    assert google.events() == []  # never taken for an events.insert

    for n in range(3):
        google.add_event("primary", timed(f"aaaaa{n}"))
    long_q = "Planning" + " " * 2100
    pages = []
    request = api.events().list(calendarId="primary", q=long_q.strip(), maxResults=2)
    request.uri += "&quotaUser=" + "u" * 2100  # a standard parameter makes it long too
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = api.events().list_next(request, page)
    assert [len(p["items"]) for p in pages] == [2, 1]
    assert "nextSyncToken" in pages[-1]
    assert {c.method for c in google.recorder.snapshot()} == {"GET"}


# ---------------------------------------------------------------------------- lost answers


def test_a_lost_answer_after_calendars_insert_leaves_the_calendar(
    api: Any, url: str, token: str, google: GoogleStandIn
) -> None:
    fault = {"path": "^/calendar/v3/calendars$", "method": "POST", "drop_after": True}
    assert requests.post(f"{url}/_sandbox/faults", json=fault, timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{url}/calendar/v3/calendars",
            json={"summary": "Team"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
    assert [c["summary"] for c in google.calendars()] == [ACCOUNT, "Team"]

    # httplib2 sends the POST once more on a lost answer: one answer, two calendars.
    google.recorder.add_fault(
        Fault(re.compile("^/calendar/v3/calendars$"), "POST", None, 1, 0.0, drop_after=True)
    )
    answered = api.calendars().insert(body={"summary": "Board"}).execute()
    boards = [c["id"] for c in google.calendars() if c["summary"] == "Board"]
    assert len(boards) == 2
    assert answered["id"] == boards[1]

    google.recorder.add_fault(
        Fault(re.compile("^/calendar/v3/calendars$"), "POST", None, 2, 0.0, drop_after=True)
    )
    with pytest.raises(RemoteDisconnected):
        api.calendars().insert(body={"summary": "Lost"}).execute()
    assert [c["summary"] for c in google.calendars()].count("Lost") == 2


# ---------------------------------------------------------------------------- events.list


def test_updated_min_too_long_ago_is_410(api: Any, google: GoogleStandIn) -> None:
    now = datetime(2026, 5, 28, 12, 0, tzinfo=UTC).timestamp()
    google.clock = lambda: now
    events = api.events()

    def since(days: float) -> Any:
        moment = datetime.fromtimestamp(now - days * 86400, UTC)
        return events.list(calendarId="primary", updatedMin=moment.isoformat())

    with pytest.raises(HttpError) as caught:
        since(8).execute()
    assert caught.value.status_code == 410
    assert error_body(caught.value) == {
        "code": 410,
        "message": "The requested minimum modification time lies too far in the past.",
        "errors": [
            {
                "domain": "calendar",
                "reason": "updatedMinTooLongAgo",
                "message": "The requested minimum modification time lies too far in the past.",
                "location": "updatedMin",
                "locationType": "parameter",
            }
        ],
    }
    assert since(6).execute()["items"] == []
    google.updated_min_horizon_days = 30
    assert since(8).execute()["items"] == []


def test_a_date_bounded_full_sync_ends_with_a_sync_token(api: Any, google: GoogleStandIn) -> None:
    for n in range(5):
        google.add_event("primary", timed(f"aaaaa{n}", hour=9 + n))
    google.add_event("primary", {**timed("bbbbb1"), "start": {"date": "2027-01-01"},
                                 "end": {"date": "2027-01-02"}})  # fmt: skip
    events = api.events()
    window = {"timeMin": "2026-03-01T00:00:00Z", "timeMax": "2026-04-01T00:00:00Z"}
    pages = []
    request = events.list(calendarId="primary", maxResults=2, **window)
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = events.list_next(request, page)

    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert ["nextSyncToken" in p for p in pages] == [False, False, True]
    events.patch(calendarId="primary", eventId="aaaaa1", body={"summary": "Moved"}).execute()
    changes = events.list(calendarId="primary", syncToken=pages[-1]["nextSyncToken"]).execute()
    assert [e["id"] for e in changes["items"]] == ["aaaaa1"]


def test_list_of_a_calendar_the_account_does_not_have_is_404(api: Any) -> None:
    missing = api.events().list(calendarId="c_nobody@group.calendar.google.com")
    assert failure(missing) == (404, "notFound")


# ---------------------------------------------------------------------------- ACL e-mails


def test_acl_changes_email_the_person_unless_told_not_to(
    api: Any, url: str, google: GoogleStandIn
) -> None:
    acl = api.acl()
    reader = {"role": "reader", "scope": {"type": "user", "value": "b@example.com"}}
    acl.insert(calendarId="primary", body=reader).execute()
    quiet = {"role": "reader", "scope": {"type": "user", "value": "c@example.com"}}
    acl.insert(calendarId="primary", body=quiet, sendNotifications=False).execute()
    acl.patch(calendarId="primary", ruleId="user:b@example.com", body={"role": "writer"}).execute()
    acl.update(calendarId="primary", ruleId="user:b@example.com", body=reader).execute()
    acl.patch(
        calendarId="primary", ruleId="user:c@example.com", body={"role": "writer"},
        sendNotifications=False,
    ).execute()  # fmt: skip
    acl.delete(calendarId="primary", ruleId="user:b@example.com").execute()

    scope = {"type": "user", "value": "b@example.com"}
    expected = [
        {"calendarId": ACCOUNT, "action": "acl_insert", "scope": scope, "role": "reader"},
        {"calendarId": ACCOUNT, "action": "acl_patch", "scope": scope, "role": "writer"},
        {"calendarId": ACCOUNT, "action": "acl_update", "scope": scope, "role": "reader"},
    ]
    assert google.notifications == expected
    answer = requests.get(f"{url}/_sandbox/notifications", timeout=5).json()
    assert answer["items"] == expected
