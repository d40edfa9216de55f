"""The queue between the webhooks and the worker: what Bpium hears, what Cloud Tasks gets,
what the worker answers, and nothing lost when Cloud Tasks, Google or Bpium fail."""

from __future__ import annotations

import base64
import json
import re
import threading
import time

import pytest

from bpium_calendar import retry, services
from bpium_calendar.event_ids import event_id_for
from bpium_calendar.settings import Settings
from sandbox.common import Fault
from sandbox.stack import TASKS_ACCOUNT
from tests.conftest import hook_body, sign
from tests.integration.conftest import Functions
from tests.integration.test_webhooks import meeting


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


def values_of(fns: Functions, record: str) -> dict:
    return dict(fns.stack.bpium.record(fns.stack.meetings, record)["values"])


def test_a_webhook_answers_queued_and_the_worker_makes_the_event(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    delivery = fns.created(record)
    sent = delivery.webhook.get_json()
    assert sent["status"] == "queued"
    assert re.fullmatch(r"hook-[0-9a-f]{40}", sent["task"])
    assert delivery.get_json()["status"] == "created"
    assert values_of(fns, record)["8"] == event_id_for(stack.meetings, record)
    # What Cloud Tasks sent the worker: an OIDC token of the tasks account for its URL.
    headers = fns.worker.headers_of(sent["task"])
    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == stack.env["SYNC_WORKER_URL"]
    assert claims["email"] == TASKS_ACCOUNT
    assert headers["X-Cloudtasks-Taskname"] == sent["task"]


def test_the_same_message_at_another_instance_is_a_duplicate_by_its_task_name(
    fns: Functions,
) -> None:
    stack = fns.stack
    record = meeting(stack)
    body = hook_body("record.created", record, values_of(fns, record), sequence_id=424242)
    first = fns.post("on_meeting_created", body)
    assert first.get_json()["status"] == "created"
    services.reset()  # another instance: it never saw the message, its task name has
    again = fns.post("on_meeting_created", body)
    assert again.get_json() == {"status": "ignored", "reason": "duplicate"}
    assert not again.queued
    assert len(fns.stack.google.events("primary")) == 1
    assert len(fns.worker.answers_to(first.webhook.get_json()["task"])) == 1


def test_our_write_back_echo_creates_no_task_and_makes_no_call(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    fns.created(record)
    full = values_of(fns, record)
    fns.reset_calls()
    before, creates = len(stack.tasks.attempts), stack.tasks.recorder.count("POST")
    echo = fns.updated(record, {"8": full["8"]}, {**full, "8": ""})
    assert echo.get_json() == {"status": "ignored", "reason": "own_write_back"}
    assert fns.calls() == {"google": 0, "bpium": 0, "secrets": 0}
    assert stack.tasks.recorder.count("POST") == creates
    assert len(stack.tasks.attempts) == before


def test_cloud_tasks_down_the_webhook_syncs_inline_and_says_so(
    fns: Functions, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bpium_calendar.tasks.ENQUEUE_SECONDS", 1.5)  # a few tries, sooner
    stack = fns.stack
    record = meeting(stack)
    stack.tasks.fault_creates(count=1000, status=503)
    answer = fns.created(record)
    assert not answer.queued
    assert answer.get_json()["status"] == "created"  # done inline, as before the queue
    assert values_of(fns, record)["8"] == event_id_for(stack.meetings, record)
    lines = log_lines(capsys)
    inline = [x for x in lines if x["message"] == "webhook_synced_inline"]
    assert len(inline) == 1
    assert inline[0]["severity"] == "WARNING"
    assert (inline[0]["record_id"], inline[0]["reason"]) == (record, "queue_unavailable")
    retries = [x for x in lines if x["message"] == "task_create_retry"]
    assert len(retries) >= 2  # it tried for a few seconds first


def test_a_queue_that_does_not_exist_falls_back_inline_at_once(
    fns: Functions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TASKS_QUEUE", "projects/local-project/locations/local/queues/missing")
    services.reset()
    record = meeting(fns.stack)
    answer = fns.created(record)
    assert answer.get_json()["status"] == "created"
    assert fns.stack.tasks.recorder.count("POST") == 1  # a refusal is not retried
    assert not [x for x in log_lines(capsys) if x["message"] == "task_create_retry"]


def test_google_down_for_a_while_loses_nothing_and_needs_no_reconcile(fns: Functions) -> None:
    stack = fns.stack
    records = [meeting(stack, **{"2": f"Встреча {i}"}) for i in range(4)]
    stack.google.recorder.add_fault(Fault(re.compile("/events"), None, 503, count=60, delay=0.0))
    answers = [fns.created(record) for record in records]
    assert {a.webhook.get_json()["status"] for a in answers} == {"queued"}
    assert {a.get_json()["status"] for a in answers} == {"created"}
    assert any(code == 503 for a in answers for code, _ in a.worker)  # it was retried
    for record in records:
        event_id = event_id_for(stack.meetings, record)
        assert stack.google.event("primary", event_id)["status"] == "confirmed"
        assert values_of(fns, record)["8"] == event_id


def test_bpium_down_for_a_while_loses_nothing(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    fns.created(record)  # warm: schema cached
    full = values_of(fns, record)
    stack.bpium.update_record(stack.meetings, record, {"2": "Перенесли"}, fire=False)
    stack.bpium.recorder.add_fault(Fault(re.compile("/records"), None, 503, count=40, delay=0.0))
    answer = fns.updated(record, {"2": "Перенесли"}, full)
    assert answer.webhook.get_json()["status"] == "queued"
    assert [code for code, _ in answer.worker][-1] == 200
    assert any(code == 503 for code, _ in answer.worker)
    event = stack.google.event("primary", event_id_for(stack.meetings, record))
    assert event["summary"] == "Перенесли"


def test_a_task_for_a_record_deleted_meanwhile_leaves_the_event_cancelled(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    values = values_of(fns, record)
    stack.tasks.pause()
    queued = fns.clients["on_meeting_created"].post(
        "/",
        data=(body := hook_body("record.created", record, values)),
        headers={"X-Hook-Signature": sign(body)},
        content_type="application/json",
    )
    assert queued.get_json()["status"] == "queued"
    stack.bpium.delete_record(stack.meetings, record, fire=False)
    stack.tasks.resume()
    fns.settle()
    answers = fns.worker.answers_to(queued.get_json()["task"])
    assert answers[-1] == (
        200,
        {"status": "ignored", "reason": "record_gone", "calendarId": "primary"},
    )
    assert stack.google.event("primary", event_id_for(stack.meetings, record))["status"] == (
        "cancelled"
    )


def test_two_instances_syncing_one_record_never_leave_the_older_state_last(
    fns: Functions,
) -> None:
    """Instance A reads the record, and its patch is slow; meanwhile the record changes and
    instance B syncs it. A's patch carries the etag it saw before reading: it fails (412),
    A reads again, and the newer state stays."""
    stack = fns.stack
    record = meeting(stack)
    event_id = fns.created(record).get_json()["eventId"]
    first = services.Services(Settings.from_env())
    second = services.Services(Settings.from_env())
    stack.bpium.update_record(stack.meetings, record, {"2": "Версия A"}, fire=False)
    stack.google.recorder.add_fault(
        Fault(re.compile(f"/events/{event_id}$"), "PATCH", None, count=1, delay=1.0)
    )
    results: list[object] = []
    slow = threading.Thread(
        target=lambda: results.append(first.meeting_sync.sync_latest(stack.meetings, record))
    )
    slow.start()
    time.sleep(0.4)  # A has read "Версия A" and waits on its patch
    stack.bpium.update_record(stack.meetings, record, {"2": "Версия B"}, fire=False)
    assert second.meeting_sync.sync_latest(stack.meetings, record).status == "updated"
    slow.join(10)
    assert stack.google.event("primary", event_id)["summary"] == "Версия B"
    patches = stack.google.recorder.count("PATCH", f"/events/{event_id}$")
    assert patches == 3  # B's, A's refused one, A's again after reading "Версия B"


def test_the_worker_refuses_a_malformed_task_without_asking_for_a_retry(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    client = fns.clients["sync_meeting"]
    for body in (b"{}", b"not json", json.dumps({"v": 1, "event": "record.moved"}).encode()):
        answer = client.post("/", data=body, content_type="application/json")
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["status"] == "refused"
    other = {"v": 1, "event": "record.deleted", "catalogId": "8", "recordId": "1"}
    answer = client.post("/", json={**other, "hookId": "1", "sequenceId": "1"})
    assert (answer.status_code, answer.get_json()["error"]["field"]) == (200, "catalogId")
    lines = log_lines(capsys)
    assert [x["error_code"] for x in lines if x["message"] == "sync_refused"] == ["bad_request"]
    refused = [x for x in lines if x["message"] == "task_refused"]
    assert len(refused) == 3
    assert {x["severity"] for x in refused} == {"ERROR"}
    assert fns.calls() == {"google": 0, "bpium": 0, "secrets": 0}


def test_a_failing_task_logs_at_error_once_it_has_been_retried_a_few_times(
    fns: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    fns.no_retries()
    fns.stack.google.recorder.add_fault(
        Fault(re.compile("/events"), None, 503, count=1000, delay=0.0)
    )
    body = json.dumps(
        {
            "v": 1,
            "event": "record.deleted",
            "catalogId": "7",
            "recordId": "1",
            "hookId": "1",
            "sequenceId": "9",
        }
    ).encode()
    client = fns.clients["sync_meeting"]
    early = client.post("/", data=body, headers={"X-CloudTasks-TaskRetryCount": "0"})
    late = client.post("/", data=body, headers={"X-CloudTasks-TaskRetryCount": "3"})
    assert (early.status_code, late.status_code) == (503, 503)
    lines = [x for x in log_lines(capsys) if x["message"] == "sync_retry_later"]
    assert [(x["severity"], x["retry_count"]) for x in lines] == [("WARNING", 0), ("ERROR", 3)]


@pytest.mark.parametrize(("timeout", "low", "high"), [("60", 45, 50.1), ("300", 260, 270.1)])
def test_the_worker_works_to_its_own_timeout(
    fns: Functions, monkeypatch: pytest.MonkeyPatch, timeout: str, low: float, high: float
) -> None:
    seen: list[float] = []

    def run(self: object, job: object) -> object:
        seen.append(retry.remaining())
        from bpium_calendar.jobs import SyncResult

        return SyncResult("ignored", reason="test")

    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", timeout)
    monkeypatch.setattr("bpium_calendar.sync.MeetingSync.run", run)
    services.reset()
    fns.deleted(meeting(fns.stack))
    assert len(seen) == 1
    assert low < seen[0] <= high


@pytest.mark.parametrize("down", ["google", "bpium"])
def test_an_outage_of_ten_minutes_during_a_burst_loses_nothing(fns: Functions, down: str) -> None:
    """Creates, changes and deletes while Google (or Bpium) answers 503 to everything for
    ten minutes (scaled like the queue's backoff): once it is back, every meeting is right,
    with no reconcile."""
    from tests.conftest import TIME_SCALE

    stack = fns.stack
    standin = stack.google if down == "google" else stack.bpium
    path = "/calendar/v3/" if down == "google" else "/api/v1/catalogs/7/records"
    kept = [meeting(stack, **{"2": f"Встреча {i}"}) for i in range(6)]
    changed, deleted = kept[:2], kept[4:]
    fns.created(kept[0])  # a warm instance: the catalog schema is read
    standin.recorder.add_fault(Fault(re.compile(path), None, 503, count=10**6, delay=0.0))
    threading.Timer(600 * TIME_SCALE, standin.recorder.clear_faults).start()

    def deliver(name: str, body: bytes) -> object:
        return fns.clients[name].post(
            "/",
            data=body,
            headers={"X-Hook-Signature": sign(body)},
            content_type="application/json",
        )

    deliveries = [
        deliver("on_meeting_created", hook_body("record.created", r, values_of(fns, r)))
        for r in kept[1:]
    ]
    for record in changed:
        before = values_of(fns, record)
        stack.bpium.update_record(stack.meetings, record, {"2": "Перенесли"}, fire=False)
        body = hook_body("record.updated", record, {"2": "Перенесли"}, before)
        deliveries.append(deliver("on_meeting_updated", body))
    for record in deleted:
        stack.bpium.delete_record(stack.meetings, record, fire=False)
        body = hook_body("record.deleted", record)
        deliveries.append(deliver("on_meeting_deleted", body))
    assert {d.status_code for d in deliveries} == {200}
    assert {d.get_json()["status"] for d in deliveries} == {"queued"}
    fns.settle()
    # It was down (the worker's own retries may outlast the outage, so a task need not fail).
    assert any(call.status == 503 for call in standin.recorder.snapshot())
    for record in kept:
        event = stack.google.event("primary", event_id_for(stack.meetings, record))
        if record in deleted:
            assert event is None or event["status"] == "cancelled", record
            continue
        assert event["status"] == "confirmed"
        assert values_of(fns, record)["8"] == event["id"]
        title = "Перенесли" if record in changed else values_of(fns, record)["2"]
        assert event["summary"] == title
