"""The Google Calendar + OAuth stand-in, driven by google-api-python-client and google-auth."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from sandbox.common import ServerThread
from sandbox.google_calendar import GoogleStandIn

SCOPES = ["https://www.googleapis.com/auth/calendar"]
CLIENT_ID = "client-1.apps.googleusercontent.com"
CLIENT_SECRET = "secret-1"
REFRESH_TOKEN = "1//refresh-1"
ACCOUNT = "owner@example.com"
HEX_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def google(shared: tuple[GoogleStandIn, ServerThread]) -> GoogleStandIn:
    stand_in = shared[0]
    stand_in.reset()
    stand_in.clock = time.time
    stand_in.access_token_lifetime = 3600
    stand_in.add_client(CLIENT_ID, CLIENT_SECRET)
    stand_in.add_refresh_token(REFRESH_TOKEN, CLIENT_ID, SCOPES)
    return stand_in


@pytest.fixture
def url(shared: tuple[GoogleStandIn, ServerThread], google: GoogleStandIn) -> str:
    return shared[1].url


def credentials(url: str, token: str | None = None, secret: str = CLIENT_SECRET) -> Credentials:
    return Credentials(
        token=token,
        refresh_token=REFRESH_TOKEN,
        client_id=CLIENT_ID,
        client_secret=secret,
        token_uri=f"{url}/token",
        scopes=SCOPES,
    )


def build_calendar(url: str, creds: Credentials | None = None, http: Any = None) -> Any:
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        credentials=creds,
        http=http,
        client_options={"api_endpoint": f"{url}/calendar/v3/"},
    )


@pytest.fixture
def token(google: GoogleStandIn) -> str:
    return google.issue_access_token(CLIENT_ID, SCOPES)[0]


@pytest.fixture
def calendar(url: str, token: str) -> Any:
    return build_calendar(url, credentials(url, token))


def timed(event_id: str | None = None, hour: int = 10, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": "Planning",
        "start": {"dateTime": f"2026-03-02T{hour:02d}:00:00+03:00"},
        "end": {"dateTime": f"2026-03-02T{hour + 1:02d}:00:00+03:00"},
        **extra,
    }
    if event_id:
        body["id"] = event_id
    return body


def error_of(exc: HttpError) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(exc.content)["error"]
    return error


def reason_of(exc: HttpError) -> str:
    return str(error_of(exc)["errors"][0]["reason"])


def insert_error(calendar: Any, body: dict[str, Any]) -> HttpError:
    with pytest.raises(HttpError) as caught:
        calendar.events().insert(calendarId="primary", body=body).execute()
    return caught.value


def list_all(calendar: Any, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follows nextPageToken; returns (items, pages)."""
    pages = []
    request = calendar.events().list(calendarId="primary", **params)
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = calendar.events().list_next(request, page)
    return [item for page in pages for item in page["items"]], pages


# ---------------------------------------------------------------------------- OAuth


def test_google_auth_refresh_gets_a_token_the_calendar_accepts(url: str) -> None:
    creds = credentials(url)
    creds.refresh(Request())

    assert creds.token
    assert creds.token.startswith("ya29.")
    assert creds.expiry is not None
    assert creds.valid
    page = build_calendar(url, creds).events().list(calendarId="primary").execute()
    assert page["kind"] == "calendar#events"
    assert page["items"] == []


def test_revoked_refresh_token_raises_refresh_error_invalid_grant(
    url: str, google: GoogleStandIn
) -> None:
    google.revoke_refresh_token(REFRESH_TOKEN)

    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials(url).refresh(Request())


def test_refresh_token_of_another_client_is_invalid_grant(url: str, google: GoogleStandIn) -> None:
    google.add_client("other-client", "other-secret")
    answer = requests.post(
        f"{url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "other-client",
            "client_secret": "other-secret",
            "refresh_token": REFRESH_TOKEN,
        },
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


def test_wrong_client_secret_is_invalid_client(url: str) -> None:
    with pytest.raises(RefreshError, match="invalid_client"):
        credentials(url, secret="wrong").refresh(Request())

    answer = requests.post(
        f"{url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": "wrong",
            "refresh_token": REFRESH_TOKEN,
        },
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_client", "error_description": "Unauthorized"}


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, "invalid_request"),
        ({"grant_type": "password", "client_id": CLIENT_ID}, "unsupported_grant_type"),
        (
            {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            "invalid_request",
        ),
    ],
)
def test_token_endpoint_rejects_malformed_requests(
    url: str, form: dict[str, str], error: str
) -> None:
    answer = requests.post(f"{url}/token", data=form, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"] == error


def test_token_endpoint_answer_matches_what_google_auth_parses(url: str) -> None:
    answer = requests.post(
        f"{url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
        },
        timeout=5,
    )
    body = answer.json()
    assert answer.status_code == 200
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert (body["expires_in"], body["scope"], body["token_type"]) == (3600, SCOPES[0], "Bearer")


