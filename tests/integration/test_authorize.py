"""The authorize command end to end against the Google stand-in's consent and token endpoints.

google-auth-oauthlib runs the flow and the code exchange for real; only the browser (and the
person at it) is played here: `webbrowser.get` hands the library a `Person`, who loads the
consent URL and follows the stand-in's redirect back to the loopback server.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import webbrowser
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from bpium_calendar.commands.authorize import INSECURE_TRANSPORT, run, transport_checks
from bpium_calendar.oauth import CALENDAR_SCOPE, StoredToken
from sandbox.common import Call
from sandbox.google_oauth import PKCE_RE, s256
from sandbox.stack import CLIENT_ID, CLIENT_SECRET, PROJECT, Stack

CONSENT_URL = re.compile(r"(http://\S+/o/oauth2/auth\?\S+)")


def consent_url(said: list[str]) -> str:
    """The consent URL the command printed."""
    found = CONSENT_URL.search("\n".join(said))
    assert found, said
    return found.group(1)


def client_file(stack: Stack, tmp_path: Path) -> Path:
    path = tmp_path / "client_secret.json"
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "auth_uri": f"{stack.google_url}/o/oauth2/auth",
                    "token_uri": f"{stack.google_url}/token",
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    return path


def local_env(stack: Stack, folder: Path) -> dict[str, str]:
    return {
        "SECRETS_BACKEND": "local",
        "SECRETS_DIR": str(folder),
        "GOOGLE_TOKEN_URI": f"{stack.google_url}/token",
    }


def with_params(url: str, drop: tuple[str, ...] = (), **params: str) -> str:
    """`url` with query parameters removed or replaced."""
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k not in drop}
    return urlunsplit(parts._replace(query=urlencode({**query, **params})))


class Person:
    """A browser and a person who approves: loads the consent URL, follows Google's redirect.

    Off the command's thread, as a real browser is. `edit` changes the consent URL first, as
    a tampered request or a person unticking a scope would.
    """

    def __init__(self) -> None:
        self.edit: Callable[[str], str] = lambda url: url
        self.present = True  # False: this machine has no browser
        self.follows = True  # False: the person never finishes the consent
        self.pages: list[requests.Response] = []
        self._threads: list[threading.Thread] = []

    def get(self, using: str | None = None) -> Person:  # webbrowser.get
        if not self.present:
            raise webbrowser.Error("could not locate runnable browser")
        return self

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        if not self.follows:
            return True
        thread = threading.Thread(target=self._visit, args=(url,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return True

    def _visit(self, url: str) -> None:
        self.pages.append(requests.get(self.edit(url), timeout=10))

    def done(self) -> list[requests.Response]:
        for thread in self._threads:
            thread.join(timeout=15)
        return self.pages


@pytest.fixture
def person(monkeypatch: pytest.MonkeyPatch) -> Iterator[Person]:
    someone = Person()
    monkeypatch.setattr(webbrowser, "get", someone.get)
    yield someone
    someone.done()


def loopback(env: Stack, tmp_path: Path, *extra: str) -> tuple[int, list[str], Path]:
    said: list[str] = []
    folder = tmp_path / "secrets"
    code = run(
        ["--client-file", str(client_file(env, tmp_path)), *extra],
        environ=local_env(env, folder),
        say=said.append,
    )
    return code, said, folder


def calls(env: Stack, method: str, path: str) -> list[Call]:
    return [c for c in env.google.recorder.snapshot() if (c.method, c.path) == (method, path)]


def test_loopback_flow_writes_token_and_client_to_the_local_folder(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    code, said, folder = loopback(env, tmp_path)
    assert code == 0, said
    (page,) = person.done()
    assert page.status_code == 200
    assert "Done: you can close this tab" in page.text
    raw = json.loads((folder / "google-oauth-token").read_text())
    assert set(raw) == {"refresh_token", "access_token", "expiry", "scopes"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", raw["expiry"])
    token = StoredToken.from_json(raw)
    assert env.google.refresh_token_valid(token.refresh_token)
    assert token.access_token
    assert env.google.access_token_valid(token.access_token)
    assert token.scopes == (CALENDAR_SCOPE,)
    lifetime = timedelta(seconds=env.google.access_token_lifetime)
    assert token.expiry is not None
    assert abs(token.expiry - (datetime.now(UTC) + lifetime)) < timedelta(minutes=1)
    assert (
        json.loads((folder / "google-oauth-client").read_text())["installed"]["client_id"]
        == CLIENT_ID
    )
    assert token.refresh_token not in "\n".join(said)
    assert INSECURE_TRANSPORT not in os.environ  # lifted for the stand-in only while it ran


def test_pkce_challenge_is_s256_and_the_stand_in_accepts_the_verifier(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    code, said, _ = loopback(env, tmp_path)
    assert code == 0, said
    (asked,) = calls(env, "GET", "/o/oauth2/auth")
    query = parse_qs(asked.query)
    assert query["code_challenge_method"] == ["S256"]
    assert PKCE_RE.match(query["code_challenge"][0])
    assert query["access_type"] == ["offline"]
    assert query["prompt"] == ["consent"]
    # The stand-in bound the code to that challenge and answers 200 only to a code_verifier
    # whose S256 equals it (a missing or other verifier is invalid_grant).
    (exchange,) = calls(env, "POST", "/token")
    assert exchange.status == 200


def test_code_bound_to_another_challenge_is_refused_for_the_verifier(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    person.edit = lambda url: with_params(url, code_challenge=s256("x" * 64))
    code, said, folder = loopback(env, tmp_path)
    assert code == 1
    assert "invalid_grant" in said[-1]
    assert "Invalid code verifier" in said[-1]
    assert not (folder / "google-oauth-token").exists()


def test_no_browser_flow_takes_the_pasted_address_and_writes_secret_manager(
    env: Stack, tmp_path: Path
) -> None:
    said: list[str] = []

    def paste(prompt: str) -> str:
        url = consent_url(said)
        assert parse_qs(urlsplit(url).query)["code_challenge_method"] == ["S256"]
        redirect = requests.get(url, allow_redirects=False, timeout=10)
        assert redirect.status_code == 302
        assert redirect.headers["Location"].startswith("http://127.0.0.1:8085/?")
        return redirect.headers["Location"] + "\n"  # what the person copies from the address bar

    before = len(env.secrets.versions(PROJECT, "google-oauth-token"))
    environ = {**env.env, "SECRETS_BACKEND": "secret-manager"}
    code = run(
        ["--client-file", str(client_file(env, tmp_path)), "--no-browser"],
        environ=environ,
        ask=paste,
        say=said.append,
    )
    assert code == 0, said
    assert len(env.secrets.versions(PROJECT, "google-oauth-token")) == before + 1
    token = StoredToken.from_json(json.loads(env.secrets.access(PROJECT, "google-oauth-token")))
    assert env.google.refresh_token_valid(token.refresh_token)
    assert calls(env, "POST", "/token")[0].status == 200


def test_client_already_in_the_backend_is_used_when_no_file_is_given(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "google-oauth-client").write_text(client_file(env, tmp_path).read_text())
    assert run([], environ=local_env(env, folder), say=lambda s: None) == 0
    assert (folder / "google-oauth-token").exists()


def test_denied_consent_stores_nothing_and_says_why(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    env.google.consent = "deny"
    try:
        code, said, folder = loopback(env, tmp_path)
    finally:
        env.google.consent = "approve"
    assert code == 1
    assert "access_denied" in said[-1]
    assert not (folder / "google-oauth-token").exists()
    assert not calls(env, "POST", "/token")


def test_redirect_with_another_state_is_refused_before_any_exchange(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    person.edit = lambda url: with_params(url, state="someone-elses")
    code, said, folder = loopback(env, tmp_path)
    assert code == 1
    assert "state differs" in said[-1]
    assert not (folder / "google-oauth-token").exists()
    assert not calls(env, "POST", "/token")


def test_answer_without_refresh_token_stores_nothing(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    person.edit = lambda url: with_params(url, drop=("access_type",))  # an online grant
    code, said, folder = loopback(env, tmp_path)
    assert code == 1
    assert "no refresh token" in said[-1]
    assert not (folder / "google-oauth-token").exists()


def test_grant_without_the_calendar_scope_is_refused(
    env: Stack, tmp_path: Path, person: Person
) -> None:
    readonly = "https://www.googleapis.com/auth/calendar.readonly"
    person.edit = lambda url: with_params(url, scope=readonly)  # the person granted less
    code, said, folder = loopback(env, tmp_path)
    assert code == 1
    assert readonly in said[-1]
    assert "allow access to Google Calendar" in said[-1]
    assert not (folder / "google-oauth-token").exists()


def test_no_answer_from_the_browser_times_out(env: Stack, tmp_path: Path, person: Person) -> None:
    person.follows = False
    code, said, _ = loopback(env, tmp_path, "--timeout", "1")
    assert code == 1
    assert "no answer from the browser within 1 s" in said[-1]


def test_without_a_browser_the_loopback_flow_prints_the_address_and_waits(
    env: Stack, tmp_path: Path, person: Person, capsys: pytest.CaptureFixture[str]
) -> None:
    person.present = False
    code, said, _ = loopback(env, tmp_path, "--timeout", "1")
    assert code == 1
    assert "--no-browser" in "\n".join(said)
    assert CONSENT_URL.search(capsys.readouterr().out)
    assert not person.done()


def test_busy_loopback_port_fails_clearly(env: Stack, tmp_path: Path, person: Person) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, said, _ = loopback(env, tmp_path, "--port", str(port))
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in said[-1]


def test_unreachable_token_endpoint_fails_clearly(env: Stack, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    said: list[str] = []

    def paste(prompt: str) -> str:
        url = consent_url(said)
        return requests.get(url, allow_redirects=False, timeout=10).headers["Location"]

    environ = {**local_env(env, tmp_path), "GOOGLE_TOKEN_URI": f"http://127.0.0.1:{port}/token"}
    argv = ["--client-file", str(client_file(env, tmp_path)), "--no-browser"]
    assert run(argv, environ=environ, ask=paste, say=said.append) == 1
    assert "token endpoint is unreachable" in said[-1]


def test_unknown_client_fails_clearly(env: Stack, tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": "stranger",
                    "client_secret": "x",
                    "auth_uri": f"{env.google_url}/o/oauth2/auth",
                }
            }
        )
    )
    said: list[str] = []

    def paste(prompt: str) -> str:
        url = consent_url(said)
        assert requests.get(url, allow_redirects=False, timeout=10).status_code in (400, 401)
        return "http://127.0.0.1:8085/?error=invalid_client"

    assert (
        run(
            ["--client-file", str(path), "--no-browser"],
            environ=local_env(env, tmp_path),
            ask=paste,
            say=said.append,
        )
        == 1
    )


def test_unreadable_client_file_fails_clearly(env: Stack, tmp_path: Path) -> None:
    said: list[str] = []
    assert (
        run(
            ["--client-file", str(tmp_path / "missing.json")],
            environ=local_env(env, tmp_path),
            say=said.append,
        )
        == 1
    )
    assert "cannot read the client file" in said[-1]


def test_http_consent_address_off_this_machine_is_refused(env: Stack, tmp_path: Path) -> None:
    path = client_file(env, tmp_path)
    data = json.loads(path.read_text())
    data["installed"]["auth_uri"] = "http://accounts.example.com/o/oauth2/auth"
    path.write_text(json.dumps(data))
    said: list[str] = []
    code = run(
        ["--client-file", str(path), "--no-browser"],
        environ=local_env(env, tmp_path),
        ask=lambda prompt: pytest.fail("asked for an address"),
        say=said.append,
    )
    assert code == 1
    assert "must be https" in said[-1]


def test_insecure_transport_is_allowed_for_loopback_endpoints_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(INSECURE_TRANSPORT, "from-the-shell")
    with transport_checks("http://127.0.0.1:1/o/oauth2/auth", "http://[::1]:1/token"):
        assert os.environ[INSECURE_TRANSPORT] == "1"
    with transport_checks(
        "https://accounts.google.com/o/oauth2/auth", "https://oauth2.googleapis.com/token"
    ):
        assert INSECURE_TRANSPORT not in os.environ
    with transport_checks(
        "http://127.0.0.1:1/o/oauth2/auth", "https://oauth2.googleapis.com/token"
    ):
        assert INSECURE_TRANSPORT not in os.environ
    assert os.environ[INSECURE_TRANSPORT] == "from-the-shell"


def paste_answer(edit: Callable[[str, str], str]) -> Callable[[Stack, Path], tuple[int, str]]:
    """Runs --no-browser with `edit(redirect_uri, state)` as the pasted address."""

    def go(env: Stack, tmp_path: Path) -> tuple[int, str]:
        said: list[str] = []

        def paste(prompt: str) -> str:
            url = consent_url(said)
            query = parse_qs(urlsplit(url).query)
            return edit(query["redirect_uri"][0], query["state"][0])

        argv = ["--client-file", str(client_file(env, tmp_path)), "--no-browser"]
        code = run(argv, environ=local_env(env, tmp_path), ask=paste, say=said.append)
        return code, said[-1]

    return go


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda uri, state: f"{uri}?code=abc&state=other", "state differs"),
        (lambda uri, state: f"{uri}?error=access_denied&state={state}", "access_denied"),
        (lambda uri, state: f"{uri}?state={state}", "no authorization code"),
        (lambda uri, state: f"{uri}?code=4/0forged&state={state}", "invalid_grant"),
    ],
    ids=["other-state", "denied", "no-code", "forged-code"],
)
def test_pasted_addresses_are_checked(
    env: Stack, tmp_path: Path, edit: Callable[[str, str], str], message: str
) -> None:
    code, last = paste_answer(edit)(env, tmp_path)
    assert code == 1
    assert message in last
    assert not (tmp_path / "google-oauth-token").exists()
