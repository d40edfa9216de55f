"""`refresh_tokens` against the Google and Secret Manager stand-ins, with an injected clock."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from bpium_calendar import services
from bpium_calendar.errors import UpstreamUnavailable
from bpium_calendar.oauth import ReauthorizationRequired, StoredToken
from bpium_calendar.services import Services
from bpium_calendar.settings import Settings
from bpium_calendar.tokens import TokenRefresher
from sandbox.common import Fault
from sandbox.stack import PROJECT, REFRESH_TOKEN, Stack
from tests.conftest import MAIN

TOKEN = "google-oauth-token"


def refresher(stack: Stack, now: datetime | None = None) -> TokenRefresher:
    """A refresher of a brand-new instance (its own caches), with the clock fixed at `now`."""
    built = Services(Settings.from_env(stack.env))
    return TokenRefresher(
        built.secrets,
        stack.env["GOOGLE_TOKEN_URI"],
        timedelta(minutes=40),
        clock=(lambda: now) if now else (lambda: datetime.now(UTC)),
    )


def stored(stack: Stack) -> StoredToken:
    return StoredToken.from_json(json.loads(stack.secrets.access(PROJECT, TOKEN)))


def states(stack: Stack) -> list[str]:
    return [v["state"] for v in stack.secrets.versions(PROJECT, TOKEN)]


def token_calls(stack: Stack) -> int:
    return stack.google.recorder.count("POST", "^/token$")


def test_fresh_token_is_left_alone_and_nothing_is_written(env: Stack) -> None:
    env.store_token(lifetime=3600)
    before = len(env.secrets.versions(PROJECT, TOKEN))
    env.google.recorder.reset_calls()
    assert refresher(env).run()["status"] == "fresh"
    assert token_calls(env) == 0
    assert len(env.secrets.versions(PROJECT, TOKEN)) == before


@pytest.mark.parametrize("lifetime", [1800, 60, -600])
def test_expiring_or_expired_token_is_replaced_by_a_new_version(env: Stack, lifetime: int) -> None:
    env.store_token(lifetime=lifetime)
    old = stored(env)
    answer = refresher(env).run()
    assert answer["status"] == "refreshed"
    new = stored(env)
    assert new.access_token != old.access_token
    assert env.google.access_token_valid(new.access_token)
    assert new.refresh_token == REFRESH_TOKEN
    assert new.expiry > datetime.now(UTC) + timedelta(minutes=50)
    assert answer["version"] == env.secrets.versions(PROJECT, TOKEN)[0]["version"]


def test_injected_clock_decides_what_is_expiring(env: Stack) -> None:
    env.store_token(lifetime=3600)
    expiry = stored(env).expiry
    assert refresher(env, now=expiry - timedelta(minutes=41)).run()["status"] == "fresh"
    assert refresher(env, now=expiry - timedelta(minutes=39)).run()["status"] == "refreshed"


def test_rotated_refresh_token_is_kept(env: Stack) -> None:
    env.store_token(lifetime=60)
    env.google.rotate_refresh_tokens = True
    try:
        answer = refresher(env).run()
    finally:
        env.google.rotate_refresh_tokens = False
    assert answer["refreshTokenRotated"] is True
    new = stored(env)
    assert new.refresh_token != REFRESH_TOKEN
    assert env.google.refresh_token_valid(new.refresh_token)


def test_after_100_scheduled_runs_two_versions_stay_enabled_and_the_rest_are_destroyed(
    env: Stack,
) -> None:
    env.google.access_token_lifetime = 600  # every run finds it expiring
    env.store_token(lifetime=60)
    try:
        instance = refresher(env)
        for _ in range(100):
            assert instance.run()["status"] == "refreshed"
            assert states(env).count("ENABLED") <= 2
    finally:
        env.google.access_token_lifetime = 3600
    all_states = states(env)
    assert all_states[:2] == ["ENABLED", "ENABLED"]
    assert set(all_states[2:]) == {"DESTROYED"}
    assert len(all_states) >= 102


def test_two_runs_at_once_leave_a_valid_token(env: Stack) -> None:
    env.store_token(lifetime=60)
    results: list[dict] = []
    runners = [refresher(env), refresher(env)]
    threads = [threading.Thread(target=lambda r=r: results.append(r.run())) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r["status"] for r in results] == ["refreshed", "refreshed"]
    latest = stored(env)
    assert env.google.access_token_valid(latest.access_token)
    assert env.google.refresh_token_valid(latest.refresh_token)
    assert states(env).count("ENABLED") <= 2


def test_revoked_token_answers_503_with_one_critical_event(
    env: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions_framework

    for name, value in env.env.items():
        monkeypatch.setenv(name, value)
    services.reset()
    env.store_token(lifetime=60)
    env.google.revoke_refresh_token(REFRESH_TOKEN)
    env.google.recorder.reset_calls()
    client = functions_framework.create_app(target="refresh_tokens", source=MAIN).test_client()
    try:
        answer = client.post("/")
    finally:
        env.google.add_refresh_token(
            REFRESH_TOKEN,
            "local-client.apps.googleusercontent.com",
            ["https://www.googleapis.com/auth/calendar"],
        )
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "reauthorization_required"
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    critical = [x for x in lines if x["severity"] == "CRITICAL"]
    assert [x["message"] for x in critical] == ["reauthorization_required"]
    assert "make authorize" in critical[0]["action"]
    assert token_calls(env) == 1  # not retried in a loop


def test_token_endpoint_down_answers_retryable_503(env: Stack) -> None:
    import re

    env.store_token(lifetime=60)
    env.google.recorder.add_fault(Fault(re.compile("^/token$"), "POST", 503, count=20, delay=0.0))
    with pytest.raises(UpstreamUnavailable) as caught:
        refresher(env).run()
    assert caught.value.status == 503
    assert caught.value.retryable is True
    assert not isinstance(caught.value, ReauthorizationRequired)


def test_secret_manager_down_answers_retryable_503(
    fns: object, env: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    import functions_framework

    env.secrets.recorder.add_fault(Fault(re.compile(":access$"), None, 503, count=50, delay=0.0))
    client = functions_framework.create_app(target="refresh_tokens", source=MAIN).test_client()
    answer = client.post("/")
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "upstream_unavailable"


def test_answer_and_logs_carry_no_token(env: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    env.store_token(lifetime=60)
    answer = json.dumps(refresher(env).run())
    out = capsys.readouterr().out
    new = stored(env)
    for secret in (new.access_token, new.refresh_token, "local-client-secret"):
        assert secret not in answer
        assert secret not in out


@pytest.mark.parametrize("lifetime_minutes", [0, 10, 25, 39, 41, 59])
def test_after_any_run_the_token_outlives_the_next_scheduled_run(
    env: Stack, lifetime_minutes: int
) -> None:
    """Whatever a run finds, it leaves a token that stays usable (beyond the webhooks' skew)
    until the next run, 30 minutes later: no webhook sees it expired."""
    from bpium_calendar.oauth import EXPIRY_SKEW

    schedule = timedelta(minutes=30)
    env.store_token(lifetime=lifetime_minutes * 60)
    refresher(env).run()
    left = stored(env).expiry - datetime.now(UTC)
    assert left >= timedelta(minutes=40) - timedelta(seconds=5)
    assert left - schedule > EXPIRY_SKEW
