"""Google → Bpium (issue «two-way»): channels, pushes, the calendar worker, and healing.

The Google stand-in sends real push notifications to `on_calendar_push`, served over HTTP
in this process; the Cloud Tasks stand-in dispatches to `sync_calendar`; state lives in
Google's Firestore emulator.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sandbox import bpium
from sandbox.common import Fault
from sandbox.stack import CHANNEL_TOKEN, QUEUE, Stack
from tests.conftest import TEST_QUEUE, TwoWay, hook_body
from tests.integration.conftest import Functions

RESPONSES, STATUS = bpium.ROLES["responses"], bpium.ROLES["status"]
START = (datetime.now(UTC) + timedelta(days=2)).replace(hour=7, minute=0, second=0, microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def two_way(two_way_servers: TwoWay, fns: Functions, monkeypatch: pytest.MonkeyPatch) -> Functions:
    """The functions with two-way on: one sync per push (no debounce interval)."""
    monkeypatch.setenv("PUSH_DEBOUNCE_SECONDS", "0")
    two_way_servers.forget()
    fns.served = two_way_servers  # type: ignore[attr-defined]
    return fns


def settle(fns: Functions) -> None:
    """Until Google has nothing left to push and the queue nothing left to deliver."""
    for _ in range(3):
        assert fns.stack.google.wait_pushes_idle(10.0), "pushes did not settle"
        assert fns.stack.tasks.wait_idle(20.0), "the queue did not settle"


def watch(fns: Functions) -> dict[str, Any]:
    answer = fns.clients["watch_calendars"].post("/")
    assert answer.status_code == 200, answer.get_json()
    settle(fns)
    return dict(answer.get_json())


def meeting(fns: Functions, **values: object) -> tuple[str, str]:
    """A meeting created in Bpium and synced (its webhook delivered): (record, event id)."""
    base = {
        "2": "Планёрка",
        "3": stamp(START),
        "4": stamp(START + timedelta(hours=1)),
        "6": [{"id": "1"}, {"id": "2"}],
        "7": [{"contact": "guest@partner.example"}],
    }
    record = fns.stack.bpium.put_record(fns.stack.meetings, {**base, **values}, fire=False)
    answer = fns.created(record)
    assert answer.status_code == 200, answer.get_json()
    settle(fns)
    return record, answer.get_json()["eventId"]


def values(stack: Stack, record: str) -> dict[str, Any]:
    return dict(stack.bpium.record(stack.meetings, record)["values"])


def answer(stack: Stack, event_id: str, email: str, status: str) -> None:
    """An attendee answers the invitation (Google changes the organizer's copy)."""
    event = stack.google.event("primary", event_id)
    assert event is not None
    people = [
        {**a, "responseStatus": status} if a["email"] == email else a for a in event["attendees"]
    ]
    stack.google.person_edit("primary", event_id, {"attendees": people})


def record_patches(stack: Stack, record: str) -> int:
    return stack.bpium.recorder.count("PATCH", f"/records/{record}$")


def push_headers(stack: Stack, **overrides: str) -> dict[str, str]:
    [channel] = stack.google.channels()
    headers = {
        "X-Goog-Channel-ID": channel["id"],
        "X-Goog-Channel-Token": CHANNEL_TOKEN,
        "X-Goog-Resource-ID": channel["resourceId"],
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "999",
    }
    return {**headers, **overrides}


def push(fns: Functions, headers: dict[str, str]) -> Any:
    return fns.clients["on_calendar_push"].post("/", headers=headers)


# -- channels -------------------------------------------------------------------------------


def test_watch_opens_a_channel_its_sync_message_finds_and_a_first_full_sync(
    two_way: Functions,
) -> None:
    stack = two_way.stack
    counts = watch(two_way)
    assert (counts["calendars"], counts["opened"], counts["failed"]) == (1, 1, 0)
    [channel] = stack.google.channels()
    assert channel["address"] == stack.env["CALENDAR_PUSH_URL"]
    # The sync message may come before the watch's answer: the channel was stored first.
    served: TwoWay = two_way.served  # type: ignore[attr-defined]
    pushes = [body for _, body in served.push.all_answers()]
    assert {"status": "ignored", "reason": "sync"} in pushes
    assert all(p.get("reason") != "unknown_channel" for p in pushes)
    # The first sync (a full one) ran and left a token: the next run opens nothing.
    synced = [body for _, body in served.calendar_worker.all_answers()]
    assert [s["status"] for s in synced] == ["synced"]
    assert synced[0]["full"] is True
    again = watch(two_way)
    assert (again["opened"], again["kept"]) == (0, 1)
    assert len(stack.google.channels()) == 1


def test_a_channel_near_its_expiration_is_replaced_before_the_old_one_is_stopped(
    two_way: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = two_way.stack
    watch(two_way)
    [old] = stack.google.channels()
    # Every channel is now "within a day" of expiring: the next run renews.
    monkeypatch.setattr("bpium_calendar.watch.RENEW_BEFORE", 40 * 86400.0)
    counts = watch(two_way)
    assert counts["opened"] == 1
    [new] = stack.google.channels()
    assert new["id"] != old["id"]
    # Changes now come through the new channel and still reach the record.
    record, event_id = meeting(two_way)
    answer(stack, event_id, "anna@acme.example", "accepted")
    settle(two_way)
    assert "anna@acme.example: accepted" in values(stack, record)[RESPONSES]


# -- answers, moves, cancellations -----------------------------------------------------------


def test_an_attendees_answer_reaches_the_record_and_our_own_writes_cost_no_bpium_write(
    two_way: Functions,
) -> None:
    stack = two_way.stack
    watch(two_way)
    stack.bpium.recorder.reset_calls()
    record, event_id = meeting(two_way)
    # Our insert came back as a push: nobody has answered, so nothing to write (the only
    # write is the event id's write-back).
    assert record_patches(stack, record) == 1
    assert values(stack, record).get(RESPONSES) in (None, "")
    answer(stack, event_id, "ivan@acme.example", "declined")
    settle(two_way)
    assert values(stack, record)[RESPONSES] == (
        "anna@acme.example: needsAction\n"
        "ivan@acme.example: declined\n"
        "guest@partner.example: needsAction"
    )
    assert record_patches(stack, record) == 2
    # A change in Bpium, synced to the event, comes back as a push: zero Bpium writes.
    prev = values(stack, record)
    stack.bpium.update_record(stack.meetings, record, {"2": "Планёрка (перенесена)"}, fire=False)
    assert two_way.updated(record, {"2": "Планёрка (перенесена)"}, prev).status_code == 200
    settle(two_way)
    assert stack.google.event("primary", event_id)["summary"] == "Планёрка (перенесена)"
    assert record_patches(stack, record) == 2


def test_a_person_moving_the_event_moves_the_record_with_from_google_and_no_bounce(
    two_way: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROM_GOOGLE", "start,end")
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    before = values(stack, record)
    later = START + timedelta(hours=3)
    stack.google.person_edit(
        "primary",
        event_id,
        {
            "start": {"dateTime": later.isoformat(), "timeZone": "Europe/Moscow"},
            "end": {"dateTime": (later + timedelta(hours=1)).isoformat()},
        },
    )
    settle(two_way)
    after = values(stack, record)
    assert (after["3"], after["4"]) == (stamp(later), stamp(later + timedelta(hours=1)))
    assert after["2"] == before["2"]  # only the FROM_GOOGLE roles follow
    # Bpium's webhook of our own write (by the integration's user) costs zero calls.
    two_way.reset_calls()
    changed = {"3": after["3"], "4": after["4"]}
    body = hook_body(
        "record.updated", record, changed, before, user_id=stack.seed["users"]["api"]["id"]
    )
    echo = two_way.post("on_meeting_updated", body)
    assert echo.get_json() == {"status": "ignored", "reason": "own_google_write"}
    assert two_way.calls()["google"] == 0
    # (learning the API user is one Bpium read, once per instance)
    assert stack.bpium.recorder.count("PATCH") == 0
    # A person's own change of those fields in Bpium still goes to Google.
    body = hook_body("record.updated", record, {"3": stamp(START)}, after, user_id="1")
    stack.bpium.update_record(stack.meetings, record, {"3": stamp(START)}, fire=False)
    assert two_way.post("on_meeting_updated", body).get_json()["status"] == "updated"
    settle(two_way)
    # ... and its push does not write the record again (our write, not a person's).
    patches = record_patches(stack, record)
    settle(two_way)
    assert record_patches(stack, record) == patches
    assert values(stack, record)["3"] == stamp(START)


def test_without_from_google_a_move_in_google_writes_nothing_but_answers(
    two_way: Functions,
) -> None:
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    before = values(stack, record)
    stack.google.person_edit("primary", event_id, {"summary": "Переименовал в Google"})
    settle(two_way)
    assert values(stack, record) == before


def test_a_person_cancelling_in_google_sets_status_and_nothing_revives_it(
    two_way: Functions,
) -> None:
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    stack.google.person_delete("primary", event_id)
    settle(two_way)
    assert values(stack, record)[STATUS] == "cancelled"  # the record is still there
    counts = two_way.clients["reconcile"].post("/").get_json()
    settle(two_way)
    assert counts["keptCancelled"] == 1
    assert stack.google.event("primary", event_id)["status"] == "cancelled"
    # The record's next change in Bpium decides: it gets an event again.
    prev = values(stack, record)
    stack.bpium.update_record(stack.meetings, record, {"2": "Всё же встречаемся"}, fire=False)
    result = two_way.updated(record, {"2": "Всё же встречаемся"}, prev).get_json()
    settle(two_way)
    live = [e for e in stack.google.events("primary") if e["status"] == "confirmed"]
    assert [e["id"] for e in live] == [result["eventId"]]
    assert values(stack, record)[STATUS] == "confirmed"


def test_a_cancellation_of_a_deleted_records_event_writes_nothing(two_way: Functions) -> None:
    stack = two_way.stack
    watch(two_way)
    record, _ = meeting(two_way)
    stack.bpium.delete_record(stack.meetings, record, fire=False)
    assert two_way.deleted(record).get_json()["status"] == "cancelled"
    stack.bpium.recorder.reset_calls()
    settle(two_way)
    assert stack.bpium.recorder.count("PATCH") == 0
    assert stack.bpium.recorder.count("POST") == 0  # never a record created from Google


# -- bad input and faults --------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "not-our-token-0123456789"])
def test_a_push_with_a_wrong_or_missing_token_is_401_and_calls_nothing(
    two_way: Functions, token: str | None
) -> None:
    stack = two_way.stack
    watch(two_way)
    headers = push_headers(stack)
    if token is None:
        del headers["X-Goog-Channel-Token"]
    else:
        headers["X-Goog-Channel-Token"] = token
    two_way.reset_calls()
    tasks = len(stack.tasks.attempts)
    answer_ = push(two_way, headers)
    assert answer_.status_code == 401
    assert answer_.get_json()["error"]["code"].startswith("channel_token")
    assert two_way.calls()["google"] == 0
    assert two_way.calls()["bpium"] == 0
    assert len(stack.tasks.attempts) == tasks


def test_a_push_for_a_channel_we_do_not_hold_stops_it_and_reads_nothing(
    two_way: Functions,
) -> None:
    stack = two_way.stack
    watch(two_way)
    # A channel someone else opened on the calendar, with our token (e.g. an old deploy's).
    stray = {
        "id": "someone-elses-channel",
        "type": "web_hook",
        "address": stack.env["CALENDAR_PUSH_URL"],
        "token": CHANNEL_TOKEN,
    }
    import requests

    opened = requests.post(
        f"{stack.google_url}/calendar/v3/calendars/primary/events/watch",
        json=stray,
        headers={"Authorization": f"Bearer {_access_token(stack)}"},
        timeout=10,
    )
    assert opened.ok, opened.text
    settle(two_way)
    stack.bpium.recorder.reset_calls()
    two_way.reset_calls()
    headers = push_headers(stack)
    headers.update(
        {
            "X-Goog-Channel-ID": "someone-elses-channel",
            "X-Goog-Resource-ID": opened.json()["resourceId"],
        }
    )
    tasks = len(stack.tasks.attempts)
    reply = push(two_way, headers)
    assert reply.get_json() == {"status": "ignored", "reason": "unknown_channel"}
    assert [c.path for c in stack.google.recorder.snapshot()] == ["/calendar/v3/channels/stop"]
    assert two_way.calls()["bpium"] == 0
    assert len(stack.tasks.attempts) == tasks
    assert [c["id"] for c in stack.google.channels()] != ["someone-elses-channel"]
    assert "someone-elses-channel" not in {c["id"] for c in stack.google.channels()}


def _access_token(stack: Stack) -> str:
    import json

    return str(
        json.loads(stack.secrets.access("local-project", "google-oauth-token"))["access_token"]
    )


def test_duplicated_late_and_replayed_pushes_write_nothing_twice(two_way: Functions) -> None:
    stack = two_way.stack
    stack.google.push_duplicate = True
    watch(two_way)
    record, event_id = meeting(two_way)
    answer(stack, event_id, "anna@acme.example", "accepted")
    settle(two_way)
    patches = record_patches(stack, record)
    assert patches == 2  # the event id's write-back, then the answer
    # Replays of an old message, and a fresh one for changes already read.
    for number in ("1", "2", "999", "1000"):
        assert (
            push(two_way, push_headers(stack, **{"X-Goog-Message-Number": number})).status_code
            == 200
        )
    settle(two_way)
    assert record_patches(stack, record) == patches


def test_pushes_within_the_interval_become_one_sync(
    two_way: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUSH_DEBOUNCE_SECONDS", "2")
    stack = two_way.stack
    watch(two_way)
    served: TwoWay = two_way.served  # type: ignore[attr-defined]
    served.forget()
    replies = [
        push(two_way, push_headers(stack, **{"X-Goog-Message-Number": str(n)})) for n in range(5)
    ]
    tasks = {r.get_json()["task"] for r in replies}
    time.sleep(2.5)
    settle(two_way)
    assert len(tasks) <= 2  # the burst may straddle an interval's end
    assert len(served.calendar_worker.all_answers()) == len(tasks)


def test_bpium_down_during_a_push_loses_nothing(two_way: Functions) -> None:
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    stack.bpium.recorder.add_fault(
        Fault(re.compile(f"/records/{record}$"), "PATCH", 503, count=6, delay=0.0)
    )
    answer(stack, event_id, "anna@acme.example", "tentative")
    settle(two_way)
    assert "anna@acme.example: tentative" in values(stack, record)[RESPONSES]
    served: TwoWay = two_way.served  # type: ignore[attr-defined]
    codes = [code for code, _ in served.calendar_worker.all_answers()]
    assert 503 in codes
    assert codes[-1] == 200


def test_an_expired_sync_token_means_a_full_sync_of_answers_only(
    two_way: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROM_GOOGLE", "title")
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    served: TwoWay = two_way.served  # type: ignore[attr-defined]
    served.forget()
    stack.google.expire_sync_tokens()
    stack.google.person_edit("primary", event_id, {"summary": "Из Google"})
    answer(stack, event_id, "anna@acme.example", "accepted")
    settle(two_way)
    assert any(body.get("full") for _, body in served.calendar_worker.all_answers())
    now = values(stack, record)
    assert "anna@acme.example: accepted" in now[RESPONSES]
    assert now["2"] == "Планёрка"  # a full sync cannot tell a person's edit from drift
    # With the new token, the next person's edit is incremental again and follows.
    stack.google.person_edit("primary", event_id, {"summary": "Из Google, снова"})
    settle(two_way)
    assert values(stack, record)["2"] == "Из Google, снова"


def test_reconcile_heals_answers_whose_push_was_lost(two_way: Functions) -> None:
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    stack.google.push_drop_rate = 1.0
    answer(stack, event_id, "guest@partner.example", "accepted")
    settle(two_way)
    assert values(stack, record).get(RESPONSES) in (None, "")
    counts = two_way.clients["reconcile"].post("/").get_json()
    assert counts["healed"] == 1
    assert "guest@partner.example: accepted" in values(stack, record)[RESPONSES]
    # Healed once: the next run writes nothing.
    assert two_way.clients["reconcile"].post("/").get_json()["healed"] == 0


def test_concurrent_syncs_of_one_calendar_lose_no_token_and_write_once(
    two_way: Functions,
) -> None:
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    stack.google.push_drop_rate = 1.0  # the test delivers the syncs itself
    answer(stack, event_id, "anna@acme.example", "accepted")
    served: TwoWay = two_way.served  # type: ignore[attr-defined]
    client = served.calendar_worker.app.test_client()
    replies: list[Any] = []

    def sync() -> None:
        replies.append(client.post("/", json={"calendarId": "primary"}).get_json())

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {r["status"] for r in replies} <= {"synced", "coalesced"}
    assert record_patches(stack, record) == 2  # the write-back, then the answer, once
    # The token stored is one Google issued last: a later change is read from it.
    stack.google.push_drop_rate = 0.0
    answer(stack, event_id, "ivan@acme.example", "accepted")
    settle(two_way)
    assert "ivan@acme.example: accepted" in values(stack, record)[RESPONSES]
    assert record_patches(stack, record) == 3


def test_a_task_for_a_calendar_we_do_not_watch_is_refused(two_way: Functions) -> None:
    served: TwoWay = two_way.served  # type: ignore[attr-defined]
    client = served.calendar_worker.app.test_client()
    two_way.reset_calls()
    reply = client.post("/", json={"calendarId": "someone@example.com"})
    assert (reply.status_code, reply.get_json()["status"]) == (200, "refused")
    assert two_way.calls()["google"] == 0


def test_a_push_cloud_tasks_refuses_answers_503_so_google_sends_it_again(
    two_way: Functions,
) -> None:
    """Google retries a push answered 500/502/503/504 (the push guide): the change waits in
    Google rather than being lost here."""
    stack = two_way.stack
    watch(two_way)
    record, event_id = meeting(two_way)
    stack.tasks.fault_creates(100, status=400)  # refused for good, not retried by our client
    reply = push(two_way, push_headers(stack))
    assert reply.status_code == 503
    assert reply.get_json()["error"]["code"] == "queue_unavailable"
    stack.tasks.reset()
    stack.tasks.add_queue(QUEUE, **TEST_QUEUE)
    answer(stack, event_id, "anna@acme.example", "accepted")
    settle(two_way)
    assert "anna@acme.example: accepted" in values(stack, record)[RESPONSES]
