"""End to end: functions-framework processes (gunicorn, threads), the Bpium stand-in firing
real signed webhooks at them, including our own write-back coming back as record.updated."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests

from bpium_calendar.event_ids import event_id_for
from sandbox.bpium import DEMO_LOGIN, DEMO_PASSWORD
from sandbox.processes import free_port, functions_served
from sandbox.stack import WEBHOOKS, Stack, start_stack
from tests.conftest import TEST_QUEUE, TIME_SCALE, sign

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Stack, dict[str, str]]]:
    stack = start_stack(queue=TEST_QUEUE, time_scale=TIME_SCALE)
    worker = free_port()
    stack.deliver_to(f"http://127.0.0.1:{worker}")
    names = [*WEBHOOKS, "sync_meeting"]
    env = {**os.environ, **stack.env, "THREADS": "4"}
    try:
        with functions_served(names, env, {"sync_meeting": worker}) as urls:
            stack.subscribe(urls)
            yield stack, urls
    finally:
        stack.stop()


def api(stack: Stack, method: str, path: str, **kwargs: object) -> object:
    response = requests.request(
        method,
        f"{stack.bpium_url}/api/v1{path}",
        auth=(DEMO_LOGIN, DEMO_PASSWORD),
        timeout=10,
        **kwargs,
    )
    response.raise_for_status()
    return response.json() if response.content else None


def values(**extra: object) -> dict[str, object]:
    return {
        "2": "Созвон",
        "3": "2026-12-03T09:00:00.000Z",
        "4": "2026-12-03T10:00:00.000Z",
        "6": [{"id": "3"}],
        "7": [{"contact": "guest@partner.example"}],
        **extra,
    }


def settle(stack: Stack) -> None:
    # Deliveries may cause new ones (our write-back): wait until both queues stay empty.
    for _ in range(3):
        assert stack.bpium.wait_idle(timeout=30)
        assert stack.tasks.wait_idle(timeout=30)
        time.sleep(0.1)


def test_meeting_lifecycle_through_real_webhooks_without_loops(
    running: tuple[Stack, dict[str, str]],
) -> None:
    stack, _ = running
    record = api(stack, "POST", f"/catalogs/{stack.meetings}/records", json={"values": values()})[
        "id"
    ]
    settle(stack)
    event_id = event_id_for(stack.meetings, record)
    event = stack.google.event("primary", event_id)
    assert event is not None
    assert [a["email"] for a in event["attendees"]] == [
        "olga@acme.example",
        "guest@partner.example",
    ]
    assert stack.bpium.record(stack.meetings, record)["values"]["8"] == event_id
    mine = [d for d in stack.bpium.deliveries if d["body"]["payload"]["recordId"] == record]
    assert [(d["event"], d["status"]) for d in mine] == [
        ("record.created", 200),
        ("record.updated", 200),
    ]
    assert '"own_write_back"' in mine[1]["response"]  # the write-back came back and stopped there

    api(
        stack,
        "PATCH",
        f"/catalogs/{stack.meetings}/records/{record}",
        json={"values": {"2": "Созвон (новое время)"}},
    )
    settle(stack)
    assert stack.google.event("primary", event_id)["summary"] == "Созвон (новое время)"

    api(stack, "DELETE", f"/catalogs/{stack.meetings}/records/{record}")
    settle(stack)
    assert stack.google.event("primary", event_id)["status"] == "cancelled"
    mine = [d for d in stack.bpium.deliveries if d["body"]["payload"]["recordId"] == record]
    assert len(mine) == 4  # created, our write-back, the edit, the delete: no loop
    assert all(d["status"] == 200 for d in mine)


def test_duplicate_and_out_of_order_deliveries_give_one_event(
    running: tuple[Stack, dict[str, str]],
) -> None:
    stack, urls = running
    record = api(
        stack,
        "POST",
        f"/catalogs/{stack.meetings}/records",
        json={"values": values(**{"2": "Дубль"})},
    )["id"]
    settle(stack)
    created = next(
        d
        for d in stack.bpium.deliveries
        if d["body"]["payload"]["recordId"] == record and d["event"] == "record.created"
    )
    import json

    raw = json.dumps(created["body"], ensure_ascii=False).encode()
    for _ in range(2):  # the same message again: Bpium never sends one twice, a replay does
        answer = requests.post(
            urls["on_meeting_created"],
            data=raw,
            timeout=30,
            headers={"X-Hook-Signature": sign(raw), "Content-Type": "application/json"},
        )
        assert answer.status_code == 200
        assert answer.json() == {"status": "ignored", "reason": "replayed"}
    # A created for it that is a new message (a second hook, say) finds the event: no copy.
    again = dict(created["body"], hook={**created["body"]["hook"], "sequenceId": 10**6})
    raw = json.dumps(again, ensure_ascii=False).encode()
    answer = requests.post(
        urls["on_meeting_created"],
        data=raw,
        timeout=30,
        headers={"X-Hook-Signature": sign(raw), "Content-Type": "application/json"},
    )
    assert answer.json()["status"] == "queued"
    settle(stack)
    ours = [
        e
        for e in stack.google.events("primary")
        if e["extendedProperties"]["private"]["bpiumRecordId"] == record
    ]
    assert len(ours) == 1


def test_concurrent_webhooks_on_gunicorn_threads_each_make_one_event(
    running: tuple[Stack, dict[str, str]],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import hook_body

    stack, urls = running
    records = [
        stack.bpium.put_record(stack.meetings, values(**{"2": f"Встреча {i}"}), fire=False)
        for i in range(16)
    ]

    def deliver(record: str) -> int:
        body = hook_body(
            "record.created",
            record,
            stack.bpium.record(stack.meetings, record)["values"],
            catalog_id=stack.meetings,
        )
        answer = requests.post(
            urls["on_meeting_created"],
            data=body,
            timeout=60,
            headers={"X-Hook-Signature": sign(body), "Content-Type": "application/json"},
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(deliver, records * 2))  # every record twice, at once
    assert statuses == [200] * len(statuses)
    settle(stack)
    by_record: dict[str, int] = {}
    for event in stack.google.events("primary"):
        rid = event["extendedProperties"]["private"]["bpiumRecordId"]
        by_record[rid] = by_record.get(rid, 0) + 1
    for record in records:
        assert by_record[record] == 1
        assert stack.bpium.record(stack.meetings, record)["values"]["8"] == event_id_for(
            stack.meetings, record
        )


def test_tampered_delivery_is_refused_and_changes_nothing(
    running: tuple[Stack, dict[str, str]],
) -> None:
    stack, urls = running
    before = len(stack.google.events("primary"))
    body = b'{"hook": {"event": "record.created"}, "payload": {"catalogId": "7", "recordId": "1"}}'
    answer = requests.post(
        urls["on_meeting_created"],
        data=body,
        timeout=30,
        headers={"X-Hook-Signature": sign(body, "guess"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "signature_invalid"
    assert len(stack.google.events("primary")) == before


def test_parallel_deliveries_in_any_order_end_in_the_records_last_state(
    running: tuple[Stack, dict[str, str]],
) -> None:
    """Bpium sends hooks in parallel, with no queue: a record's created, updated and deleted
    deliveries overlap and arrive in any order. Deleted meetings end with no live event;
    changed ones with their last state."""
    stack, _ = running
    stack.bpium.delivery_jitter = 0.4
    limit, stack.bpium.rate_limit = stack.bpium.rate_limit, 10**6  # order, not Bpium's budget
    try:
        doomed, kept = [], []
        for i in range(4):
            path = f"/catalogs/{stack.meetings}/records"
            record = api(stack, "POST", path, json={"values": values(**{"2": f"Удалим {i}"})})
            api(stack, "PATCH", f"{path}/{record['id']}", json={"values": {"2": f"Правка {i}"}})
            api(stack, "DELETE", f"{path}/{record['id']}")
            doomed.append(record["id"])
            other = api(stack, "POST", path, json={"values": values(**{"2": f"Оставим {i}"})})
            for step in range(3):
                api(stack, "PATCH", f"{path}/{other['id']}", json={"values": {"2": f"Итог {step}"}})
            kept.append(other["id"])
        settle(stack)
    finally:
        stack.bpium.delivery_jitter = 0.0
        stack.bpium.rate_limit = limit
    by_record: dict[str, list[dict]] = {}
    for event in stack.google.events("primary"):
        private = event.get("extendedProperties", {}).get("private", {})
        by_record.setdefault(private.get("bpiumRecordId", ""), []).append(event)
    for record in doomed:
        assert all(e["status"] == "cancelled" for e in by_record.get(record, [])), record
    for record in kept:
        alive = [e for e in by_record[record] if e["status"] != "cancelled"]
        assert [e["summary"] for e in alive] == ["Итог 2"], record
    failed = [d for d in stack.bpium.deliveries if d["status"] != 200]
    assert failed == []
