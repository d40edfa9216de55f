"""The OAuth part of the Google stand-in: the installed-app code flow, driven like a browser."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials

from sandbox.common import ServerThread
from sandbox.google_calendar import GoogleStandIn

CLIENT_ID = "desktop-1.apps.googleusercontent.com"
CLIENT_SECRET = "desktop-secret"
CALENDAR = "https://www.googleapis.com/auth/calendar"
REDIRECT = "http://127.0.0.1:8765/"
STATE = "st/a+te=1 &x"  # characters a sloppy echo would mangle


@pytest.fixture
def google(shared: tuple[GoogleStandIn, ServerThread]) -> GoogleStandIn:
    stand_in = shared[0]
    stand_in.reset()
    stand_in.clock = time.time
    stand_in.access_token_lifetime = 3600
    stand_in.rotate_refresh_tokens = False
    stand_in.add_client(CLIENT_ID, CLIENT_SECRET)
    return stand_in


@pytest.fixture
def url(shared: tuple[GoogleStandIn, ServerThread], google: GoogleStandIn) -> str:
    return shared[1].url


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge, computed here independently of the stand-in."""
    verifier = secrets.token_urlsafe(64)[:64]
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(url: str, challenge: str | None = None, **params: Any) -> requests.Response:
    """The browser's GET of the authorization URL, redirects not followed."""
    query: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": CALENDAR,
        "state": STATE,
        "access_type": "offline",
        "prompt": "consent",
    }
    if challenge is not None:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    query.update(params)
    query = {name: value for name, value in query.items() if value is not None}
    return requests.get(f"{url}/o/oauth2/auth", params=query, allow_redirects=False, timeout=5)


def redirected(answer: requests.Response, redirect_uri: str = REDIRECT) -> dict[str, str]:
    """The query of the 302 back to the loopback redirect URI."""
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    expected = urlsplit(redirect_uri)
    assert location[:3] == expected[:3]  # scheme, host and port, path
    assert location.fragment == ""
    query = parse_qs(location.query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values())
    return {name: values[0] for name, values in query.items()}


def exchange(
    url: str, code: str, verifier: str | None, redirect_uri: str | None = REDIRECT, **form: Any
) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **form,
    }
    data = {name: value for name, value in data.items() if value is not None}
    return requests.post(f"{url}/token", data=data, timeout=5)


def new_code(url: str, **params: Any) -> tuple[str, str]:
    """A fresh PKCE-bound code and its verifier."""
    verifier, challenge = pkce()
    return redirected(authorize(url, challenge, **params))["code"], verifier


def refresh(url: str, refresh_token: str) -> requests.Response:
    return requests.post(
        f"{url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=5,
    )


def oauth_error(answer: requests.Response) -> tuple[int, str, str]:
    body = answer.json()
    return answer.status_code, body["error"], body["error_description"]


def list_events(url: str, access_token: str) -> int:
    return requests.get(
        f"{url}/calendar/v3/calendars/primary/events",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    ).status_code


# ---------------------------------------------------------------------------- success


