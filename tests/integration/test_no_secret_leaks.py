"""No secret, token or credential header reaches any log line, at LOG_LEVEL=DEBUG.

Each test runs some of the suite's main scenarios on a fresh instance (no secret known to the
log masker yet) and watches everything that is written: our JSON lines on stdout, stderr,
every Python logger's records at DEBUG (google-auth, googleapiclient, Secret Manager's
client, urllib3, werkzeug...: message, traceback and structured `extra` fields), and the
answers themselves. A leak fails with the secret's name, where it was seen and the line.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bpium_calendar import log, services
from sandbox import bpium
from sandbox.common import Fault
from sandbox.stack import (
    API_KEY,
    CHANNEL_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    PROJECT,
    REFRESH_TOKEN,
    SCOPES,
    WEBHOOK_SECRET,
    Stack,
)
from tests.conftest import TwoWay, hook_body
from tests.integration.conftest import Functions

WRONG_PASSWORD = "wrong-bpium-password-0042"
CREDENTIAL_MARKERS = ("Authorization:", "Bearer ", "Basic ")
# Our own hint in the api_key_missing answer and its log line: advice, not a credential.
API_KEY_HINT = "send the API key as X-Api-Key or Authorization: Bearer"
START, END = "2026-12-01T07:00:00.000Z", "2026-12-01T08:00:00.000Z"
# Attributes every LogRecord has; anything else on a record came as `extra`.
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@dataclass
class Watch:
    """What the functions wrote while a test ran, and the secrets it must not contain."""

    stack: Stack
    capsys: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    answers: list[str] = field(default_factory=list)
    output: list[tuple[str, str]] = field(default_factory=list)  # stdout/stderr read so far

    def answer(self, response: Any) -> Any:
        self.answers.append(f"{response.status_code} {response.get_data(as_text=True)}")
        return response

    def secrets(self) -> dict[str, str]:
        values = {
            "webhook secret": WEBHOOK_SECRET,
            "Bpium password": bpium.DEMO_PASSWORD,
            "wrong Bpium password": WRONG_PASSWORD,
            "OAuth client secret": CLIENT_SECRET,
            "refresh token": REFRESH_TOKEN,
            "API key": API_KEY,
            "channel token": CHANNEL_TOKEN,
        }
        # Every access token the Google stand-in ever issued (tokens stay listed when they
        # expire), and the ones in each version of the stored token.
        issued = list(self.stack.google.oauth._access)
        for version in self.stack.secrets.versions(PROJECT, "google-oauth-token"):
            try:
                stored = self.stack.secrets.access(
                    PROJECT, "google-oauth-token", version["version"]
                )
                issued.append(json.loads(stored)["access_token"])
            except (KeyError, ValueError, TypeError, LookupError):
                continue  # a destroyed version
        values |= {f"access token {t[:10]}…": t for t in set(issued) if t}
        basic = f"{bpium.DEMO_LOGIN}:{bpium.DEMO_PASSWORD}"
        values["Bpium Basic credentials"] = _b64(basic)
        # Secret Manager carries payloads base64-encoded: those would be leaks too.
        values |= {f"{name} (base64)": _b64(v) for name, v in list(values.items())}
        return values

    def lines(self) -> list[tuple[str, str]]:
        out, err = self.capsys.readouterr()  # reading empties it: keep what was read
        self.output += [("stdout", line) for line in out.splitlines()]
        self.output += [("stderr", line) for line in err.splitlines()]
        seen = list(self.output)
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        for record in self.caplog.records:
            if record.name.startswith(log.LOGGER_NAME):
                continue  # ours, unformatted: what it writes is on stdout, checked above
            extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
            text = formatter.format(record)
            if extra:
                text += " " + json.dumps(extra, default=str, ensure_ascii=False)
            seen.append((f"logger {record.name}", text))
        seen += [("answer", text) for text in self.answers]
        return list(dict.fromkeys(seen))  # pytest may hear a record twice

    def assert_clean(self) -> None:
        secrets = self.secrets()
        leaks = []
        lines = self.lines()
        for where, line in lines:
            for how, text in _readings(line.replace(API_KEY_HINT, "")):
                found = {name: value for name, value in secrets.items() if value in text}
                found |= {repr(m): m for m in CREDENTIAL_MARKERS if m in text}
                for name, value in found.items():
                    start = max(0, text.find(value) - 80)
                    shown = text[start : start + 200]
                    leaks.append(f"{name} in {where}{how}: …{shown!r}… (line: {line[:160]!r})")
        assert lines, "nothing was captured: the watch is blind"
        assert not leaks, f"{len(leaks)} leak(s):\n" + "\n".join(leaks[:20])


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def _readings(line: str) -> list[tuple[str, str]]:
    """The line, and the text inside every base64 run in it (Secret Manager's payloads,
    Basic credentials) that decodes to UTF-8."""
    readings = [("", line)]
    for run in _BASE64_RUN.findall(line):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(run + "=" * (-len(run) % 4)).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
            readings.append((f" (base64 {run[:12]}…)", decoded))
            break
    return readings


@pytest.fixture
def watch(
    fns: Functions,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Watch]:
    """A fresh instance at LOG_LEVEL=DEBUG, the root logger at DEBUG, and every library's
    records routed to it (Google's SDKs keep theirs to themselves unless someone configures
    them, e.g. with GOOGLE_SDK_PYTHON_LOGGING_SCOPE), at whatever level the functions leave
    each logger."""
    ours = logging.getLogger(log.LOGGER_NAME)
    level = ours.level
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    # A fresh process: the masker knows no secret before the instance reads one.
    monkeypatch.setattr(log, "_secrets", set())
    services.reset()
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name != log.LOGGER_NAME:
            monkeypatch.setattr(logger, "propagate", True)
    capsys.readouterr()
    yield Watch(fns.stack, capsys, caplog)
    ours.setLevel(level)


def new_meeting(stack: Stack, **values: object) -> str:
    base = {"2": "Планёрка", "3": START, "4": END, "5": "Повестка"}
    base["6"] = [{"id": "1", "title": "Анна"}]
    base["7"] = [{"contact": "guest@partner.example", "comment": ""}]
    return stack.bpium.put_record(stack.meetings, {**base, **values}, fire=False)


def fault(path: str, status: int, count: int) -> Fault:
    return Fault(re.compile(path), None, status, count=count, delay=0.0)


# ---------------------------------------------------------------------------- scenarios


def test_webhooks_create_update_delete_and_a_bad_signature(fns: Functions, watch: Watch) -> None:
    stack = fns.stack
    record = new_meeting(stack)
    assert watch.answer(fns.created(record)).status_code == 200
    full = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.update_record(stack.meetings, record, {"2": "Новое"}, fire=False)
    changed = watch.answer(fns.updated(record, {"2": "Новое"}, full))
    assert changed.status_code == 200
    assert watch.answer(fns.deleted(record)).status_code == 200
    body = hook_body("record.created", record, full)
    for signature in ("bad", WEBHOOK_SECRET, _b64(WEBHOOK_SECRET)):
        assert watch.answer(fns.post("on_meeting_created", body, signature)).status_code == 401
    watch.assert_clean()


def test_push_channels_and_pushes_with_wrong_and_right_tokens(
    two_way_servers: TwoWay, fns: Functions, watch: Watch
) -> None:
    """The channel token goes to Google in events.watch and comes back on every push: it
    is never logged nor answered, and a wrong one that holds it is not echoed."""
    stack = fns.stack
    assert watch.answer(fns.clients["watch_calendars"].post("/")).status_code == 200
    assert watch.answer(fns.created(new_meeting(stack))).status_code == 200
    assert stack.google.wait_pushes_idle(10.0)
    assert stack.tasks.wait_idle(20.0)
    [channel] = stack.google.channels()
    for token in (CHANNEL_TOKEN + "-wrong", f"x{CHANNEL_TOKEN}", CHANNEL_TOKEN):
        headers = {
            "X-Goog-Channel-ID": channel["id"],
            "X-Goog-Channel-Token": token,
            "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": "7",
        }
        watch.answer(fns.clients["on_calendar_push"].post("/", headers=headers))
    assert stack.tasks.wait_idle(20.0)
    watch.assert_clean()


def test_scenario_calls_with_wrong_and_right_keys(fns: Functions, watch: Watch) -> None:
    for name in ("list_events", "create_calendar"):
        # Wrong keys that hold the right one: echoing what was sent would leak it.
        for key in (API_KEY + "-wrong", f"x{API_KEY}"):
            assert watch.answer(fns.scenario(name, {}, key=key)).status_code == 401
        headers = {"Authorization": f"Basic {_b64(API_KEY)}"}
        assert (
            watch.answer(fns.clients[name].post("/", json={}, headers=headers)).status_code == 401
        )
        assert watch.answer(fns.scenario(name, {}, key=None)).status_code == 401
    listed = fns.scenario("list_events", {"timeMin": "2026-12-01"}, header="Authorization")
    assert watch.answer(listed).status_code == 200
    created = fns.scenario("create_calendar", {"summary": "Переговорная", "shareWith": []})
    assert watch.answer(created).status_code == 200
    watch.assert_clean()


def test_expired_stored_token_is_refreshed_in_memory(fns: Functions, watch: Watch) -> None:
    stack = fns.stack
    stack.store_token(lifetime=-600)
    assert watch.answer(fns.created(new_meeting(stack))).status_code == 200
    assert watch.answer(fns.scenario("list_events", {})).status_code == 200
    lines = [line for where, line in watch.lines() if where == "stdout"]
    assert any("stored_token_expired" in line for line in lines)
    watch.assert_clean()


def test_refresh_tokens_renews_the_stored_token(fns: Functions, watch: Watch) -> None:
    stack = fns.stack
    stack.store_token(lifetime=60)
    refreshed = watch.answer(fns.clients["refresh_tokens"].post("/"))
    assert refreshed.get_json()["status"] == "refreshed"
    assert watch.answer(fns.clients["refresh_tokens"].post("/")).get_json()["status"] == "fresh"
    watch.assert_clean()


def test_revoked_refresh_token(fns: Functions, watch: Watch) -> None:
    stack = fns.stack
    fns.no_retries()
    stack.store_token(lifetime=-600)
    stack.google.revoke_refresh_token(REFRESH_TOKEN)
    try:
        refreshed = watch.answer(fns.clients["refresh_tokens"].post("/"))
        assert refreshed.status_code == 503
        assert refreshed.get_json()["error"]["code"] == "reauthorization_required"
        synced = watch.answer(fns.created(new_meeting(stack)))
        assert synced.status_code == 503
    finally:
        stack.google.add_refresh_token(REFRESH_TOKEN, CLIENT_ID, SCOPES)
    watch.assert_clean()


def test_bpium_refuses_a_wrong_password(fns: Functions, watch: Watch) -> None:
    fns.no_retries()
    stack = fns.stack
    stack.put_secret(
        "bpium-credentials", json.dumps({"login": bpium.DEMO_LOGIN, "password": WRONG_PASSWORD})
    )
    try:
        answer = watch.answer(fns.created(new_meeting(stack)))
    finally:
        stack.store_secrets()
    assert answer.status_code == 503  # the worker's: a fixed password lets the retry through
    assert answer.get_json()["error"]["code"] == "bpium_unauthorized"
    watch.assert_clean()


def test_google_and_bpium_unavailable(fns: Functions, watch: Watch) -> None:
    fns.no_retries()
    stack = fns.stack
    stack.google.recorder.add_fault(fault("/events", 503, count=50))
    google_down = watch.answer(fns.created(new_meeting(stack)))
    assert google_down.status_code == 503
    stack.google.recorder.clear_faults()
    stack.bpium.recorder.add_fault(fault("/records", 503, count=50))
    bpium_down = watch.answer(fns.created(new_meeting(stack, **{"6": [{"id": "2"}]})))
    assert bpium_down.status_code == 503
    stack.bpium.recorder.clear_faults()
    stack.bpium.recorder.add_fault(fault("/catalogs/7$", 500, count=50))
    services.reset()  # a cold instance: the catalog schema is read first
    cold = watch.answer(fns.created(new_meeting(stack)))
    assert cold.status_code == 503
    watch.assert_clean()
