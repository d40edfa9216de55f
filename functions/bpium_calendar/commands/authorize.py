"""`make authorize`: the one-time Google consent a person runs on a workstation.

Google's installed-app flow for the Calendar scope, with PKCE and a loopback redirect, as
google-auth-oauthlib runs it: the browser comes back to a one-shot server on 127.0.0.1. With
`--no-browser` (a machine with no browser) it prints the consent URL; open it anywhere,
approve, and paste back the address the browser was sent to (the page itself fails to load;
the address carries the code). The token is written to `google-oauth-token` in the
configured secrets backend, and a given client file to `google-oauth-client`.

    python -m bpium_calendar.commands.authorize --client-file client_secret.json [--no-browser]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
from oauthlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InsecureTransportError,
    MismatchingStateError,
    MissingCodeError,
    OAuth2Error,
)

from ..errors import AppError
from ..oauth import CALENDAR_SCOPE, OAuthClient, StoredToken
from ..secret_store import GOOGLE_OAUTH_CLIENT, GOOGLE_OAUTH_TOKEN, SecretStore
from ..services import secret_source
from ..settings import Settings

DEFAULT_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
NO_BROWSER_PORT = 8085
HTTP_TIMEOUT = 30.0
# access_type=offline: we need a refresh token; prompt=consent: ...every time, even if the
# account approved us before (Google sends one only on a consent screen).
CONSENT = {"access_type": "offline", "prompt": "consent"}
INSECURE_TRANSPORT = "OAUTHLIB_INSECURE_TRANSPORT"
DONE_PAGE = "Готово: можно закрыть вкладку. Done: you can close this tab."


class AuthorizeError(Exception):
    """Something the person running the command must know and act on."""


class _Flow(InstalledAppFlow):  # type: ignore[misc]  # google-auth-oauthlib has no types
    """`InstalledAppFlow` whose token request gives up in time.

    `run_local_server` calls `fetch_token` with no timeout: a stuck endpoint would hang.
    """

    def fetch_token(self, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().fetch_token(**kwargs)


def is_loopback(uri: str) -> bool:
    """The host of `uri` is this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(uri).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def transport_checks(auth_uri: str, token_uri: str) -> Iterator[None]:
    """oauthlib's https-only rule, lifted only while both endpoints are on this machine."""
    previous = os.environ.get(INSECURE_TRANSPORT)
    if is_loopback(auth_uri) and is_loopback(token_uri):
        # The local Google stand-in (sandbox/google_oauth.py) speaks plain http on 127.0.0.1,
        # which oauthlib refuses unless this is set. Never for Google's https endpoints: for
        # any endpoint off this machine the switch is cleared, even if the shell had set it.
        os.environ[INSECURE_TRANSPORT] = "1"
    else:
        os.environ.pop(INSECURE_TRANSPORT, None)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(INSECURE_TRANSPORT, None)
        else:
            os.environ[INSECURE_TRANSPORT] = previous


def as_callback(address: str) -> str:
    """The pasted address as oauthlib takes an authorization response.

    oauthlib checks it as if it were a web server's https callback; Google sends an
    installed app back to loopback http by design. `run_local_server` rewrites the scheme
    the same way; state and code are checked as before.
    """
    address = address.strip()
    if address.lower().startswith("http://"):
        return "https://" + address[len("http://") :]
    return address


def oauth_failure(exc: OAuth2Error) -> AuthorizeError:
    """The sentence for an error oauthlib raised on the redirect or the token answer."""
    if isinstance(exc, MismatchingStateError):
        return AuthorizeError("the address does not belong to this attempt (state differs)")
    if isinstance(exc, MissingCodeError):
        return AuthorizeError("the address carries no authorization code")
    if isinstance(exc, AccessDeniedError):
        return AuthorizeError("Google answered access_denied: consent was not given")
    if isinstance(exc, InsecureTransportError):
        return AuthorizeError(
            "the consent and token addresses must be https (http only on this machine)"
        )
    return AuthorizeError(f"Google answered {exc.error}: {exc.description}")