def test_pkce_code_flow_gives_tokens_the_calendar_and_google_auth_accept(
    url: str, google: GoogleStandIn
) -> None:
    verifier, challenge = pkce()
    query = redirected(authorize(url, challenge, login_hint="owner@example.com"))
    assert query["state"] == STATE
    assert query["scope"] == CALENDAR
    assert query["code"]

    answer = exchange(url, query["code"], verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    tokens = answer.json()
    assert list(tokens) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"]
    assert (tokens["expires_in"], tokens["scope"], tokens["token_type"]) == (
        3600,
        CALENDAR,
        "Bearer",
    )
    assert google.access_token_valid(tokens["access_token"])
    assert google.refresh_token_valid(tokens["refresh_token"])
    assert list_events(url, tokens["access_token"]) == 200

    creds = Credentials(
        token=None,
        refresh_token=tokens["refresh_token"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_uri=f"{url}/token",
        scopes=[CALENDAR],
    )
    creds.refresh(Request())
    assert creds.valid
    assert creds.token != tokens["access_token"]
    assert google.access_token_valid(str(creds.token))
    assert list_events(url, str(creds.token)) == 200

    grants = requests.get(f"{url}/_sandbox/oauth/grants", timeout=5).json()["grants"]
    assert {"client_id": CLIENT_ID, "scopes": [CALENDAR]} in grants
    assert google.code_grants()[-1] == {"client_id": CLIENT_ID, "scopes": [CALENDAR]}


def test_plain_pkce_basic_auth_and_identity_scopes(url: str) -> None:
    verifier = "v" * 43
    scope = f"openid email {CALENDAR}"
    query = redirected(
        authorize(url, scope=scope, code_challenge=verifier, code_challenge_method="plain")
    )
    assert query["scope"] == scope
    answer = requests.post(
        f"{url}/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == scope


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:53682/",
        "http://localhost:8080/callback?from=cli",
        "http://[::1]:9004/",
        "http://127.0.0.1/",
    ],
)
def test_any_loopback_redirect_uri_is_accepted_and_its_query_kept(
    url: str, redirect_uri: str
) -> None:
    verifier, challenge = pkce()
    query = redirected(authorize(url, challenge, redirect_uri=redirect_uri), redirect_uri)
    assert query["state"] == STATE
    if "from=cli" in redirect_uri:
        assert query["from"] == "cli"
    assert exchange(url, query["code"], verifier, redirect_uri).status_code == 200


def test_refresh_token_only_for_offline_access_and_consent_or_first_grant(url: str) -> None:
    client = "desktop-2.apps.googleusercontent.com"

    def tokens(**params: Any) -> dict[str, Any]:
        verifier, challenge = pkce()
        query = redirected(authorize(url, challenge, client_id=client, **params))
        answer = exchange(url, query["code"], verifier, client_id=client)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    requests.post(
        f"{url}/_sandbox/oauth/clients",
        json={"client_id": client, "client_secret": CLIENT_SECRET},
        timeout=5,
    ).raise_for_status()
    assert "refresh_token" not in tokens(access_type=None, prompt=None)  # online
    assert "refresh_token" not in tokens(access_type="offline", prompt=None)  # not the first
    assert "refresh_token" in tokens(access_type="offline", prompt="consent")
    assert "refresh_token" in tokens(access_type="offline", prompt="select_account consent")
    assert "refresh_token" not in tokens(access_type="online", prompt="consent")


def test_first_grant_of_a_client_gets_a_refresh_token_without_prompt(url: str) -> None:
    client = "desktop-3.apps.googleusercontent.com"
    requests.post(
        f"{url}/_sandbox/oauth/clients",
        json={"client_id": client, "client_secret": CLIENT_SECRET},
        timeout=5,
    ).raise_for_status()
    first, verifier = new_code(url, client_id=client, prompt=None)
    assert "refresh_token" in exchange(url, first, verifier, client_id=client).json()
    second, verifier = new_code(url, client_id=client, prompt=None)
    assert "refresh_token" not in exchange(url, second, verifier, client_id=client).json()


# ---------------------------------------------------------------------------- code exchange errors


def test_wrong_or_missing_verifier_is_invalid_grant(url: str) -> None:
    verifier, challenge = pkce()
    code = redirected(authorize(url, challenge))["code"]

    assert oauth_error(exchange(url, code, pkce()[0])) == (
        400,
        "invalid_grant",
        "Invalid code verifier.",
    )
    assert oauth_error(exchange(url, code, None)) == (
        400,
        "invalid_grant",
        "Missing code verifier.",
    )
    # The challenge is not the verifier (S256 is not plain).
    assert oauth_error(exchange(url, code, challenge))[1] == "invalid_grant"
    assert exchange(url, code, verifier).status_code == 200


def test_verifier_without_a_challenge_is_refused(url: str) -> None:
    query = redirected(authorize(url))
    assert oauth_error(exchange(url, query["code"], pkce()[0])) == (
        400,
        "invalid_grant",
        "code_verifier or verifier is not needed.",
    )
    assert exchange(url, query["code"], None).status_code == 200


def test_code_is_single_use(url: str, google: GoogleStandIn) -> None:
    code, verifier = new_code(url)
    first = exchange(url, code, verifier)
    assert first.status_code == 200

    assert oauth_error(exchange(url, code, verifier)) == (400, "invalid_grant", "Bad Request")
    assert oauth_error(exchange(url, "4/0not-a-code", verifier)) == (
        400,
        "invalid_grant",
        "Malformed auth code.",
    )
    # The tokens of the first exchange still work.
    assert google.access_token_valid(first.json()["access_token"])


def test_code_expires_after_ten_minutes_by_the_clock(url: str, google: GoogleStandIn) -> None:
    now = 1_800_000_000.0
    google.clock = lambda: now
    late, late_verifier = new_code(url)
    in_time, in_time_verifier = new_code(url)

    now += 599
    assert exchange(url, in_time, in_time_verifier).status_code == 200
    now += 1
    assert oauth_error(exchange(url, late, late_verifier)) == (400, "invalid_grant", "Bad Request")


def test_redirect_uri_must_match_the_authorization_request(url: str) -> None:
    code, verifier = new_code(url)
    answer = exchange(url, code, verifier, redirect_uri="http://127.0.0.1:8766/")
    # Google answers redirect_uri_mismatch here, where RFC 6749 says invalid_grant.
    assert oauth_error(answer) == (400, "redirect_uri_mismatch", "Bad Request")
    answer = exchange(url, code, verifier, redirect_uri=None)
    assert oauth_error(answer)[:2] == (400, "invalid_request")
    assert exchange(url, code, verifier).status_code == 200


def test_code_of_another_client_and_wrong_secret(url: str, google: GoogleStandIn) -> None:
    google.add_client("other-client", "other-secret")
    code, verifier = new_code(url)
    answer = exchange(url, code, verifier, client_secret="wrong")
    assert oauth_error(answer) == (401, "invalid_client", "Unauthorized")
    answer = exchange(url, code, verifier, client_id="other-client", client_secret="other-secret")
    assert oauth_error(answer) == (400, "invalid_grant", "Bad Request")
    answer = exchange(url, "", verifier)
    assert oauth_error(answer) == (400, "invalid_request", "Missing required parameter: code")


# ---------------------------------------------------------------------------- authorization errors


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://example.com/callback",
        "http://127.0.0.1.example.com:8080/",
        "http://user@127.0.0.1:8080/",
        "https://127.0.0.1:8080/",
        "http://127.0.0.1:8080/#fragment",
        "http://10.0.0.1:8080/",
    ],
)
def test_non_loopback_redirect_uri_is_refused_without_redirecting(
    url: str, redirect_uri: str
) -> None:
    answer = authorize(url, pkce()[1], redirect_uri=redirect_uri)
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "Error 400: redirect_uri_mismatch" in answer.text

    as_json = requests.get(
        answer.url, headers={"Accept": "application/json"}, allow_redirects=False, timeout=5
    )
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "redirect_uri_mismatch"