def test_expired_access_token_is_401_in_googles_shape(url: str, google: GoogleStandIn) -> None:
    token = google.issue_access_token(CLIENT_ID, SCOPES)[0]
    google.expire_access_tokens()
    # No refresh on 401, so the library shows the 401 itself.
    http = google_auth_httplib2.AuthorizedHttp(
        credentials(url, token), http=httplib2.Http(), refresh_status_codes=()
    )
    with pytest.raises(HttpError) as caught:
        build_calendar(url, http=http).events().list(calendarId="primary").execute()
    assert caught.value.status_code == 401
    assert reason_of(caught.value) == "authError"

    answer = requests.get(
        f"{url}/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer realm=")
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert error["message"].startswith("Request had invalid authentication credentials")
    assert error["errors"] == [
        {
            "domain": "global",
            "reason": "authError",
            "message": "Invalid Credentials",
            "location": "Authorization",
            "locationType": "header",
        }
    ]


def test_token_expiring_by_the_stand_in_clock_is_refused(url: str, google: GoogleStandIn) -> None:
    now = 1_800_000_000.0
    google.clock = lambda: now
    token, expiry = google.issue_access_token(CLIENT_ID, SCOPES, lifetime=60)
    assert expiry == now + 60
    path = f"{url}/calendar/v3/calendars/primary/events"
    headers = {"Authorization": f"Bearer {token}"}

    assert requests.get(path, headers=headers, timeout=5).status_code == 200
    now += 60
    assert requests.get(path, headers=headers, timeout=5).status_code == 401
    assert requests.get(path, timeout=5).json()["error"]["errors"][0]["reason"] == "required"


def test_client_library_refreshes_after_a_401_and_retries(url: str, google: GoogleStandIn) -> None:
    calendar = build_calendar(
        url, credentials(url, google.issue_access_token(CLIENT_ID, SCOPES)[0])
    )
    google.expire_access_tokens()

    page = calendar.events().list(calendarId="primary").execute()

    assert page["items"] == []
    assert google.recorder.count("POST", "^/token$") == 1
    statuses = [c.status for c in google.recorder.snapshot() if c.path.endswith("/events")]
    assert statuses == [401, 200]


def test_token_without_a_calendar_scope_is_403(url: str, google: GoogleStandIn) -> None:
    token = google.issue_access_token(CLIENT_ID, ["https://www.googleapis.com/auth/drive"])[0]
    calendar = build_calendar(url, credentials(url, token))

    with pytest.raises(HttpError) as caught:
        calendar.events().list(calendarId="primary").execute()

    assert caught.value.status_code == 403
    assert reason_of(caught.value) == "insufficientPermissions"


def test_calendar_events_scope_is_enough(url: str, google: GoogleStandIn) -> None:
    scope = "https://www.googleapis.com/auth/calendar.events"
    token = google.issue_access_token(CLIENT_ID, [scope])[0]
    event = (
        build_calendar(url, credentials(url, token))
        .events()
        .insert(calendarId="primary", body=timed(HEX_ID))
        .execute()
    )
    assert event["id"] == HEX_ID


# ---------------------------------------------------------------------------- insert


def test_insert_with_hex_id_stores_googles_full_event(calendar: Any, google: GoogleStandIn) -> None:
    body = timed(
        HEX_ID,
        attendees=[{"email": "a@example.com"}, {"email": "b@example.com", "optional": True}],
        extendedProperties={"private": {"bpiumCatalog": "7", "bpiumRecord": "42"}},
    )
    event = calendar.events().insert(calendarId="primary", body=body, sendUpdates="all").execute()

    assert event["id"] == HEX_ID
    assert event["kind"] == "calendar#event"
    assert event["status"] == "confirmed"
    assert event["iCalUID"] == f"{HEX_ID}@google.com"
    assert event["htmlLink"].startswith("https://www.google.com/calendar/event?eid=")
    assert event["creator"] == event["organizer"] == {"email": ACCOUNT, "self": True}
    assert event["sequence"] == 0
    assert event["reminders"] == {"useDefault": True}
    assert event["created"] == event["updated"]
    assert event["created"].endswith("Z")
    assert len(event["created"]) == 24
    assert [a["responseStatus"] for a in event["attendees"]] == ["needsAction", "needsAction"]
    assert google.event("primary", HEX_ID) == event
    assert google.events(ACCOUNT) == [event]


