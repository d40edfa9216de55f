"""What people do in Google's UI (`person_edit`, `person_delete`), what Google then refuses,
reminders under patch semantics and Meet request ids, driven by google-api-python-client."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.google_calendar import ApiError, GoogleStandIn
from tests.sandbox.conftest import failure

ACCOUNT = "owner@example.com"
EVENT = "abcdef0123"
NOW = 1_780_000_000.0  # 2026-05-28


def timed(hour: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "summary": "Planning",
        "start": {"dateTime": f"2026-03-02T{hour:02d}:00:00+03:00"},
        "end": {"dateTime": f"2026-03-02T{hour + 1:02d}:00:00+03:00"},
        **extra,
    }


def meet_request(request_id: str) -> dict[str, Any]:
    return {
        "createRequest": {
            "requestId": request_id,
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }
    }


OVERRIDES = {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]}


# ---------------------------------------------------------------------------- reminders


def test_patching_use_default_onto_overrides_is_400_and_null_overrides_restore_defaults(
    api: Any, google: GoogleStandIn
) -> None:
    events = api.events()
    events.insert(calendarId="primary", body=timed(id=EVENT, reminders=OVERRIDES)).execute()

    def patch(reminders: dict[str, Any]) -> Any:
        return events.patch(calendarId="primary", eventId=EVENT, body={"reminders": reminders})

    # Objects merge: the stored overrides stay next to useDefault=true.
    assert failure(patch({"useDefault": True})) == (
        400,
        "cannotUseDefaultRemindersAndSpecifyOverride",
    )
    # An empty list next to useDefault=true is "both" too (the harsh reading).
    assert failure(patch({"useDefault": True, "overrides": []}))[1] == (
        "cannotUseDefaultRemindersAndSpecifyOverride"
    )
    assert google.event("primary", EVENT)["reminders"] == OVERRIDES

    restored = patch({"useDefault": True, "overrides": None}).execute()  # null clears
    assert restored["reminders"] == {"useDefault": True}


def test_empty_overrides_with_default_are_accepted_with_the_kind_switch(
    api: Any, google: GoogleStandIn
) -> None:
    events = api.events()
    both = {"useDefault": True, "overrides": []}
    assert failure(events.insert(calendarId="primary", body=timed(reminders=both)))[0] == 400
    google.refuse_default_with_empty_overrides = False
    events.insert(calendarId="primary", body=timed(id=EVENT, reminders=OVERRIDES)).execute()
    patched = events.patch(calendarId="primary", eventId=EVENT, body={"reminders": both}).execute()
    assert patched["reminders"] == {"useDefault": True}  # an empty list is not answered
    none = {"useDefault": False, "overrides": []}
    quiet = events.insert(calendarId="primary", body=timed(reminders=none)).execute()
    assert quiet["reminders"] == {"useDefault": False}


def test_null_in_a_patch_clears_a_nested_field(api: Any) -> None:
    events = api.events()
    props = {"private": {"bpiumRecord": "42", "note": "x"}}
    events.insert(calendarId="primary", body=timed(id=EVENT, extendedProperties=props)).execute()
    patched = events.patch(
        calendarId="primary",
        eventId=EVENT,
        body={"extendedProperties": {"private": {"note": None}}},
    ).execute()
    assert patched["extendedProperties"] == {"private": {"bpiumRecord": "42"}}


# ---------------------------------------------------------------------------- person_edit


def test_person_edit_changes_the_event_like_a_real_change_without_a_call(
    api: Any, google: GoogleStandIn
) -> None:
    google.clock = lambda: NOW
    events = api.events()
    body = timed(id=EVENT, reminders=OVERRIDES, conferenceData=meet_request("r1"))
    created = events.insert(calendarId="primary", body=body, conferenceDataVersion=1).execute()
    assert created["hangoutLink"]
    token = events.list(calendarId="primary").execute()["nextSyncToken"]
    calls, notifications = len(google.recorder.snapshot()), list(google.notifications)

    google.clock = lambda: NOW + 60
    later = timed(hour=15)
    edited = google.person_edit(
        "primary",
        EVENT,
        {
            "reminders": {"overrides": [{"method": "email", "minutes": 30}]},
            "conferenceData": None,
            "hangoutLink": None,
            "start": later["start"],
            "end": later["end"],
        },
    )

    assert edited["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "email", "minutes": 30}],
    }
    assert "conferenceData" not in edited
    assert "hangoutLink" not in edited
    assert edited["sequence"] == created["sequence"] + 1
    assert edited["etag"] != created["etag"]
    assert edited["updated"] > created["updated"]
    assert google.event("primary", EVENT) == edited
    assert len(google.recorder.snapshot()) == calls
    assert google.notifications == notifications
    changes = events.list(calendarId="primary", syncToken=token).execute()["items"]
    assert [(e["id"], e["start"]) for e in changes] == [(EVENT, later["start"])]


def test_person_edit_is_checked_like_an_edit_google_accepts(google: GoogleStandIn) -> None:
    google.add_event("primary", timed(id=EVENT))
    with pytest.raises(ApiError) as caught:
        google.person_edit("primary", EVENT, {"end": {"dateTime": "2026-03-02T09:00:00+03:00"}})
    assert caught.value.reason == "timeRangeEmpty"
    with pytest.raises(ApiError) as caught:
        google.person_edit("primary", "zzzzz9", {"summary": "x"})
    assert caught.value.code == 404


def test_person_edit_and_delete_over_admin_routes(url: str, google: GoogleStandIn) -> None:
    google.add_event("primary", timed(id=EVENT))
    base = f"{url}/_sandbox/calendars/primary/events/{EVENT}"

    edited = requests.post(f"{base}/person-edit", json={"summary": "From the UI"}, timeout=5)
    assert edited.status_code == 200
    assert edited.json()["summary"] == "From the UI"
    deleted = requests.post(f"{base}/person-delete", timeout=5)
    assert deleted.json()["status"] == "cancelled"
    assert google.event("primary", EVENT)["status"] == "cancelled"

    unknown = requests.post(f"{url}/_sandbox/calendars/primary/events/zzzzz9/person-delete")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["errors"][0]["reason"] == "notFound"
    assert google.recorder.snapshot() == []


# ---------------------------------------------------------------------------- revival


def test_an_event_a_person_deleted_cannot_be_revived_through_the_api(
    api: Any, google: GoogleStandIn
) -> None:
    events = api.events()
    events.insert(calendarId="primary", body=timed(id=EVENT)).execute()
    token = events.list(calendarId="primary").execute()["nextSyncToken"]
    google.person_delete("primary", EVENT)

    revive = {"status": "confirmed", "summary": "Back"}
    assert failure(events.patch(calendarId="primary", eventId=EVENT, body=revive)) == (
        403,
        "forbidden",
    )
    put = timed(status="confirmed")
    assert failure(events.update(calendarId="primary", eventId=EVENT, body=put)) == (
        403,
        "forbidden",
    )
    insert = events.insert(calendarId="primary", body=timed(id=EVENT))
    assert failure(insert) == (409, "duplicate")
    delete = events.delete(calendarId="primary", eventId=EVENT)
    assert failure(delete) == (410, "deleted")
    got = events.get(calendarId="primary", eventId=EVENT).execute()
    assert (got["status"], got["summary"]) == ("cancelled", "Planning")
    changes = events.list(calendarId="primary", syncToken=token).execute()["items"]
    assert [(e["id"], e["status"]) for e in changes] == [(EVENT, "cancelled")]

    google.person_edit("primary", EVENT, {"status": "confirmed"})  # restored from the bin
    assert events.patch(calendarId="primary", eventId=EVENT, body=revive).execute()["summary"]


def test_an_event_we_deleted_stays_revivable(api: Any) -> None:
    events = api.events()
    events.insert(calendarId="primary", body=timed(id=EVENT)).execute()
    events.delete(calendarId="primary", eventId=EVENT).execute()
    revived = events.patch(
        calendarId="primary", eventId=EVENT, body={"status": "confirmed"}
    ).execute()
    assert revived["status"] == "confirmed"


def test_the_kind_switch_lets_a_person_deleted_event_be_revived(
    api: Any, google: GoogleStandIn
) -> None:
    google.refuse_revival_of_person_deleted = False
    events = api.events()
    events.insert(calendarId="primary", body=timed(id=EVENT)).execute()
    google.person_delete("primary", EVENT)
    revived = events.patch(
        calendarId="primary", eventId=EVENT, body={"status": "confirmed"}
    ).execute()
    assert revived["status"] == "confirmed"


# ---------------------------------------------------------------------------- Meet


def test_a_request_id_used_before_is_ignored_even_after_a_person_removed_the_meet(
    api: Any, google: GoogleStandIn
) -> None:
    events = api.events()

    def patch(request_id: str) -> dict[str, Any]:
        request = events.patch(
            calendarId="primary",
            eventId=EVENT,
            body={"conferenceData": meet_request(request_id)},
            conferenceDataVersion=1,
        )
        result: dict[str, Any] = request.execute()
        return result

    body = timed(id=EVENT, conferenceData=meet_request("r1"))
    first = events.insert(calendarId="primary", body=body, conferenceDataVersion=1).execute()
    assert first["hangoutLink"]
    google.person_edit("primary", EVENT, {"conferenceData": None, "hangoutLink": None})

    again = patch("r1")
    assert "conferenceData" not in again
    assert "hangoutLink" not in again

    second = patch("r2")
    assert second["hangoutLink"]
    assert second["hangoutLink"] != first["hangoutLink"]
    assert patch("r1")["conferenceData"] == second["conferenceData"]  # r1 still ignored
    assert patch("r2")["hangoutLink"] == second["hangoutLink"]
