"""Shared fixtures: the stand-in stack, the functions' environment, signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import functions_framework
import pytest

from sandbox import bpium
from sandbox.common import ServerThread
from sandbox.stack import PRODUCTION_QUEUE, QUEUE, WEBHOOK_SECRET, Stack, start_stack

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "functions" / "main.py")
_sequence = itertools.count(1)


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.md5).digest()).decode()


def hook_body(
    event: str,
    record_id: str,
    values: dict[str, Any] | None = None,
    prev_values: dict[str, Any] | None = None,
    *,
    catalog_id: str = "7",
    sequence_id: int | None = None,
    timestamp: object = None,
) -> bytes:
    """A webhook body exactly as Bpium sends it: sent now (Unix seconds as a string, as its
    docs show), and a new message each time unless `sequence_id` says which."""
    payload: dict[str, Any] = {"catalogId": catalog_id, "recordId": record_id}
    if event != "record.deleted":
        payload["values"] = values or {}
        payload["prevValues"] = prev_values or {}
    return json.dumps(
        {
            "timestamp": str(int(time.time())) if timestamp is None else timestamp,
            "hook": {
                "id": "1",
                "event": event,
                "sequenceId": next(_sequence) if sequence_id is None else sequence_id,
            },
            "payload": payload,
            "user": {"id": "1"},
        },
        ensure_ascii=False,
    ).encode()


# The deployed queue's settings with a faster rate (tests are not about Bpium's budget)
# and its backoff scaled down a thousandfold: 10 s becomes 10 ms.
TEST_QUEUE = {**PRODUCTION_QUEUE, "max_dispatches_per_second": 500.0}
TIME_SCALE = 0.001


class Worker:
    """The worker `sync_meeting` served in this process (where tests set its environment),
    remembering every answer by task id."""

    def __init__(self) -> None:
        self.app = functions_framework.create_app(target="sync_meeting", source=MAIN)
        self._lock = threading.Lock()
        self.answers: dict[str, list[tuple[int, Any]]] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.server = ServerThread(self).start()
        self.url = self.server.url

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        task = environ.get("HTTP_X_CLOUDTASKS_TASKNAME", "")
        sent = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        seen: list[int] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen.append(int(status.split(maxsplit=1)[0]))
            return start_response(status, headers, exc_info)

        body = b"".join(self.app(environ, capture))
        try:
            answer = json.loads(body)
        except ValueError:
            answer = body.decode("utf-8", "replace")
        with self._lock:
            self.answers.setdefault(task, []).append((seen[0] if seen else 0, answer))
            self.headers[task] = sent
        return [body]

    def headers_of(self, task: str) -> dict[str, str]:
        """The headers of the task's last delivery (names as `X-Cloudtasks-Taskname`)."""
        with self._lock:
            return dict(self.headers.get(task, {}))

    def answers_to(self, task: str) -> list[tuple[int, Any]]:
        with self._lock:
            return list(self.answers.get(task, []))

    def forget(self) -> None:
        with self._lock:
            self.answers.clear()
            self.headers.clear()


@pytest.fixture(scope="session")
def worker_and_stack() -> Iterator[tuple[Worker, Stack]]:
    running = start_stack(queue=TEST_QUEUE, time_scale=TIME_SCALE)
    worker = Worker()
    running.deliver_to(worker.url)
    yield worker, running
    running.stop()
    worker.server.stop()


@pytest.fixture(scope="session")
def stack(worker_and_stack: tuple[Worker, Stack]) -> Stack:
    return worker_and_stack[1]


@pytest.fixture(scope="session")
def worker(worker_and_stack: tuple[Worker, Stack]) -> Worker:
    return worker_and_stack[0]


@pytest.fixture
def fresh_stack(stack: Stack) -> Stack:
    """The stack with no events, records, calls or faults; the demo data seeded again."""
    stack.google.reset()
    stack.bpium.reset()
    bpium.seed(stack.bpium)
    stack.secrets.recorder.reset_calls()
    stack.secrets.recorder.clear_faults()
    stack.store_secrets()
    stack.tasks.reset()
    stack.tasks.add_queue(QUEUE, **TEST_QUEUE)
    return stack
