"""Shared fixtures: the stand-in stack, the functions' environment, signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import bpium
from sandbox.stack import WEBHOOK_SECRET, Stack, start_stack

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
