"""200 concurrent webhooks at functions-framework's production server (gunicorn threads):
for distinct records and for one record, no error, no duplicate, the final state wins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bpium_calendar.event_ids import event_id_for
from sandbox.processes import free_port, functions_served
from sandbox.stack import QUEUE, Stack, start_stack
from tests.conftest import TEST_QUEUE, TIME_SCALE, hook_body, sign

pytestmark = pytest.mark.e2e
CONCURRENT = int(os.environ.get("SOAK_CONCURRENT", "200"))
START = (datetime.now(UTC) + timedelta(days=5)).replace(hour=8, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Stack, dict[str, str]]]:
    # This test is about our threads, not Bpium's limit: the queue dispatches as fast as
    # the worker's 8 threads take tasks.
    stack = start_stack(rate_limit=10**6, queue=TEST_QUEUE, time_scale=TIME_SCALE)
    worker = free_port()
    stack.deliver_to(f"http://127.0.0.1:{worker}")
    env = {**os.environ, **stack.env, "THREADS": "16", "BPIUM_RATE_LIMIT": "0"}
    names = ("on_meeting_created", "on_meeting_updated", "sync_meeting")
    try:
        with functions_served(names, env, {"sync_meeting": worker}) as urls:
            yield stack, urls
    finally:
        stack.stop()


def post(url: str, body: bytes) -> requests.Response:
    return requests.post(
        url,
        data=body,
        timeout=120,
        headers={"X-Hook-Signature": sign(body), "Content-Type": "application/json"},
    )


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_200_concurrent_creates_of_distinct_records(served: tuple[Stack, dict[str, str]]) -> None:
    stack, urls = served
    bodies = []
    for i in range(CONCURRENT):
        start = START + timedelta(minutes=30 * i)
        values = {
            "2": f"Встреча {i}",
            "3": stamp(start),
            "4": stamp(start + timedelta(minutes=30)),
            "6": [{"id": str(1 + i % 3)}],
        }
        record = stack.bpium.put_record(stack.meetings, values, fire=False)
        bodies.append(
            (
                record,
                hook_body(
                    "record.created", record, stack.bpium.record(stack.meetings, record)["values"]
                ),
            )
        )
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(lambda rb: post(urls["on_meeting_created"], rb[1]), bodies))
    assert [a.status_code for a in answers] == [200] * CONCURRENT
    assert {a.json()["status"] for a in answers} == {"queued"}
    assert stack.tasks.wait_idle(120)
    assert stack.tasks.max_in_flight_seen[QUEUE] <= TEST_QUEUE["max_concurrent_dispatches"]
    assert {a["status"] for a in stack.tasks.attempts} == {200}
    events = {e["id"]: e for e in stack.google.events("primary")}
    for record, _ in bodies:
        assert event_id_for(stack.meetings, record) in events
    assert len(events) == CONCURRENT


def test_200_concurrent_updates_of_one_record_end_in_its_final_state(
    served: tuple[Stack, dict[str, str]],
) -> None:
    stack, urls = served
    record = stack.bpium.put_record(
        stack.meetings,
        {"2": "Исходная", "3": stamp(START), "4": stamp(START + timedelta(hours=1))},
        fire=False,
    )
    assert (
        post(
            urls["on_meeting_created"],
            hook_body(
                "record.created", record, stack.bpium.record(stack.meetings, record)["values"]
            ),
        ).status_code
        == 200
    )
    assert stack.tasks.wait_idle(30)
    deliveries = []
    for i in range(CONCURRENT):  # the record changes 200 times; each change sends its webhook
        before = stack.bpium.record(stack.meetings, record)["values"]
        change = {
            "2": f"Версия {i}",
            "3": stamp(START + timedelta(minutes=i)),
            "4": stamp(START + timedelta(minutes=i + 45)),
        }
        stack.bpium.update_record(stack.meetings, record, change, fire=False)
        deliveries.append(hook_body("record.updated", record, change, before, sequence_id=i))
    deliveries.reverse()  # and arrive in the worst order, all at once
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(lambda body: post(urls["on_meeting_updated"], body), deliveries))
    assert [a.status_code for a in answers] == [200] * CONCURRENT
    assert {a.json()["status"] for a in answers} <= {"queued", "ignored"}
    assert stack.tasks.wait_idle(120)
    ours = [
        e
        for e in stack.google.events("primary")
        if e["extendedProperties"]["private"]["bpiumRecordId"] == record
    ]
    assert len(ours) == 1
    final = stack.bpium.record(stack.meetings, record)["values"]
    assert ours[0]["summary"] == final["2"] == f"Версия {CONCURRENT - 1}"
    assert datetime.fromisoformat(ours[0]["start"]["dateTime"]) == datetime.fromisoformat(
        final["3"]
    )
    patches = stack.google.recorder.count("PATCH", f"/events/{ours[0]['id']}$")
    assert patches < CONCURRENT / 2  # requests covered by a later read did not write again
