"""End to end: the worker's process dies in the middle of a task; Cloud Tasks (the stand-in)
delivers the task again to the restarted worker, and the meeting ends with one event."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import requests

from bpium_calendar.event_ids import event_id_for
from sandbox.common import Fault
from sandbox.processes import free_port, functions_served, start_function, stop, wait_listening
from sandbox.stack import start_stack
from tests.conftest import TEST_QUEUE, TIME_SCALE, hook_body, sign

pytestmark = pytest.mark.e2e


def test_a_worker_killed_mid_task_runs_it_again_and_leaves_one_event() -> None:
    stack = start_stack(queue=TEST_QUEUE, time_scale=TIME_SCALE)
    port = free_port()
    stack.deliver_to(f"http://127.0.0.1:{port}")
    env = {**os.environ, **stack.env, "THREADS": "4"}
    worker, _ = start_function("sync_meeting", env, port=port)
    try:
        wait_listening(f"http://127.0.0.1:{port}", worker)
        with functions_served(["on_meeting_created"], env) as urls:
            values = {
                "2": "Созвон",
                "3": "2026-12-03T09:00:00.000Z",
                "4": "2026-12-03T10:00:00.000Z",
                "6": [{"id": "1"}],
            }
            record = stack.bpium.put_record(stack.meetings, values, fire=False)
            # The write-back hangs: the worker has made the event and waits on Bpium.
            stack.bpium.recorder.add_fault(
                Fault(re.compile("/records/"), "PATCH", None, count=1, delay=3.0)
            )
            body = hook_body("record.created", record, values, catalog_id=stack.meetings)
            answer = requests.post(
                urls["on_meeting_created"],
                data=body,
                timeout=30,
                headers={"X-Hook-Signature": sign(body), "Content-Type": "application/json"},
            )
            assert answer.json()["status"] == "queued"
            event_id = event_id_for(stack.meetings, record)
            deadline = time.monotonic() + 20
            while stack.google.event("primary", event_id) is None:
                assert time.monotonic() < deadline, "the worker never made the event"
                time.sleep(0.02)
            # Mid-task: the event exists, the write-back is not done. gunicorn serves from a
            # child process: kill it and its parent, as a crashed instance dies.
            subprocess.run(["pkill", "-KILL", "-P", str(worker.pid)], check=False)
            worker.kill()
            worker.wait(10)
            worker, _ = start_function("sync_meeting", env, port=port)
            wait_listening(f"http://127.0.0.1:{port}", worker)
            assert stack.tasks.wait_idle(60)
        attempts = [a for a in stack.tasks.attempts if a["task"] == answer.json()["task"]]
        assert attempts[0]["status"] is None  # the connection died with the worker
        assert attempts[-1]["status"] == 200
        ours = [
            e
            for e in stack.google.events("primary")
            if e["extendedProperties"]["private"]["bpiumRecordId"] == record
        ]
        assert [e["id"] for e in ours] == [event_id]
        assert ours[0]["status"] == "confirmed"
        assert stack.bpium.record(stack.meetings, record)["values"]["8"] == event_id
    finally:
        stop(worker)
        stack.stop()