def test_insert_without_id_gets_a_base32hex_id(calendar: Any) -> None:
    event = calendar.events().insert(calendarId="primary", body=timed()).execute()
    assert len(event["id"]) >= 5
    assert set(event["id"]) <= set("0123456789abcdefghijklmnopqrstuv")


def test_duplicate_insert_is_409_even_when_cancelled(calendar: Any) -> None:
    calendar.events().insert(calendarId="primary", body=timed(HEX_ID)).execute()
    calendar.events().delete(calendarId="primary", eventId=HEX_ID).execute()

    exc = insert_error(calendar, timed(HEX_ID, summary="again"))

    assert exc.status_code == 409
    assert reason_of(exc) == "duplicate"
    assert error_of(exc)["message"] == "The requested identifier already exists."


@pytest.mark.parametrize("bad_id", ["abcd", "ABCDEF12", "event-1", "wxyz12345", "x" * 8])
def test_bad_event_id_is_400_invalid(calendar: Any, bad_id: str) -> None:
    exc = insert_error(calendar, timed(bad_id))
    assert exc.status_code == 400
    assert reason_of(exc) == "invalid"
    assert error_of(exc)["message"] == "Invalid resource id value."


def test_unknown_field_is_400_naming_it(calendar: Any) -> None:
    exc = insert_error(calendar, timed(HEX_ID, colour="red"))
    assert exc.status_code == 400
    assert error_of(exc)["message"] == (
        "Invalid JSON payload received. Unknown name \"colour\" at 'event': Cannot find field."
    )

    nested = timed(reminders={"useDefault": False, "overrides": [{"method": "popup", "min": 5}]})
    exc = insert_error(calendar, nested)
    assert "'event.reminders.overrides[0]'" in error_of(exc)["message"]


@pytest.mark.parametrize(
    "extra",
    [
        {"summary": 5},
        {"guestsCanModify": "yes"},
        {"attendees": {"email": "a@example.com"}},
        {"extendedProperties": {"private": {"record": 42}}},
        {"reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": "x"}]}},
        {"start": {"dateTime": "2026-03-02 10:00"}},
        {"start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}},
    ],
)
def test_wrong_types_and_formats_are_400(calendar: Any, extra: dict[str, Any]) -> None:
    exc = insert_error(calendar, timed(HEX_ID, **extra))
    assert exc.status_code == 400
    assert reason_of(exc) == "invalid"
    assert calendar.events().list(calendarId="primary").execute()["items"] == []


def test_read_only_fields_sent_back_are_ignored(calendar: Any) -> None:
    echoed = timed(
        HEX_ID,
        kind="calendar#event",
        etag='"1"',
        created="2020-01-01T00:00:00.000Z",
        creator={"email": "someone@example.com"},
        htmlLink="https://example.com",
    )
    event = calendar.events().insert(calendarId="primary", body=echoed).execute()
    assert event["creator"] == {"email": ACCOUNT, "self": True}
    assert event["created"] != "2020-01-01T00:00:00.000Z"
    assert event["etag"] != '"1"'


def five_reminders(minutes: int = 10) -> dict[str, Any]:
    return {"useDefault": False, "overrides": [{"method": "popup", "minutes": minutes}] * 5}


@pytest.mark.parametrize(
    ("reminders", "reason"),
    [
        (
            {"useDefault": False, "overrides": [{"method": "email", "minutes": 1}] * 6},
            "tooManyReminders",
        ),
        (
            {"useDefault": True, "overrides": [{"method": "popup", "minutes": 10}]},
            "cannotUseDefaultRemindersAndSpecifyOverride",
        ),
        ({"useDefault": False, "overrides": [{"method": "sms", "minutes": 10}]}, "invalid"),
        ({"useDefault": False, "overrides": [{"method": "popup", "minutes": 40321}]}, "invalid"),
        ({"useDefault": False, "overrides": [{"method": "popup", "minutes": -1}]}, "invalid"),
    ],
)
def test_reminder_limits(calendar: Any, reminders: dict[str, Any], reason: str) -> None:
    exc = insert_error(calendar, timed(HEX_ID, reminders=reminders))
    assert exc.status_code == 400
    assert reason_of(exc) == reason


def test_reminders_at_the_limits_are_accepted(calendar: Any) -> None:
    event = (
        calendar.events()
        .insert(calendarId="primary", body=timed(HEX_ID, reminders=five_reminders(40320)))
        .execute()
    )
    assert len(event["reminders"]["overrides"]) == 5


