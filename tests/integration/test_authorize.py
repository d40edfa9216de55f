"""The authorize command end to end against the Google stand-in's consent and token endpoints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from bpium_calendar.commands.authorize import code_from_redirect, run
from bpium_calendar.oauth import StoredToken
from sandbox.stack import CLIENT_ID, CLIENT_SECRET, PROJECT, Stack


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


def browser(url: str) -> None:
    """A person who approves: follows Google's redirect back to the loopback server."""
    assert requests.get(url, timeout=10).status_code == 200


def test_loopback_flow_writes_token_and_client_to_the_local_folder(
    env: Stack, tmp_path: Path
) -> None:
    said: list[str] = []
    folder = tmp_path / "secrets"
    code = run(
        ["--client-file", str(client_file(env, tmp_path))],
        environ=local_env(env, folder),
        open_browser=browser,
        say=said.append,
    )
    assert code == 0, said
    token = StoredToken.from_json(json.loads((folder / "google-oauth-token").read_text()))
    assert env.google.refresh_token_valid(token.refresh_token)
    assert env.google.access_token_valid(token.access_token)
    assert token.scopes == ("https://www.googleapis.com/auth/calendar",)
    assert (
        json.loads((folder / "google-oauth-client").read_text())["installed"]["client_id"]
        == CLIENT_ID
    )
    assert token.refresh_token not in "\n".join(said)


def test_no_browser_flow_takes_the_pasted_address_and_writes_secret_manager(
    env: Stack, tmp_path: Path
) -> None:
    said: list[str] = []

    def paste(prompt: str) -> str:
        url = re.search(r"(http://\S+/o/oauth2/auth\?\S+)", "\n".join(said)).group(1)
        redirect = requests.get(url, allow_redirects=False, timeout=10)
        assert redirect.status_code == 302
        return redirect.headers["Location"]  # what the person copies from the address bar

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


def test_client_already_in_the_backend_is_used_when_no_file_is_given(
    env: Stack, tmp_path: Path
) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "google-oauth-client").write_text(client_file(env, tmp_path).read_text())
    assert run([], environ=local_env(env, folder), open_browser=browser, say=lambda s: None) == 0
    assert (folder / "google-oauth-token").exists()


def test_denied_consent_stores_nothing_and_says_why(env: Stack, tmp_path: Path) -> None:
    said: list[str] = []
    folder = tmp_path / "secrets"
    env.google.consent = "deny"
    try:
        code = run(
            ["--client-file", str(client_file(env, tmp_path))],
            environ=local_env(env, folder),
            open_browser=browser,
            say=said.append,
        )
    finally:
        env.google.consent = "approve"
    assert code == 1
    assert "access_denied" in said[-1]
    assert not (folder / "google-oauth-token").exists()


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
        url = re.search(r"(http://\S+/o/oauth2/auth\?\S+)", "\n".join(said)).group(1)
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


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:1/?code=abc&state=other", "state differs"),
        ("http://127.0.0.1:1/?error=access_denied&state=s", "access_denied"),
        ("http://127.0.0.1:1/?state=s", "no authorization code"),
    ],
)
def test_pasted_addresses_are_checked(url: str, message: str) -> None:
    from bpium_calendar.commands.authorize import AuthorizeError

    with pytest.raises(AuthorizeError, match=message):
        code_from_redirect(url, "s")
