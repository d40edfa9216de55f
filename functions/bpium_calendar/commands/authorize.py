"""`make authorize`: the one-time Google consent a person runs on a workstation.

Google's installed-app flow for the Calendar scope, with PKCE and a loopback redirect: the
browser comes back to a one-shot server on 127.0.0.1. With `--no-browser` (a machine with no
browser) it prints the consent URL; open it anywhere, approve, and paste back the address the
browser was sent to (the page itself fails to load; the address carries the code). The token
is written to `google-oauth-token` in the configured secrets backend, and a given client file
to `google-oauth-client`.

    python -m bpium_calendar.commands.authorize --client-file client_secret.json [--no-browser]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from ..errors import AppError
from ..oauth import CALENDAR_SCOPE, OAuthClient, StoredToken
from ..secret_store import GOOGLE_OAUTH_CLIENT, GOOGLE_OAUTH_TOKEN, SecretStore
from ..services import secret_source
from ..settings import Settings

DEFAULT_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
NO_BROWSER_PORT = 8085
HTTP_TIMEOUT = 30.0


class AuthorizeError(Exception):
    """Something the person running the command must know and act on."""


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def consent_url(
    auth_uri: str, client_id: str, redirect_uri: str, state: str, challenge: str
) -> str:
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": CALENDAR_SCOPE,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",  # we need a refresh token
        "prompt": "consent",  # ...every time, even if the account approved us before
    }
    return f"{auth_uri}?{urlencode(query)}"


def code_from_redirect(url: str, state: str) -> str:
    """The authorization code in the address Google sent the browser to."""
    query = parse_qs(urlsplit(url.strip()).query)
    if query.get("state", [""])[0] != state:
        raise AuthorizeError("the address does not belong to this attempt (state differs)")
    if "error" in query:
        raise AuthorizeError(f"Google answered {query['error'][0]}: consent was not given")
    code = query.get("code", [""])[0]
    if not code:
        raise AuthorizeError("the address carries no authorization code")
    return code


def exchange_code(
    token_uri: str,
    client: OAuthClient,
    code: str,
    redirect_uri: str,
    *,
    verifier: str,
    now: datetime,
) -> StoredToken:
    try:
        response = requests.post(
            token_uri,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise AuthorizeError(f"Google's token endpoint is unreachable: {exc}") from exc
    data: dict[str, Any] = response.json() if response.content else {}
    if response.status_code != 200:
        raise AuthorizeError(f"Google refused the code: {data.get('error', response.status_code)}")
    if not data.get("refresh_token"):
        raise AuthorizeError(
            "Google sent no refresh token: remove this app's access to the account "
            "(https://myaccount.google.com/permissions) and run the command again"
        )
    return StoredToken(
        refresh_token=data["refresh_token"],
        access_token=data.get("access_token"),
        expiry=now + timedelta(seconds=int(data.get("expires_in", 3600))),
        scopes=tuple(str(data.get("scope") or CALENDAR_SCOPE).split()),
    )


class _Redirects(BaseHTTPRequestHandler):
    received: list[str]
    done: threading.Event

    def do_GET(self) -> None:
        if "code=" not in self.path and "error=" not in self.path:
            self.send_error(404)
            return
        self.received.append(f"http://{self.headers.get('Host', '127.0.0.1')}{self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(
            "<p>Готово: можно закрыть вкладку. Done: you can close this tab.</p>".encode()
        )
        self.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the address holds the code: keep it off the terminal


class LoopbackReceiver:
    """A one-shot server on 127.0.0.1 that catches the browser coming back from Google."""

    def __init__(self, port: int = 0) -> None:
        handler: type[_Redirects] = type(
            "Handler", (_Redirects,), {"received": [], "done": threading.Event()}
        )
        self._handler = handler
        self._server = HTTPServer(("127.0.0.1", port), handler)
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> str:
        try:
            if not self._handler.done.wait(timeout):
                raise AuthorizeError(f"no answer from the browser within {timeout:.0f} s")
            return str(self._handler.received[0])
        finally:
            self._server.shutdown()
            self._server.server_close()


def _client_file(path: str) -> tuple[str, dict[str, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise AuthorizeError(f"cannot read the client file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise AuthorizeError(f"{path} is not an OAuth client file")
    return text, data


def run(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    open_browser: Callable[[str], Any] = webbrowser.open,
    ask: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    parser = argparse.ArgumentParser(prog="make authorize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--client-file", help="Google's downloaded OAuth client JSON (Desktop)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL; paste the answer")
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: any free)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for consent")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(environ, require_bpium=False)
        store = SecretStore(secret_source(settings))
        if args.client_file:
            text, data = _client_file(args.client_file)
            client = OAuthClient.from_json(data)
        else:
            data = store.get_json(GOOGLE_OAUTH_CLIENT)
            client, text = OAuthClient.from_json(data), ""
        inner = data.get("installed") or data.get("web") or data
        auth_uri = str(inner.get("auth_uri") or DEFAULT_AUTH_URI)
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        if args.no_browser:
            redirect_uri = f"http://127.0.0.1:{args.port or NO_BROWSER_PORT}/"
            url = consent_url(auth_uri, client.client_id, redirect_uri, state, challenge)
            say(f"Open this address in any browser, sign in and allow access:\n\n{url}\n")
            say("The browser then fails to load a 127.0.0.1 page; that is expected.")
            answer = ask("Paste the full address from the browser's address bar: ")
        else:
            receiver = LoopbackReceiver(args.port)
            redirect_uri = receiver.redirect_uri
            url = consent_url(auth_uri, client.client_id, redirect_uri, state, challenge)
            say(f"Opening the browser for Google's consent. If it does not open, visit:\n\n{url}\n")
            open_browser(url)
            answer = receiver.wait(args.timeout)
        code = code_from_redirect(answer, state)
        token = exchange_code(
            settings.google_token_uri, client, code, redirect_uri, verifier=verifier, now=clock()
        )
        if text:
            store.put(GOOGLE_OAUTH_CLIENT, text)
        version = store.put(GOOGLE_OAUTH_TOKEN, token.to_json())
    except (AuthorizeError, AppError) as exc:
        say(f"authorize failed: {exc}")
        return 1
    also = f" and {GOOGLE_OAUTH_CLIENT}" if text else ""
    say(
        f"Stored {GOOGLE_OAUTH_TOKEN} (version {version}){also} in the "
        f"{settings.secrets_backend} backend; refresh_tokens keeps it fresh from now on."
    )
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