def test_out_of_band_redirect_is_blocked(url: str) -> None:
    answer = authorize(url, redirect_uri="urn:ietf:wg:oauth:2.0:oob")
    assert answer.status_code == 400
    assert "Error 400: invalid_request" in answer.text
    assert "out-of-band" in answer.text


def test_unknown_client_is_401_invalid_client(url: str) -> None:
    answer = authorize(url, pkce()[1], client_id="nobody.apps.googleusercontent.com")
    assert answer.status_code == 401
    assert "Error 401: invalid_client" in answer.text
    assert "Location" not in answer.headers
    as_json = requests.get(
        answer.url, headers={"Accept": "application/json"}, allow_redirects=False, timeout=5
    )
    assert oauth_error(as_json) == (401, "invalid_client", "The OAuth client was not found.")


@pytest.mark.parametrize(
    ("params", "status", "error", "detail"),
    [
        ({"scope": f"{CALENDAR} https://www.googleapis.com/auth/drive"}, 400, "invalid_scope",
         "invalid=[https://www.googleapis.com/auth/drive]"),
        ({"scope": "calendar"}, 400, "invalid_scope", "invalid=[calendar]"),
        ({"scope": None}, 400, "invalid_request", "Missing required parameter: scope"),
        ({"response_type": "token"}, 400, "unsupported_response_type", "token"),
        ({"response_type": None}, 400, "invalid_request", "response_type"),
        ({"client_id": None}, 400, "invalid_request", "client_id"),
        ({"redirect_uri": None}, 400, "invalid_request", "redirect_uri"),
        ({"code_challenge_method": "S512"}, 400, "invalid_request", "code_challenge_method"),
        ({"code_challenge": "short"}, 400, "invalid_request", "code_challenge"),
        ({"access_type": "forever"}, 400, "invalid_request", "access_type"),
        ({"prompt": "none consent"}, 400, "invalid_request", "prompt"),
        ({"approval_prompt": "force"}, 400, "invalid_request", "approval_prompt and prompt"),
        ({"color": "blue"}, 400, "invalid_request", "not allowed for this message type: color"),
    ],
)  # fmt: skip
def test_malformed_authorization_requests_get_an_error_page(
    url: str, params: dict[str, Any], status: int, error: str, detail: str
) -> None:
    answer = authorize(url, pkce()[1], **params)
    assert answer.status_code == status
    assert "Location" not in answer.headers
    assert f"Error {status}: {error}" in answer.text
    as_json = requests.get(
        answer.url, headers={"Accept": "application/json"}, allow_redirects=False, timeout=5
    )
    assert as_json.json()["error"] == error
    assert detail in as_json.json()["error_description"]


