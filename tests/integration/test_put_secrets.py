"""`make secrets` against the Secret Manager stand-in: hidden prompts, generated values."""

from __future__ import annotations

import json

from bpium_calendar.commands.put_secrets import run
from sandbox.stack import PROJECT, Stack


def prompts(*answers: str):
    queue = list(answers)
    return lambda prompt: queue.pop(0)


def test_credentials_typed_at_prompts_become_a_new_version(env: Stack) -> None:
    said: list[str] = []
    code = run(
        ["--only", "bpium-credentials"],
        environ=env.env,
        ask=prompts("bot@acme.ru"),
        ask_hidden=prompts("s3cret-passw0rd"),
        say=said.append,
    )
    assert code == 0
    assert json.loads(env.secrets.access(PROJECT, "bpium-credentials")) == {
        "login": "bot@acme.ru",
        "password": "s3cret-passw0rd",
    }
    assert "s3cret-passw0rd" not in "\n".join(said)


def test_empty_answer_generates_a_long_random_value_shown_once(env: Stack) -> None:
    said: list[str] = []
    code = run(
        ["--only", "api-key", "--only", "bpium-webhook-secret"],
        environ=env.env,
        ask_hidden=prompts("", ""),
        say=said.append,
    )
    assert code == 0
    key = env.secrets.access(PROJECT, "api-key").decode()
    hook = env.secrets.access(PROJECT, "bpium-webhook-secret").decode()
    assert len(key) >= 40
    assert key != hook
    assert sum(key in line for line in said) == 1
    assert any("Секретная строка" in line for line in said)


def test_short_values_are_refused(env: Stack) -> None:
    before = env.secrets.access(PROJECT, "api-key")
    said: list[str] = []
    assert (
        run(["--only", "api-key"], environ=env.env, ask_hidden=prompts("short"), say=said.append)
        == 0
    )
    assert "at least 16" in said[-1]
    assert env.secrets.access(PROJECT, "api-key") == before


def test_missing_secret_container_says_so(env: Stack) -> None:
    said: list[str] = []
    environ = {**env.env, "GCP_PROJECT": "project-without-containers"}
    assert (
        run(["--only", "api-key"], environ=environ, ask_hidden=prompts("x" * 20), say=said.append)
        == 1
    )
    assert "secrets failed" in said[-1]
