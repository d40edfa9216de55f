"""Entry points through functions_framework.create_app, against the stand-ins over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from bpium_calendar import services
from sandbox.stack import API_KEY, ENTRY_POINTS, QUEUE, WEBHOOKS, Stack
from tests.conftest import MAIN, TEST_QUEUE, Worker, hook_body, sign


class Delivery:
    """A webhook's answer and, when it queued a task, the worker's answers to that task.

    `status_code`, `get_json()` and `data` are those of the answer that settled the
    meeting: the worker's last one when the webhook queued a task, else the webhook's.
    """

    def __init__(self, webhook: Any, worker: list[tuple[int, Any]]) -> None:
        self.webhook = webhook
        self.worker = worker

    @property
    def queued(self) -> bool:
        return bool(self.worker)

    @property
    def status_code(self) -> int:
        return self.worker[-1][0] if self.worker else int(self.webhook.status_code)

    def get_json(self) -> Any:
        return self.worker[-1][1] if self.worker else self.webhook.get_json()

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def data(self) -> bytes:
        return json.dumps(self.get_json()).encode() if self.worker else bytes(self.webhook.data)

    def get_data(self, as_text: bool = False) -> Any:
        return self.data.decode() if as_text else self.data

    @property
    def mimetype(self) -> str:
        return "application/json" if self.worker else str(self.webhook.mimetype)

    @property
    def is_json(self) -> bool:
        return bool(self.worker) or bool(self.webhook.is_json)


class Functions:
    """Each entry point as a test client, plus helpers to deliver signed webhooks."""

    def __init__(self, stack: Stack, worker: Worker) -> None:
        self.stack = stack
        self.worker = worker
        worker.forget()
        self.clients: dict[str, FlaskClient] = {
            name: functions_framework.create_app(target=name, source=MAIN).test_client()
            for name in ENTRY_POINTS
        }

    def post(self, name: str, body: bytes, signature: str | None = None, **headers: str) -> Any:
        """Delivers to `name`; for a webhook that queued a task, waits for the queue to
        settle and returns a Delivery with the worker's answers too."""
        if signature is None:
            signature = sign(body)
        answer = self.clients[name].post(
            "/",
            data=body,
            headers={"X-Hook-Signature": signature, **headers},
            content_type="application/json",
        )
        if name not in WEBHOOKS:
            return answer
        sent = answer.get_json(silent=True) or {}
        if answer.status_code != 200 or sent.get("status") != "queued":
            return Delivery(answer, [])
        assert self.stack.tasks.wait_idle(30.0), "the queue did not settle"
        return Delivery(answer, self.worker.answers_to(sent["task"]))

    def no_retries(self) -> None:
        """Each task gets one attempt, as Bpium gives each webhook: for tests about what a
        failure answers (by default the queue retries it until it succeeds)."""
        self.stack.tasks.add_queue(
            QUEUE, **{**TEST_QUEUE, "max_attempts": 1, "max_retry_duration": 1e-6}
        )

    def settle(self) -> None:
        """Waits until the queue has nothing left to deliver."""
        assert self.stack.tasks.wait_idle(30.0), "the queue did not settle"

    def created(self, record_id: str, **kwargs: Any) -> Any:
        values = self.stack.bpium.record(self.stack.meetings, record_id)["values"]
        return self.post(
            "on_meeting_created", hook_body("record.created", record_id, values, **kwargs)
        )

    def updated(
        self, record_id: str, changed: dict[str, Any], prev: dict[str, Any], **kw: Any
    ) -> Any:
        return self.post(
            "on_meeting_updated", hook_body("record.updated", record_id, changed, prev, **kw)
        )

    def deleted(self, record_id: str, **kwargs: Any) -> Any:
        return self.post("on_meeting_deleted", hook_body("record.deleted", record_id, **kwargs))

    def scenario(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        method: str = "POST",
        key: str | None = API_KEY,
        header: str = "X-Api-Key",
    ) -> Any:
        """A Bpium scenario's «Веб-запрос»: JSON body (POST) or query string (GET)."""
        headers = {}
        if key is not None:
            headers[header] = key if header == "X-Api-Key" else f"Bearer {key}"
        client = self.clients[name]
        if method == "GET":
            return client.get("/", query_string=params or {}, headers=headers)
        return client.post("/", json=params or {}, headers=headers)

    def calls(self) -> dict[str, int]:
        return {
            "google": len(self.stack.google.recorder.snapshot()),
            "bpium": len(self.stack.bpium.recorder.snapshot()),
            "secrets": len(self.stack.secrets.recorder.snapshot()),
        }

    def reset_calls(self) -> None:
        for standin in (self.stack.google, self.stack.bpium, self.stack.secrets):
            standin.recorder.reset_calls()


@pytest.fixture
def env(fresh_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in fresh_stack.env.items():
        monkeypatch.setenv(name, value)
    # Backoff without waiting: randomness is one of the two things tests may fix.
    monkeypatch.setattr("bpium_calendar.retry.random.random", lambda: 0.0)
    services.reset()
    yield fresh_stack
    services.reset()


@pytest.fixture
def fns(env: Stack, worker: Worker) -> Functions:
    return Functions(env, worker)