@pytest.mark.parametrize(
    ("start", "end", "reason", "message"),
    [
        (
            {"dateTime": "2026-03-02T11:00:00+03:00"},
            {"dateTime": "2026-03-02T10:59:59+03:00"},
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            {"dateTime": "2026-03-02T10:00:00Z"},
            {"dateTime": "2026-03-02T12:00:00+03:00"},
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            {"date": "2026-03-02"},
            {"date": "2026-03-02"},
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            {"date": "2026-03-02"},
            {"dateTime": "2026-03-03T10:00:00Z"},
            "invalid",
            "Start and end times must either both be date or both be dateTime.",
        ),
        (
            {"dateTime": "2026-03-02T10:00:00"},
            {"dateTime": "2026-03-02T11:00:00Z"},
            "required",
            "Missing time zone definition for start time.",
        ),
        (
            {"dateTime": "2026-03-02T10:00:00", "timeZone": "Mars/Olympus"},
            {"dateTime": "2026-03-02T11:00:00Z"},
            "invalid",
            "Invalid time zone definition for start time.",
        ),
        (
            {"date": "2026-03-02", "dateTime": "2026-03-02T10:00:00Z"},
            {"dateTime": "2026-03-02T11:00:00Z"},
            "invalid",
            "Invalid start time.",
        ),
        ({"dateTime": "2026-03-02T10:00:00Z"}, None, "required", "Missing end time."),
    ],
)
def test_time_rules(
    calendar: Any, start: dict[str, Any], end: dict[str, Any] | None, reason: str, message: str
) -> None:
    body = {"id": HEX_ID, "start": start, **({"end": end} if end else {})}
    exc = insert_error(calendar, body)
    assert exc.status_code == 400
    assert reason_of(exc) == reason
    assert error_of(exc)["message"] == message


def test_time_forms_google_accepts(calendar: Any) -> None:
    events = calendar.events()
    zero_length = timed("aaaaa1", start={"dateTime": "2026-03-02T10:00:00Z"})
    zero_length["end"] = {"dateTime": "2026-03-02T10:00:00Z"}
    local = {
        "start": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Moscow"},
        "end": {"dateTime": "2026-03-02T11:00:00", "timeZone": "Europe/Moscow"},
    }
    all_day = {"start": {"date": "2026-03-02"}, "end": {"date": "2026-03-03"}}
    for body in (zero_length, local, all_day):
        assert events.insert(calendarId="primary", body=body).execute()["status"] == "confirmed"


def test_attendee_email_must_be_valid(calendar: Any) -> None:
    exc = insert_error(calendar, timed(HEX_ID, attendees=[{"email": "not an email"}]))
    assert (exc.status_code, reason_of(exc)) == (400, "invalid")
    assert error_of(exc)["message"] == "Invalid attendee email."
    exc = insert_error(calendar, timed(HEX_ID, attendees=[{"displayName": "No Mail"}]))
    assert exc.status_code == 400


def test_unknown_calendar_is_404(calendar: Any, google: GoogleStandIn) -> None:
    with pytest.raises(HttpError) as caught:
        calendar.events().insert(calendarId="team@example.com", body=timed()).execute()
    assert (caught.value.status_code, reason_of(caught.value)) == (404, "notFound")

    google.add_calendar("team@example.com", summary="Team", time_zone="Europe/Moscow")
    event = calendar.events().insert(calendarId="team@example.com", body=timed()).execute()
    assert event["organizer"]["email"] == "team@example.com"
    assert google.events("team@example.com")[0]["id"] == event["id"]
    assert google.events("primary") == []


# ---------------------------------------------------------------------------- patch/update/delete


def test_patch_merges_extended_properties_and_keeps_responses(
    calendar: Any, google: GoogleStandIn
) -> None:
    body = timed(
        HEX_ID,
        description="agenda",
        attendees=[{"email": "a@example.com", "responseStatus": "accepted"}],
        extendedProperties={"private": {"bpiumRecord": "42"}, "shared": {"room": "1"}},
    )
    calendar.events().insert(calendarId="primary", body=body).execute()

    patched = (
        calendar.events()
        .patch(
            calendarId="primary",
            eventId=HEX_ID,
            body={
                "summary": "Renamed",
                "attendees": [{"email": "A@example.com"}, {"email": "c@example.com"}],
                "extendedProperties": {"private": {"bpiumCatalog": "7"}},
            },
            sendUpdates="none",
        )
        .execute()
    )

    assert patched["summary"] == "Renamed"
    assert patched["description"] == "agenda"
    assert patched["extendedProperties"] == {
        "private": {"bpiumRecord": "42", "bpiumCatalog": "7"},
        "shared": {"room": "1"},
    }
    assert [a["responseStatus"] for a in patched["attendees"]] == ["accepted", "needsAction"]
    assert patched["sequence"] == 0
    assert google.event("primary", HEX_ID) == patched