def stored_token(credentials: Any) -> StoredToken:
    """Our token JSON from the library's credentials; a refresh token is required."""
    if not credentials.refresh_token:
        raise AuthorizeError(
            "Google sent no refresh token: remove this app's access to the account "
            "(https://myaccount.google.com/permissions) and run the command again"
        )
    # google-auth keeps expiry as a naive UTC datetime.
    expiry = credentials.expiry.replace(tzinfo=UTC) if credentials.expiry else None
    scopes = credentials.granted_scopes or credentials.scopes or [CALENDAR_SCOPE]
    return StoredToken(credentials.refresh_token, credentials.token, expiry, tuple(scopes))


def _client_file(path: str) -> tuple[str, dict[str, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise AuthorizeError(f"cannot read the client file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise AuthorizeError(f"{path} is not an OAuth client file")
    return text, data


def _has_browser() -> bool:
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def consent(
    flow: Any,
    args: argparse.Namespace,
    ask: Callable[[str], str],
    say: Callable[[str], None],
) -> Any:
    """Runs the consent and the code exchange; the library's credentials."""
    if args.no_browser:
        flow.redirect_uri = f"http://127.0.0.1:{args.port or NO_BROWSER_PORT}/"
        url, _ = flow.authorization_url(**CONSENT)
        say(f"Open this address in any browser, sign in and allow access:\n\n{url}\n")
        say("The browser then fails to load a 127.0.0.1 page; that is expected.")
        answer = ask("Paste the full address from the browser's address bar: ")
        flow.fetch_token(authorization_response=as_callback(answer))
        return flow.credentials
    browser = _has_browser()
    if browser:
        say("Opening the browser for Google's consent.")
        prompt = "If it does not open, visit:\n\n{url}\n"
    else:
        say("No browser found here: open the address below on this machine, or run again")
        say("with --no-browser (make authorize NO_BROWSER=1).")
        prompt = "{url}\n"
    try:
        # The library prints `prompt` itself (to stdout, as `say` does by default).
        return flow.run_local_server(
            host="127.0.0.1",
            port=args.port,
            open_browser=browser,
            authorization_prompt_message=prompt,
            success_message=DONE_PAGE,
            timeout_seconds=args.timeout,
            **CONSENT,
        )
    except WSGITimeoutError as exc:
        raise AuthorizeError(f"no answer from the browser within {args.timeout:.0f} s") from exc


def run(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    ask: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
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
        token_uri = settings.google_token_uri  # the one refresh_tokens uses later
        config = {
            "installed": {
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "auth_uri": auth_uri,
                "token_uri": token_uri,
            }
        }
        with transport_checks(auth_uri, token_uri):
            flow = _Flow.from_client_config(
                config, scopes=[CALENDAR_SCOPE], autogenerate_code_verifier=True
            )
            try:
                token = stored_token(consent(flow, args, ask, say))
            except OAuth2Error as exc:
                raise oauth_failure(exc) from exc
            except Warning as exc:
                # oauthlib raises this when Google granted other scopes than we asked for
                # (the person unticked Calendar): a token without it is of no use to us, so
                # OAUTHLIB_RELAX_TOKEN_SCOPE, which would accept it silently, stays unset.
                granted = " ".join(getattr(exc, "new_scope", None) or []) or "none"
                raise AuthorizeError(
                    f"Google granted other scopes ({granted}) than {CALENDAR_SCOPE}: "
                    "allow access to Google Calendar on the consent screen"
                ) from exc
            except requests.RequestException as exc:
                raise AuthorizeError(f"Google's token endpoint is unreachable: {exc}") from exc
            except OSError as exc:  # the loopback server could not listen
                raise AuthorizeError(f"cannot listen on 127.0.0.1:{args.port}: {exc}") from exc
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
