"""Entry points through functions_framework.create_app, against the stand-ins over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from bpium_calendar import services
from sandbox.stack import API_KEY, ENTRY_POINTS, Stack
from tests.conftest import MAIN, hook_body, sign


class Functions:
    """Each entry point as a test client, plus helpers to deliver signed webhooks."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.clients: dict[str, FlaskClient] = {
            name: functions_framework.create_app(target=name, source=MAIN).test_client()
            for name in ENTRY_POINTS
        }

    def post(self, name: str, body: bytes, signature: str | None = None, **headers: str) -> Any:
        if signature is None:
            signature = sign(body)
        return self.clients[name].post(
            "/",
            data=body,
            headers={"X-Hook-Signature": signature, **headers},
            content_type="application/json",
        )

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
def fns(env: Stack) -> Functions:
    return Functions(env)