def test_denied_consent_redirects_with_access_denied_and_the_state(
    url: str, google: GoogleStandIn
) -> None:
    google.set_consent("deny")
    assert redirected(authorize(url, pkce()[1])) == {"error": "access_denied", "state": STATE}

    google.set_consent("approve")
    assert "code" in redirected(authorize(url, pkce()[1]))

    admin = f"{url}/_sandbox/oauth/consent"
    assert requests.post(admin, json={"answer": "deny"}, timeout=5).ok
    assert google.consent == "deny"
    query = redirected(authorize(url, pkce()[1], state=None))
    assert query == {"error": "access_denied"}
    assert requests.post(admin, json={"answer": "maybe"}, timeout=5).status_code == 400
    with pytest.raises(ValueError, match="consent"):
        google.set_consent("maybe")
    google.reset()
    assert google.consent == "approve"


def test_prompt_none_before_any_grant_is_consent_required(url: str, google: GoogleStandIn) -> None:
    client = "desktop-4.apps.googleusercontent.com"
    google.add_client(client, CLIENT_SECRET)
    answer = authorize(url, client_id=client, prompt="none")
    assert redirected(answer) == {"error": "consent_required", "state": STATE}

    code, verifier = new_code(url, client_id=client)
    assert exchange(url, code, verifier, client_id=client).status_code == 200
    assert "code" in redirected(authorize(url, client_id=client, prompt="none"))


# ---------------------------------------------------------------------------- refresh and validity


def seeded(google: GoogleStandIn) -> str:
    token = "1//seeded-" + secrets.token_hex(8)
    google.add_refresh_token(token, CLIENT_ID, [CALENDAR])
    return token


def test_refresh_answers_no_refresh_token_unless_rotation_is_on(
    url: str, google: GoogleStandIn
) -> None:
    old = seeded(google)
    answer = refresh(url, old)
    assert answer.status_code == 200
    assert set(answer.json()) == {"access_token", "expires_in", "scope", "token_type"}

    google.rotate_refresh_tokens = True
    rotated = refresh(url, old).json()
    assert list(rotated) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"]
    new = rotated["refresh_token"]
    assert new != old
    assert google.refresh_token_valid(new)
    assert google.refresh_token_valid(old)  # Google does not invalidate it at once
    assert refresh(url, old).status_code == 200

    google.rotate_refresh_tokens = False
    creds = Credentials(
        token=None,
        refresh_token=new,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_uri=f"{url}/token",
    )
    creds.refresh(Request())
    assert creds.refresh_token == new
    assert list_events(url, str(creds.token)) == 200


def test_google_auth_keeps_a_rotated_refresh_token(url: str, google: GoogleStandIn) -> None:
    old = seeded(google)
    google.rotate_refresh_tokens = True
    creds = Credentials(
        token=None,
        refresh_token=old,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_uri=f"{url}/token",
    )
    creds.refresh(Request())
    assert creds.refresh_token != old
    assert google.refresh_token_valid(str(creds.refresh_token))


def test_refresh_token_valid(url: str, google: GoogleStandIn) -> None:
    token = seeded(google)
    assert google.refresh_token_valid(token)
    assert not google.refresh_token_valid("1//never-issued")
    google.revoke_refresh_token(token)
    assert not google.refresh_token_valid(token)
    with pytest.raises(RefreshError, match="invalid_grant"):
        Credentials(
            token=None,
            refresh_token=token,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            token_uri=f"{url}/token",
        ).refresh(Request())


def test_access_token_valid_follows_the_clock(url: str, google: GoogleStandIn) -> None:
    now = 1_800_000_000.0
    google.clock = lambda: now
    token, expiry = google.issue_access_token(CLIENT_ID, [CALENDAR], lifetime=60)
    assert expiry == now + 60
    assert google.access_token_valid(token)
    assert not google.access_token_valid("ya29.never-issued")
    now += 59
    assert google.access_token_valid(token)
    now += 1
    assert not google.access_token_valid(token)
    assert list_events(url, token) == 401

    fresh, _ = google.issue_access_token(CLIENT_ID, [CALENDAR])
    google.expire_access_tokens()
    assert not google.access_token_valid(fresh)
