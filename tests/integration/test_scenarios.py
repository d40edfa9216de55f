"""list_events and create_calendar as a Bpium scenario calls them, against the stand-ins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import Functions

BASE = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def add_events(
    fns: Functions, count: int, *, calendar: str = "primary", start: datetime = BASE
) -> None:
    for i in range(count):
        begin = start + timedelta(minutes=10 * i)
        fns.stack.google.add_event(
            calendar,
            {
                "summary": f"Event {i}",
                "start": {"dateTime": begin.isoformat()},
                "end": {"dateTime": (begin + timedelta(minutes=30)).isoformat()},
            },
        )


def test_missing_or_wrong_api_key_is_401(fns: Functions) -> None:
    for name in ("list_events", "create_calendar"):
        missing = fns.scenario(name, {}, key=None)
        assert missing.status_code == 401
        assert missing.get_json()["error"]["code"] == "api_key_missing"
        wrong = fns.scenario(name, {}, key="guess")
        assert wrong.status_code == 401
        assert wrong.get_json()["error"]["code"] == "api_key_invalid"
    assert fns.stack.google.recorder.snapshot() == []


def test_bearer_key_and_get_query_work(fns: Functions) -> None:
    add_events(fns, 3)
    answer = fns.scenario(
        "list_events",
        {"timeMin": "2026-12-01", "timeMax": "2026-12-02"},
        method="GET",
        header="Authorization",
    )
    assert answer.status_code == 200, answer.get_json()
    assert [e["summary"] for e in answer.get_json()["items"]] == ["Event 0", "Event 1", "Event 2"]


def test_6000_events_across_pages_in_one_call(fns: Functions) -> None:
    add_events(fns, 6000)
    fns.reset_calls()
    answer = fns.scenario(
        "list_events",
        {"timeMin": "2026-12-01T00:00:00.000Z", "timeMax": "2027-01-31T00:00:00.000Z"},
    )
    body = answer.get_json()
    assert answer.status_code == 200
    assert body["count"] == 6000
    assert len({e["id"] for e in body["items"]}) == 6000
    assert body["items"][0]["summary"] == "Event 0"
    assert body["items"][-1]["summary"] == "Event 5999"
    pages = [c for c in fns.stack.google.recorder.snapshot() if c.path.endswith("/events")]
    assert len(pages) == 3  # 2500 + 2500 + 1000
    assert all("maxResults=2500" in c.query for c in pages)


def test_limit_stops_paging_early(fns: Functions) -> None:
    add_events(fns, 30)
    body = fns.scenario("list_events", {"timeMin": "2026-12-01", "limit": 7}).get_json()
    assert body["count"] == 7


def test_our_events_carry_their_bpium_ids_and_reminders(fns: Functions) -> None:
    from tests.integration.test_webhooks import meeting

    record = meeting(fns.stack)
    fns.created(record)
    item = fns.scenario(
        "list_events", {"timeMin": "2026-12-01", "timeMax": "2026-12-02"}
    ).get_json()["items"][0]
    assert (item["bpiumCatalogId"], item["bpiumRecordId"]) == ("7", record)
    assert item["organizer"] == "owner@example.com"
    assert item["attendees"][0] == {"email": "anna@acme.example", "responseStatus": "needsAction"}
    assert item["start"] == "2026-12-01T10:00:00+03:00"


def test_recurring_events_are_expanded_into_instances(fns: Functions) -> None:
    fns.stack.google.add_event(
        "primary",
        {
            "summary": "Daily",
            "start": {"dateTime": "2026-12-01T09:00:00+03:00", "timeZone": "Europe/Moscow"},
            "end": {"dateTime": "2026-12-01T09:15:00+03:00", "timeZone": "Europe/Moscow"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
        },
    )
    items = fns.scenario(
        "list_events", {"timeMin": "2026-12-02", "timeMax": "2026-12-10"}
    ).get_json()["items"]
    assert [i["start"][:10] for i in items] == [
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
        "2026-12-05",
    ]
    assert all(i["recurringEventId"] for i in items)


def test_sync_token_gives_only_changes_and_an_expired_one_is_409(fns: Functions) -> None:
    add_events(fns, 5)
    first = fns.scenario("list_events", {"sync": True}).get_json()
    assert first["count"] == 5
    token = first["nextSyncToken"]
    assert token
    add_events(fns, 1, start=BASE + timedelta(days=3))
    changes = fns.scenario("list_events", {"syncToken": token}).get_json()
    assert [e["summary"] for e in changes["items"]] == ["Event 0"]
    assert changes["nextSyncToken"]
    fns.stack.google.expire_sync_tokens()
    expired = fns.scenario("list_events", {"syncToken": changes["nextSyncToken"]})
    assert expired.status_code == 409
    assert expired.get_json()["error"]["code"] == "sync_token_expired"
    assert "sync=true" in expired.get_json()["error"]["message"]


def test_sync_with_a_text_filter_is_refused(fns: Functions) -> None:
    answer = fns.scenario("list_events", {"sync": True, "q": "Планёрка"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "q"


def test_broken_json_body_is_400(fns: Functions) -> None:
    answer = fns.clients["list_events"].post(
        "/",
        data=b"{oops",
        headers={"X-Api-Key": "local-api-key-0123456789"},
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "invalid_json"


def test_create_calendar_creates_and_shares(fns: Functions) -> None:
    answer = fns.scenario(
        "create_calendar",
        {
            "summary": "Переговорная 1",
            "description": "Бронирования",
            "timeZone": "Asia/Yekaterinburg",
            "shareWith": [
                {"email": "anna@acme.example", "role": "writer"},
                {"email": "ivan@acme.example"},
            ],
        },
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["created"] is True
    assert (body["summary"], body["timeZone"]) == ("Переговорная 1", "Asia/Yekaterinburg")
    rules = {
        r["scope"]["value"]: r["role"]
        for r in fns.stack.google.acl(body["id"])
        if r["scope"]["type"] == "user"
    }
    assert rules["anna@acme.example"] == "writer"
    assert rules["ivan@acme.example"] == "reader"


def test_create_calendar_if_not_exists_makes_it_once_even_when_asked_twice(fns: Functions) -> None:
    params = {
        "summary": "Отпуска",
        "ifNotExists": True,
        "shareWith": [{"email": "olga@acme.example"}],
    }
    first = fns.scenario("create_calendar", params).get_json()
    second = fns.scenario("create_calendar", params).get_json()
    assert first["created"] is True
    assert second["created"] is False
    assert second["id"] == first["id"]
    named = [c for c in fns.stack.google.calendars() if c.get("summary") == "Отпуска"]
    assert len(named) == 1
    olga = [
        r
        for r in fns.stack.google.acl(first["id"])
        if r["scope"].get("value") == "olga@acme.example"
    ]
    assert len(olga) == 1


def test_create_calendar_without_summary_is_400(fns: Functions) -> None:
    answer = fns.scenario("create_calendar", {"description": "x"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "summary"
    assert fns.stack.google.calendars() == [
        c for c in fns.stack.google.calendars() if c.get("primary")
    ]


@pytest.mark.parametrize("name", ["list_events", "create_calendar"])
def test_scenario_functions_answer_json_on_config_errors(
    fns: Functions, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpium_calendar import services

    monkeypatch.delenv("BPIUM_URL")
    services.reset()
    answer = fns.scenario(name, {})
    assert answer.status_code == 500
    assert answer.get_json()["error"]["code"] == "config_invalid"


def test_form_fields_from_a_key_value_web_request_work(fns: Functions) -> None:
    add_events(fns, 2)
    answer = fns.clients["list_events"].post(
        "/",
        data={"timeMin": "2026-12-01", "timeMax": "2026-12-02", "q": "Event 1"},
        headers={"X-Api-Key": "local-api-key-0123456789"},
    )
    assert answer.status_code == 200, answer.get_json()
    assert [e["summary"] for e in answer.get_json()["items"]] == ["Event 1"]


def test_json_body_must_be_an_object(fns: Functions) -> None:
    answer = fns.clients["create_calendar"].post(
        "/", json=["summary"], headers={"X-Api-Key": "local-api-key-0123456789"}
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "body"
