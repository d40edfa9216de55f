"""Shared fixtures: the stand-in stack, the functions' environment, signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import bpium
from sandbox.stack import WEBHOOK_SECRET, Stack, start_stack

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "functions" / "main.py")


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.md5).digest()).decode()


def hook_body(
    event: str,
    record_id: str,
    values: dict[str, Any] | None = None,
    prev_values: dict[str, Any] | None = None,
    *,
    catalog_id: str = "7",
    sequence_id: int = 1,
) -> bytes:
    """A webhook body exactly as Bpium sends it."""
    payload: dict[str, Any] = {"catalogId": catalog_id, "recordId": record_id}
    if event != "record.deleted":
        payload["values"] = values or {}
        payload["prevValues"] = prev_values or {}
    return json.dumps(
        {
            "timestamp": "2026-11-30T10:00:00.000Z",
            "hook": {"id": "1", "event": event, "sequenceId": sequence_id},
            "payload": payload,
            "user": {"id": "1"},
        },
        ensure_ascii=False,
    ).encode()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    running = start_stack()
    yield running
    running.stop()


@pytest.fixture
def fresh_stack(stack: Stack) -> Stack:
    """The stack with no events, records, calls or faults; the demo data seeded again."""
    stack.google.reset()
    stack.bpium.reset()
    bpium.seed(stack.bpium)
    stack.secrets.recorder.reset_calls()
    stack.secrets.recorder.clear_faults()
    stack.store_secrets()
    return stack
