"""End to end, both ways: functions-framework processes, Google's Firestore emulator, the
Bpium stand-in firing real webhooks and the Google stand-in sending real push notifications.
A meeting made in Bpium gets its event; an attendee's answer in Google comes back to the
record through on_calendar_push → Cloud Tasks → sync_calendar, and nothing echoes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bpium_calendar.event_ids import event_id_for
from sandbox import firestore_emulator
from sandbox.bpium import DEMO_LOGIN, DEMO_PASSWORD
from sandbox.processes import free_ports, functions_served
from sandbox.stack import WEBHOOKS, Stack, start_stack
from tests.conftest import TEST_QUEUE

pytestmark = pytest.mark.e2e

GUEST = "guest@partner.example"
GIVE_UP_AFTER = 60.0  # seconds: a bound on the wait, not a speed target (make bench times it)
NAMES = [*WEBHOOKS, "sync_meeting", "on_calendar_push", "sync_calendar", "watch_calendars"]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Stack, dict[str, str], Path]]:
    with firestore_emulator.start() as emulator:
        # Unscaled queue time: a push's task waits out its 1 s interval as in production.
        # (Scaled, it would run at once while the interval's name stays taken, and a second
        # push of the interval would join a task already done.)
        stack = start_stack(queue=TEST_QUEUE, firestore_host=emulator.host)
        try:
            # The functions read these URLs at start: their ports are chosen first.
            worker, push, calendar_worker = free_ports(3)
            stack.deliver_to(f"http://127.0.0.1:{worker}")
            stack.push_to(f"http://127.0.0.1:{push}", f"http://127.0.0.1:{calendar_worker}")
            env = {
                **os.environ,
                **stack.env,
                "THREADS": "4",
                "FROM_GOOGLE": "start,end",
                "PUSH_DEBOUNCE_SECONDS": "1",
            }
            ports = {"sync_meeting": worker, "on_calendar_push": push}
            ports["sync_calendar"] = calendar_worker
            with functions_served(NAMES, env, ports, logs=tmp_path) as urls:
                stack.subscribe(urls)
                yield stack, urls, tmp_path
        finally:
            stack.stop()


def settle(stack: Stack) -> None:
    """Until webhooks, tasks (a push's sync waits out its interval) and pushes stay idle."""
    for _ in range(3):
        assert stack.bpium.wait_idle(timeout=15)
        assert stack.tasks.wait_idle(timeout=15)
        assert stack.google.wait_pushes_idle(timeout=15)
        time.sleep(0.2)


def logs_of(folder: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(folder.glob("*")))


def test_an_answer_in_google_reaches_the_record_once_without_echoes(
    running: tuple[Stack, dict[str, str], Path],
) -> None:
    stack, urls, logs = running
    watched = requests.post(urls["watch_calendars"], timeout=60)
    assert watched.status_code == 200, watched.text
    assert watched.json()["opened"] == 1
    [channel] = stack.google.channels()
    settle(stack)  # the channel's `sync` message and the first full sync
    assert stack.google.push_log[0]["state"] == "sync"

    record = requests.post(
        f"{stack.bpium_url}/api/v1/catalogs/{stack.meetings}/records",
        auth=(DEMO_LOGIN, DEMO_PASSWORD),
        json={
            "values": {
                "2": "Созвон с партнёром",
                "3": "2026-12-03T09:00:00.000Z",
                "4": "2026-12-03T10:00:00.000Z",
                "6": [{"id": "3"}],
                "7": [{"contact": GUEST}],
            }
        },
        timeout=10,
    ).json()["id"]
    settle(stack)  # the event, its id written back, and the push our own insert caused
    event_id = event_id_for(stack.meetings, record)
    event = stack.google.event("primary", event_id)
    assert event is not None, logs_of(logs)
    patches = f"/records/{record}$"
    # The event id written back, nothing more.
    assert stack.bpium.recorder.count("PATCH", patches) == 1, logs_of(logs)
    calendar_writes = stack.google.recorder.count("PATCH") + stack.google.recorder.count("PUT")

    people = [
        {**a, "responseStatus": "accepted"} if a["email"] == GUEST else a
        for a in event["attendees"]
    ]
    answered = time.monotonic()
    stack.google.person_edit("primary", event_id, {"attendees": people})
    expected = f"olga@acme.example: needsAction\n{GUEST}: accepted"
    while stack.bpium.record(stack.meetings, record)["values"].get("21") != expected:
        assert time.monotonic() - answered < GIVE_UP_AFTER, logs_of(logs)
        time.sleep(0.05)
    took = time.monotonic() - answered
    print(f"the answer reached Bpium {took:.2f} s after it was given in Google")
    settle(stack)  # our Bpium write's record.updated, and any push after it

    values = stack.bpium.record(stack.meetings, record)["values"]
    assert values["21"] == expected
    assert values.get("22") in (None, "")  # still confirmed: written only when it changes
    assert stack.bpium.recorder.count("PATCH", patches) == 2, logs_of(logs)  # one answer write
    # Its webhook came back (made by the integration's user) and stopped there: the event
    # was not written again, so no new push and no second Bpium write.
    echo = [
        d
        for d in stack.bpium.deliveries
        if d["body"]["payload"]["recordId"] == record and d["event"] == "record.updated"
    ][-1]
    assert echo["status"] == 200
    assert '"ignored"' in echo["response"], echo["response"]
    after = stack.google.recorder.count("PATCH") + stack.google.recorder.count("PUT")
    assert after == calendar_writes
    assert stack.google.event("primary", event_id)["etag"] != event["etag"]  # the person's edit
    pushes = [p for p in stack.google.push_log if p["channel"] == channel["id"]]
    assert all(p.get("status") == 200 for p in pushes if not p.get("dropped")), pushes