def test_patch_of_times_bumps_sequence_and_null_clears(calendar: Any) -> None:
    calendar.events().insert(calendarId="primary", body=timed(HEX_ID, location="Room")).execute()
    later = timed(hour=14)
    patched = (
        calendar.events()
        .patch(
            calendarId="primary",
            eventId=HEX_ID,
            body={"start": later["start"], "end": later["end"], "location": None},
        )
        .execute()
    )
    assert patched["sequence"] == 1
    assert "location" not in patched

    exc_body = {"end": {"dateTime": "2026-03-02T13:00:00+03:00"}}
    with pytest.raises(HttpError) as caught:
        calendar.events().patch(calendarId="primary", eventId=HEX_ID, body=exc_body).execute()
    assert reason_of(caught.value) == "timeRangeEmpty"


def test_patch_revives_a_cancelled_event(calendar: Any) -> None:
    calendar.events().insert(calendarId="primary", body=timed(HEX_ID)).execute()
    calendar.events().delete(calendarId="primary", eventId=HEX_ID).execute()

    revived = (
        calendar.events()
        .patch(
            calendarId="primary", eventId=HEX_ID, body={"status": "confirmed", "summary": "Back"}
        )
        .execute()
    )

    assert revived["status"] == "confirmed"
    assert revived["summary"] == "Back"
    listed = calendar.events().list(calendarId="primary").execute()["items"]
    assert [e["id"] for e in listed] == [HEX_ID]


def test_patch_update_get_of_unknown_id_are_404(calendar: Any) -> None:
    events = calendar.events()
    calls = [
        events.patch(calendarId="primary", eventId=HEX_ID, body={"summary": "x"}),
        events.update(calendarId="primary", eventId=HEX_ID, body=timed()),
        events.get(calendarId="primary", eventId=HEX_ID),
        events.delete(calendarId="primary", eventId=HEX_ID),
    ]
    for call in calls:
        with pytest.raises(HttpError) as caught:
            call.execute()
        assert (caught.value.status_code, reason_of(caught.value)) == (404, "notFound")


def test_update_replaces_content_and_keeps_identity(calendar: Any) -> None:
    created = (
        calendar.events()
        .insert(calendarId="primary", body=timed(HEX_ID, location="Room", description="old"))
        .execute()
    )

    updated = (
        calendar.events()
        .update(calendarId="primary", eventId=HEX_ID, body=timed(hour=15, summary="Moved"))
        .execute()
    )

    assert "location" not in updated
    assert "description" not in updated
    assert updated["summary"] == "Moved"
    assert updated["created"] == created["created"]
    assert updated["iCalUID"] == created["iCalUID"]
    assert updated["sequence"] == 1
    assert updated["etag"] != created["etag"]

    stale = {**timed(), "sequence": 0}
    with pytest.raises(HttpError) as caught:
        calendar.events().update(calendarId="primary", eventId=HEX_ID, body=stale).execute()
    assert caught.value.status_code == 400


def test_if_match_with_a_stale_etag_is_412(url: str, token: str, calendar: Any) -> None:
    created = calendar.events().insert(calendarId="primary", body=timed(HEX_ID)).execute()
    calendar.events().patch(calendarId="primary", eventId=HEX_ID, body={"summary": "1"}).execute()
    answer = requests.patch(
        f"{url}/calendar/v3/calendars/primary/events/{HEX_ID}",
        json={"summary": "2"},
        headers={"Authorization": f"Bearer {token}", "If-Match": created["etag"]},
        timeout=5,
    )
    assert answer.status_code == 412


def test_delete_cancels_and_second_delete_is_410(calendar: Any, google: GoogleStandIn) -> None:
    created = calendar.events().insert(calendarId="primary", body=timed(HEX_ID)).execute()
    google.clock = lambda: time.time() + 5

    assert calendar.events().delete(calendarId="primary", eventId=HEX_ID).execute() == ""

    got = calendar.events().get(calendarId="primary", eventId=HEX_ID).execute()
    assert got["status"] == "cancelled"
    assert got["updated"] > created["updated"]
    with pytest.raises(HttpError) as caught:
        calendar.events().delete(calendarId="primary", eventId=HEX_ID).execute()
    assert (caught.value.status_code, reason_of(caught.value)) == (410, "deleted")
    assert error_of(caught.value)["message"] == "Resource has been deleted"
    assert calendar.events().list(calendarId="primary").execute()["items"] == []
    shown = calendar.events().list(calendarId="primary", showDeleted=True).execute()["items"]
    assert [(e["id"], e["status"]) for e in shown] == [(HEX_ID, "cancelled")]


# ---------------------------------------------------------------------------- list


