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

from sandbox import bpium, firestore_emulator
from sandbox.common import ServerThread
from sandbox.stack import (
    FIRESTORE_DATABASE,
    PRODUCTION_QUEUE,
    PROJECT,
    QUEUE,
    WEBHOOK_SECRET,
    Stack,
    start_stack,
)

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
    user_id: str = "1",
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
            "user": {"id": user_id},
        },
        ensure_ascii=False,
    ).encode()


# The deployed queue's settings with a faster rate (tests are not about Bpium's budget)
# and its backoff scaled down a thousandfold: 10 s becomes 10 ms.
TEST_QUEUE = {**PRODUCTION_QUEUE, "max_dispatches_per_second": 500.0}
TIME_SCALE = 0.001


class Worker:
    """An entry point (the worker `sync_meeting` unless told) served over HTTP in this
    process (where tests set its environment), remembering every answer by task id (""
    for calls that are not tasks, such as Google's pushes)."""

    def __init__(self, target: str = "sync_meeting") -> None:
        self.app = functions_framework.create_app(target=target, source=MAIN)
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

    def all_answers(self) -> list[tuple[int, Any]]:
        with self._lock:
            return [answer for answers in self.answers.values() for answer in answers]

    def forget(self) -> None:
        with self._lock:
            self.answers.clear()
            self.headers.clear()


@pytest.fixture(scope="session")
def firestore() -> Iterator[firestore_emulator.FirestoreEmulator]:
    """Google's Firestore emulator, one for the session (it starts in a few seconds)."""
    with firestore_emulator.start() as emulator:
        yield emulator


class TwoWay:
    """The functions Google and the queue reach for the Google → Bpium direction, served
    over HTTP in this process: the push receiver and the worker `sync_calendar`."""

    def __init__(self) -> None:
        self.push = Worker("on_calendar_push")
        self.calendar_worker = Worker("sync_calendar")

    def forget(self) -> None:
        self.push.forget()
        self.calendar_worker.forget()

    def stop(self) -> None:
        self.push.server.stop()
        self.calendar_worker.server.stop()


@pytest.fixture(scope="session")
def worker_and_stack(
    firestore: firestore_emulator.FirestoreEmulator,
) -> Iterator[tuple[Worker, Stack]]:
    running = start_stack(queue=TEST_QUEUE, time_scale=TIME_SCALE, firestore_host=firestore.host)
    worker = Worker()
    running.deliver_to(worker.url)
    yield worker, running
    running.stop()
    worker.server.stop()


@pytest.fixture(scope="session")
def two_way_servers(worker_and_stack: tuple[Worker, Stack]) -> Iterator[TwoWay]:
    served = TwoWay()
    worker_and_stack[1].push_to(served.push.url, served.calendar_worker.url)
    yield served
    served.stop()


@pytest.fixture(scope="session")
def stack(worker_and_stack: tuple[Worker, Stack]) -> Stack:
    return worker_and_stack[1]


@pytest.fixture(scope="session")
def worker(worker_and_stack: tuple[Worker, Stack]) -> Worker:
    return worker_and_stack[0]


@pytest.fixture
def fresh_stack(stack: Stack, firestore: firestore_emulator.FirestoreEmulator) -> Stack:
    """The stack with no events, records, calls, faults or Firestore documents; the demo
    data seeded again."""
    stack.google.reset()
    stack.bpium.reset()
    bpium.seed(stack.bpium)
    stack.secrets.recorder.reset_calls()
    stack.secrets.recorder.clear_faults()
    stack.store_secrets()
    stack.tasks.reset()
    stack.tasks.add_queue(QUEUE, **TEST_QUEUE)
    firestore.reset(PROJECT, FIRESTORE_DATABASE)
    return stack
