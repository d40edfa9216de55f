"""Each entry point loads only what it uses: cold starts stay short (issue «Measured speed»)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sandbox.stack import Stack
from tests.conftest import MAIN, ROOT

PROBE = r"""
import json, sys
sys.path.insert(0, "functions")
import functions_framework
client = functions_framework.create_app(target=sys.argv[1], source=sys.argv[2]).test_client()
answer = client.post("/")
print(json.dumps({"status": answer.status_code, "modules": sorted(sys.modules)}))
"""


def loaded_after_first_request(stack: Stack, name: str) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, name, MAIN],
        cwd=ROOT,
        check=True,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
    )
    info = json.loads(result.stdout.strip().splitlines()[-1])
    return info["status"], set(info["modules"])


def test_refresh_tokens_loads_no_calendar_client(env: Stack) -> None:
    status, modules = loaded_after_first_request(env, "refresh_tokens")
    assert status == 200
    assert "googleapiclient" not in modules
    assert "bpium_calendar.gcalendar" not in modules
    assert "bpium_calendar.tokens" in modules


@pytest.mark.parametrize("name", ["on_meeting_created", "list_events"])
def test_request_functions_load_no_workstation_commands(env: Stack, name: str) -> None:
    _, modules = loaded_after_first_request(env, name)
    assert not {m for m in modules if m.startswith("bpium_calendar.commands")}
    for tool in ("reconcile", "tokens"):
        assert f"bpium_calendar.{tool}" not in modules