def insert_many(calendar: Any, url: str, count: int, **extra: Any) -> list[str]:
    """Inserts through the batch endpoint, 50 calls a request."""
    ids = [f"{n:032x}" for n in range(1, count + 1)]
    failures: list[Any] = []

    def collect(_request_id: str, _response: Any, exception: Any) -> None:
        if exception is not None:
            failures.append(exception)

    events = calendar.events()  # built once: each events() builds every method again
    for offset in range(0, count, 50):
        batch = BatchHttpRequest(callback=collect, batch_uri=f"{url}/batch/calendar/v3")
        for n, event_id in enumerate(ids[offset : offset + 50], start=offset):
            body = timed(event_id, hour=n % 12 + 8, summary=f"Meeting {n}", **extra)
            batch.add(events.insert(calendarId="primary", body=body))
        batch.execute()
    assert failures == []
    return ids


def test_batch_is_one_http_call_with_answers_per_part(
    calendar: Any, url: str, google: GoogleStandIn
) -> None:
    answers: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Any) -> None:
        answers[request_id] = exception if exception is not None else response

    google.recorder.reset_calls()
    batch = BatchHttpRequest(callback=collect, batch_uri=f"{url}/batch/calendar/v3")
    batch.add(calendar.events().insert(calendarId="primary", body=timed(HEX_ID)), request_id="a")
    batch.add(calendar.events().insert(calendarId="primary", body=timed("bad")), request_id="b")
    batch.add(calendar.events().delete(calendarId="primary", eventId="zzzzzz"), request_id="c")
    batch.execute()

    assert answers["a"]["id"] == HEX_ID
    assert isinstance(answers["b"], HttpError)
    assert answers["b"].status_code == 400
    assert isinstance(answers["c"], HttpError)
    assert answers["c"].status_code == 404
    assert [c.path for c in google.recorder.snapshot()] == ["/batch/calendar/v3"]


def test_list_pages_600_events_250_at_a_time(calendar: Any, url: str) -> None:
    ids = insert_many(calendar, url, 600)

    items, pages = list_all(calendar, maxResults=250)

    assert [len(page["items"]) for page in pages] == [250, 250, 100]
    assert [e["id"] for e in items] == ids
    assert ["nextSyncToken" in page for page in pages] == [False, False, True]
    assert ["nextPageToken" in page for page in pages] == [True, True, False]
    assert all(page["timeZone"] == "UTC" for page in pages)


def test_paging_by_start_time_is_stable(calendar: Any, url: str) -> None:
    insert_many(calendar, url, 30)

    items, pages = list_all(calendar, maxResults=7, singleEvents=True, orderBy="startTime")

    assert len(pages) == 5
    assert len({e["id"] for e in items}) == 30
    starts = [e["start"]["dateTime"] for e in items]
    assert starts == sorted(starts)


def test_order_by_start_time_needs_single_events(calendar: Any) -> None:
    with pytest.raises(HttpError) as caught:
        calendar.events().list(calendarId="primary", orderBy="startTime").execute()
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("maxResults=0", "invalid"),
        ("maxResults=2501", "invalid"),
        ("pageToken=made-up", "invalid"),
        ("syncToken=made-up", "invalid"),
        ("timeMin=2026-03-02T00:00:00", "badRequest"),
        ("timeMin=2026-03-02", "badRequest"),
        ("timeMin=2026-03-02T00:00:00Z&timeMax=2026-03-01T00:00:00Z", "timeRangeEmpty"),
        ("showDeleted=yes", "invalid"),
        ("privateExtendedProperty=noequals", "invalid"),
        ("orderBy=summary", "invalid"),
        ("colour=red", "invalid"),
        ("sendUpdates=all", "invalid"),
    ],
)
def test_bad_list_parameters_are_400(url: str, token: str, query: str, reason: str) -> None:
    answer = requests.get(
        f"{url}/calendar/v3/calendars/primary/events?{query}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["errors"][0]["reason"] == reason


def test_page_token_is_bound_to_its_query(calendar: Any, url: str, token: str) -> None:
    insert_many(calendar, url, 3)
    first = calendar.events().list(calendarId="primary", maxResults=2).execute()
    answer = requests.get(
        f"{url}/calendar/v3/calendars/primary/events",
        params={"pageToken": first["nextPageToken"], "q": "Meeting"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 400


def test_cancelled_events_are_listed_minimal_as_google_guarantees(
    calendar: Any, google: GoogleStandIn
) -> None:
    calendar.events().insert(calendarId="primary", body=timed(HEX_ID)).execute()
    calendar.events().delete(calendarId="primary", eventId=HEX_ID).execute()

    items = calendar.events().list(calendarId="primary", showDeleted=True).execute()["items"]
    assert set(items[0]) == {"kind", "etag", "id", "status", "updated"}
    assert items[0]["status"] == "cancelled"
    got = calendar.events().get(calendarId="primary", eventId=HEX_ID).execute()
    assert got["summary"] == "Planning"  # get answers the whole cancelled event

    google.minimal_cancelled_in_list = False  # the kinder reading; reset() restores it
    items = calendar.events().list(calendarId="primary", showDeleted=True).execute()["items"]
    assert items[0]["summary"] == "Planning"
    google.reset()
    assert google.minimal_cancelled_in_list is True


def test_private_extended_property_filter_needs_every_constraint(calendar: Any) -> None:
    events = calendar.events()
    for event_id, record in (("aaaaa1", "1"), ("aaaaa2", "2"), ("aaaaa3", "1")):
        catalog = "9" if event_id == "aaaaa3" else "7"
        props = {"private": {"catalog": catalog, "record": record}}
        events.insert(
            calendarId="primary", body=timed(event_id, extendedProperties=props)
        ).execute()
    events.insert(calendarId="primary", body=timed("aaaaa4")).execute()

    found = events.list(
        calendarId="primary", privateExtendedProperty=["catalog=7", "record=1"]
    ).execute()["items"]
    by_catalog = events.list(calendarId="primary", privateExtendedProperty="catalog=7").execute()

    assert [e["id"] for e in found] == ["aaaaa1"]
    assert [e["id"] for e in by_catalog["items"]] == ["aaaaa1", "aaaaa2"]
    shared = events.list(calendarId="primary", sharedExtendedProperty="catalog=7").execute()
    assert shared["items"] == []


def test_time_min_bounds_the_end_and_time_max_the_start(calendar: Any) -> None:
    events = calendar.events()
    events.insert(calendarId="primary", body=timed("aaaaa1", hour=9)).execute()  # 09-10 +03
    events.insert(calendarId="primary", body=timed("aaaaa2", hour=11)).execute()  # 11-12 +03

    def ids(**params: str) -> list[str]:
        return [e["id"] for e in events.list(calendarId="primary", **params).execute()["items"]]

    assert ids(timeMin="2026-03-02T07:00:00Z") == ["aaaaa2"]  # 10:00 +03 = 07:00Z
    assert ids(timeMin="2026-03-02T06:59:00Z") == ["aaaaa1", "aaaaa2"]
    assert ids(timeMax="2026-03-02T08:00:00Z") == ["aaaaa1"]  # 11:00 +03 = 08:00Z
    assert ids(timeMax="2026-03-02T08:00:01Z") == ["aaaaa1", "aaaaa2"]
    assert ids(q="MEETING") == []
    assert ids(q="plann") == ["aaaaa1", "aaaaa2"]
    assert ids(iCalUID="aaaaa2@google.com") == ["aaaaa2"]


def test_sync_token_returns_changes_including_cancelled(calendar: Any, url: str) -> None:
    events = calendar.events()
    events.insert(calendarId="primary", body=timed("aaaaa1")).execute()
    events.insert(calendarId="primary", body=timed("aaaaa2")).execute()
    events.insert(calendarId="primary", body=timed("aaaaa3")).execute()
    _, pages = list_all(calendar, maxResults=2)
    sync_token = pages[-1]["nextSyncToken"]

    assert events.list(calendarId="primary", syncToken=sync_token).execute()["items"] == []
    events.patch(calendarId="primary", eventId="aaaaa1", body={"summary": "Changed"}).execute()
    events.delete(calendarId="primary", eventId="aaaaa2").execute()
    events.insert(calendarId="primary", body=timed("aaaaa4")).execute()

    changes, change_pages = list_all(calendar, syncToken=sync_token)
    assert [(e["id"], e["status"]) for e in changes] == [
        ("aaaaa1", "confirmed"),
        ("aaaaa2", "cancelled"),
        ("aaaaa4", "confirmed"),
    ]
    next_token = change_pages[-1]["nextSyncToken"]
    assert events.list(calendarId="primary", syncToken=next_token).execute()["items"] == []

    with pytest.raises(HttpError) as caught:
        events.list(
            calendarId="primary", syncToken=next_token, timeMin="2026-01-01T00:00:00Z"
        ).execute()
    assert caught.value.status_code == 400

    assert requests.post(f"{url}/_sandbox/sync-tokens/expire", timeout=5).status_code == 200
    with pytest.raises(HttpError) as caught:
        events.list(calendarId="primary", syncToken=next_token).execute()
    assert (caught.value.status_code, reason_of(caught.value)) == (410, "fullSyncRequired")
    assert "nextSyncToken" in events.list(calendarId="primary").execute()


# ---------------------------------------------------------------- notifications, faults, admin


def test_send_updates_is_recorded_per_write(calendar: Any, url: str) -> None:
    events = calendar.events()
    events.insert(calendarId="primary", body=timed(HEX_ID), sendUpdates="all").execute()
    events.patch(calendarId="primary", eventId=HEX_ID, body={"summary": "x"}).execute()
    events.delete(calendarId="primary", eventId=HEX_ID, sendUpdates="none").execute()

    items = requests.get(f"{url}/_sandbox/notifications", timeout=5).json()["items"]

    assert items == [
        {"calendarId": ACCOUNT, "eventId": HEX_ID, "action": "insert", "sendUpdates": "all"},
        {"calendarId": ACCOUNT, "eventId": HEX_ID, "action": "patch", "sendUpdates": None},
        {"calendarId": ACCOUNT, "eventId": HEX_ID, "action": "delete", "sendUpdates": "none"},
    ]


def test_invalid_send_updates_is_400_and_writes_nothing(
    url: str, token: str, google: GoogleStandIn
) -> None:
    answer = requests.post(
        f"{url}/calendar/v3/calendars/primary/events?sendUpdates=everyone",
        json=timed(HEX_ID),
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["errors"][0]["reason"] == "invalid"
    assert google.events() == []
    assert google.notifications == []


def test_injected_fault_reaches_the_client_once(calendar: Any, url: str) -> None:
    fault = {"path": "/events$", "method": "GET", "status": 503, "count": 1}
    assert requests.post(f"{url}/_sandbox/faults", json=fault, timeout=5).status_code == 200

    with pytest.raises(HttpError) as caught:
        calendar.events().list(calendarId="primary").execute()
    assert caught.value.status_code == 503
    assert calendar.events().list(calendarId="primary").execute()["items"] == []


def test_admin_routes_drive_oauth_and_state(url: str, google: GoogleStandIn) -> None:
    def admin(path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.post(f"{url}/_sandbox/{path}", json=body or {}, timeout=5)

    assert admin("oauth/clients", {"client_id": "c2", "client_secret": "s2"}).ok
    assert admin(
        "oauth/refresh-tokens", {"refresh_token": "r2", "client_id": "c2", "scopes": SCOPES}
    ).ok
    seeded = admin("oauth/access-tokens", {"client_id": "c2", "scopes": SCOPES, "lifetime": 60})
    access = seeded.json()
    assert access["expiry"].endswith("Z")
    assert len(access["expiry"]) == 20
    creds = Credentials(
        token=None, refresh_token="r2", client_id="c2", client_secret="s2", token_uri=f"{url}/token"
    )
    creds.refresh(Request())

    seeded_calendar = build_calendar(url, Credentials(token=access["access_token"]))
    seeded_calendar.events().insert(calendarId="primary", body=timed(HEX_ID)).execute()
    build_calendar(url, creds).events().get(calendarId="primary", eventId=HEX_ID).execute()
    listed = requests.get(f"{url}/_sandbox/calendars/primary/events", timeout=5).json()
    assert [e["id"] for e in listed["items"]] == [HEX_ID]

    assert admin("oauth/revoke", {"refresh_token": "r2"}).ok
    with pytest.raises(RefreshError):
        creds.refresh(Request())
    assert admin("oauth/expire").ok
    answer = requests.get(
        f"{url}/calendar/v3/calendars/primary/events/{HEX_ID}",
        headers={"Authorization": f"Bearer {access['access_token']}"},
        timeout=5,
    )
    assert answer.status_code == 401

    assert admin("reset").ok
    assert google.events() == []
    assert google.notifications == []
    assert google.recorder.snapshot() == []


def test_concurrent_writers_get_one_winner_per_id(
    url: str, token: str, google: GoogleStandIn
) -> None:
    path = f"{url}/calendar/v3/calendars/primary/events"
    headers = {"Authorization": f"Bearer {token}"}

    def insert(n: int) -> int:
        event_id = HEX_ID if n % 2 else f"{n:08x}"
        return requests.post(path, json=timed(event_id), headers=headers, timeout=5).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(insert, range(40)))

    assert statuses.count(409) == 19
    assert statuses.count(200) == 21
    assert len(google.events()) == 21


def test_utf8_bodies_round_trip_directly_and_in_a_batch(
    calendar: Any, url: str, token: str
) -> None:
    summary = "Планёрка отдела"
    raw = json.dumps(timed(HEX_ID, summary=summary), ensure_ascii=False).encode()
    answer = requests.post(
        f"{url}/calendar/v3/calendars/primary/events",
        data=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.json()["summary"] == summary

    got: list[Any] = []
    batch = BatchHttpRequest(
        callback=lambda _i, r, e: got.append(e or r), batch_uri=f"{url}/batch/calendar/v3"
    )
    batch.add(calendar.events().insert(calendarId="primary", body=timed("aaaaa1", summary=summary)))
    batch.add(calendar.events().get(calendarId="primary", eventId=HEX_ID))
    batch.execute()
    assert [e["summary"] for e in got] == [summary, summary]
