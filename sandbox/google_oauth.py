"""Stand-in for Google's OAuth 2.0 server, as a desktop ("installed app") client meets it.

- `GET  /o/oauth2/auth` (also `/o/oauth2/v2/auth`): the authorization endpoint. It checks
  the request as Google does (client, loopback `redirect_uri`, `response_type=code`, known
  scopes, PKCE, `access_type`, `prompt`, no unknown parameters), lets the stand-in's one
  account answer the consent screen (`consent`: "approve" or "deny") and redirects (302) to
  `redirect_uri?state=..&code=..&scope=..` or `redirect_uri?error=access_denied&state=..`.
  Errors found before the redirect URI is trusted are an error page (HTML, or JSON
  `{"error", "error_description"}` to a client that asks for JSON).
- `POST /token`: `grant_type=refresh_token` and `grant_type=authorization_code`, client
  authenticated by form fields or HTTP Basic. A code is single-use, expires after
  `CODE_LIFETIME` seconds by `clock`, is bound to its client, redirect URI and PKCE
  challenge. A refresh token comes back for `access_type=offline` when consent was
  prompted (`prompt=consent`) or on the client's first grant. With `rotate_refresh_tokens`
  a refresh also answers a new refresh token; the old one keeps working.
- Bearer checks for the APIs (`check_bearer`): issued here, unexpired by `clock`, with an
  accepted scope.
- Admin routes under `/_sandbox/oauth/` (see `OAuthServer.install`).

Not modelled: ID tokens for `openid` (no `id_token` in the answer), the userinfo endpoint,
token revocation over HTTP, the 7-day expiry of refresh tokens of apps in "Testing".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, request
from werkzeug.datastructures import MultiDict

from sandbox import common
from sandbox.google_schema import oauth_scopes
from sandbox.google_wire import (
    ApiError,
    admin_body,
    json_response,
    need,
    random_token,
    rfc3339_seconds,
)

AUTH_PATHS = ("/o/oauth2/auth", "/o/oauth2/v2/auth")
TOKEN_PATH = "/token"
CODE_LIFETIME = 600  # seconds an authorization code stays good
CONSENT_ANSWERS = ("approve", "deny")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Scopes Google knows besides the Calendar ones of the discovery document.
IDENTITY_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    }
)
AUTH_PARAMS = frozenset(
    {
        "client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
        "code_challenge_method", "access_type", "prompt", "approval_prompt", "login_hint",
        "include_granted_scopes", "enable_granular_consent", "hd", "nonce", "authuser",
    }
)  # fmt: skip
PROMPTS = frozenset({"none", "consent", "select_account"})
# RFC 7636: code_verifier and code_challenge are 43-128 unreserved characters.
PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_OOB_URIS = ("urn:ietf:wg:oauth:2.0:oob", "urn:ietf:wg:oauth:2.0:oob:auto", "oob")
_BAD_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_REALM = 'Bearer realm="https://accounts.google.com/"'


class OAuthError(Exception):
    """An OAuth error: `{"error", "error_description"}` (a page on the auth endpoint)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class OAuthSettings(Protocol):
    """What the owner of an `OAuthServer` decides; read on every request."""

    clock: Callable[[], float]
    access_token_lifetime: int
    consent: str
    rotate_refresh_tokens: bool


@dataclass
class _Grant:
    client_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class _AccessToken:
    client_id: str
    scopes: frozenset[str]
    expiry: float


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    challenge_method: str
    offline: bool
    consent_prompted: bool
    expiry: float
    used: bool = False


def is_loopback_uri(uri: str) -> bool:
    """`http://127.0.0.1[:port]/..`, `http://localhost[:port]/..` or `http://[::1][:port]/..`."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.hostname in LOOPBACK_HOSTS
        and parts.username is None
        and parts.password is None
        and not parts.fragment
    )


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of `verifier`: base64url(sha256), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _with_query(uri: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query)))


class OAuthServer:
    """Clients, grants (refresh tokens), access tokens and authorization codes; thread-safe."""

    def __init__(self, settings: OAuthSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._clients: dict[str, str] = {}
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, _AccessToken] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._code_grants: list[dict[str, Any]] = []
        self._consented: set[str] = set()  # clients granted through the code flow
        self.known_scopes = oauth_scopes() | IDENTITY_SCOPES

    # ------------------------------------------------------------------ Python API

    def add_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._clients[client_id] = client_secret

    def add_refresh_token(self, refresh_token: str, client_id: str, scopes: list[str]) -> None:
        with self._lock:
            self._grants[refresh_token] = _Grant(client_id, tuple(scopes))

    def revoke_refresh_token(self, refresh_token: str) -> None:
        with self._lock:
            grant = self._grants.get(refresh_token)
            if grant is not None:
                grant.revoked = True

    def issue_access_token(
        self, client_id: str, scopes: Iterable[str], lifetime: int | None = None
    ) -> tuple[str, float]:
        """A fresh access token and its expiry (epoch seconds by `clock`)."""
        with self._lock:
            token = random_token("ya29.")
            seconds = self.settings.access_token_lifetime if lifetime is None else lifetime
            expiry = self.settings.clock() + seconds
            self._access[token] = _AccessToken(client_id, frozenset(scopes), expiry)
            return token, expiry

    def expire_access_tokens(self) -> None:
        with self._lock:
            now = self.settings.clock()
            for token in self._access.values():
                token.expiry = min(token.expiry, now)

    def refresh_token_valid(self, token: str) -> bool:
        """Known here and not revoked."""
        with self._lock:
            grant = self._grants.get(token)
            return grant is not None and not grant.revoked

    def access_token_valid(self, token: str) -> bool:
        """Issued here and not expired by `clock`."""
        with self._lock:
            access = self._access.get(token)
            return access is not None and self.settings.clock() < access.expiry

    def code_grants(self) -> list[dict[str, Any]]:
        """`{"client_id", "scopes"}` of every code exchanged for tokens, oldest first."""
        with self._lock:
            return [dict(g, scopes=list(g["scopes"])) for g in self._code_grants]

    def check_bearer(self, header: str, accepted_scopes: Iterable[str]) -> None:
        """The `Authorization` header holds a live token with one of `accepted_scopes`.

        Raises the 401 (`required`, `authError`) or 403 (`insufficientPermissions`) the
        Google APIs answer.
        """
        scheme, _, token = header.partition(" ")
        if not header:
            raise ApiError(
                401, "required", _MISSING_CREDENTIALS, detail="Login Required.",
                location="Authorization", location_type="header",
                headers={"WWW-Authenticate": _REALM},
            )  # fmt: skip
        with self._lock:
            access = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
            valid = access is not None and self.settings.clock() < access.expiry
        if access is None or not valid:
            raise ApiError(
                401, "authError", _BAD_CREDENTIALS, detail="Invalid Credentials",
                location="Authorization", location_type="header",
                headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )  # fmt: skip
        if not access.scopes & set(accepted_scopes):
            raise ApiError(
                403, "insufficientPermissions", "Request had insufficient authentication scopes.",
                detail="Insufficient Permission",
                headers={"WWW-Authenticate": f'{_REALM}, error="insufficient_scope"'},
            )  # fmt: skip

    # ------------------------------------------------------------------ routes

    def install(self, app: Flask) -> None:
        """The authorization and token endpoints, and the OAuth admin routes:

        - `POST /_sandbox/oauth/clients`        {"client_id", "client_secret"}
        - `POST /_sandbox/oauth/refresh-tokens` {"refresh_token", "client_id", "scopes"}
        - `POST /_sandbox/oauth/revoke`         {"refresh_token"}
        - `POST /_sandbox/oauth/access-tokens`  {"client_id", "scopes", "lifetime"?}
                                                -> {"access_token", "expiry"}
        - `POST /_sandbox/oauth/expire`         every access token expires now
        - `POST /_sandbox/oauth/consent`        {"answer": "approve"|"deny"}
        - `GET  /_sandbox/oauth/grants`         -> {"grants": [{"client_id", "scopes"}]}
        """
        app.register_error_handler(ApiError, lambda exc: exc.response())
        for number, path in enumerate(AUTH_PATHS):
            app.add_url_rule(path, f"oauth_auth_{number}", self._auth_endpoint, methods=["GET"])
        app.add_url_rule(TOKEN_PATH, "token", self._token_endpoint, methods=["POST"])
        prefix = common.ADMIN_PREFIX + "oauth/"

        def done() -> Response:
            return json_response({})

        @app.post(prefix + "clients")
        def _clients() -> Response:
            self.add_client(*need(admin_body(), "client_id", "client_secret"))
            return done()

        @app.post(prefix + "refresh-tokens")
        def _refresh_tokens() -> Response:
            token, client_id, scopes = need(admin_body(), "refresh_token", "client_id", "scopes")
            self.add_refresh_token(token, client_id, list(scopes))
            return done()

        @app.post(prefix + "revoke")
        def _revoke() -> Response:
            self.revoke_refresh_token(*need(admin_body(), "refresh_token"))
            return done()

        @app.post(prefix + "access-tokens")
        def _access_tokens() -> Response:
            data = admin_body()
            client_id, scopes = need(data, "client_id", "scopes")
            token, expiry = self.issue_access_token(client_id, list(scopes), data.get("lifetime"))
            return json_response({"access_token": token, "expiry": rfc3339_seconds(expiry)})

        @app.post(prefix + "expire")
        def _expire() -> Response:
            self.expire_access_tokens()
            return done()

        @app.post(prefix + "consent")
        def _consent() -> Response:
            (answer,) = need(admin_body(), "answer")
            if answer not in CONSENT_ANSWERS:
                raise ApiError(400, "invalid", f"answer must be one of {CONSENT_ANSWERS}.")
            self.settings.consent = answer
            return done()

        @app.get(prefix + "grants")
        def _grants() -> Response:
            return json_response({"grants": self.code_grants()})

    # ------------------------------------------------------------------ authorization

    def _auth_endpoint(self) -> Response:
        try:
            location = self._authorize_request(request.args)
        except OAuthError as exc:
            return self._error_page(exc)
        return Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})

    @staticmethod
    def _error_page(exc: OAuthError) -> Response:
        """Google's "Error 400: redirect_uri_mismatch" page; JSON to a client asking for it."""
        wanted = request.accept_mimetypes.best_match(["text/html", "application/json"])
        if wanted == "application/json":
            body = {"error": exc.error, "error_description": exc.description}
            return json_response(body, exc.status)
        title = html.escape(f"Error {exc.status}: {exc.error}")
        page = (
            f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
            f"<h1>Access blocked: authorization error</h1><h2>{title}</h2>"
            f"<p>{html.escape(exc.description)}</p></body></html>"
        )
        return Response(page, status=exc.status, content_type="text/html; charset=utf-8")

    def _authorize_request(self, args: MultiDict[str, str]) -> str:
        """Checks an authorization request; the URL the browser is sent back to."""

        def invalid(description: str) -> OAuthError:
            return OAuthError(400, "invalid_request", description)

        client_id = args.get("client_id")
        if not client_id:
            raise invalid("Missing required parameter: client_id")
        with self._lock:
            known_client = client_id in self._clients
        if not known_client:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = args.get("redirect_uri")
        if not redirect_uri:
            raise invalid("Missing required parameter: redirect_uri")
        if redirect_uri in _OOB_URIS:
            raise invalid(
                "The out-of-band (OOB) flow has been blocked in order to keep users secure."
            )
        if not is_loopback_uri(redirect_uri):
            raise OAuthError(
                400, "redirect_uri_mismatch",
                "You can't sign in to this app because it doesn't comply with Google's OAuth "
                "2.0 policy: a desktop client may only redirect to a loopback address. "
                f"Request details: redirect_uri={redirect_uri}",
            )  # fmt: skip
        # From here on the redirect URI is trusted, but Google still shows a page for a
        # malformed request rather than redirecting.
        for name in args:
            if name not in AUTH_PARAMS:
                raise invalid(f"Parameter not allowed for this message type: {name}")
            if len(args.getlist(name)) > 1:
                raise invalid(f"Parameter {name} is repeated.")
        response_type = args.get("response_type")
        if not response_type:
            raise invalid("Required parameter is missing: response_type")
        if response_type != "code":
            raise OAuthError(
                400, "unsupported_response_type", f"Invalid response_type: {response_type}"
            )
        scopes = list(dict.fromkeys(args.get("scope", "").split()))
        if not scopes:
            raise invalid("Missing required parameter: scope")
        unknown = [s for s in scopes if s not in self.known_scopes]
        if unknown:
            valid = [s for s in scopes if s in self.known_scopes]
            raise OAuthError(
                400, "invalid_scope",
                f"Some requested scopes were invalid. {{valid=[{', '.join(valid)}], "
                f"invalid=[{', '.join(unknown)}]}}",
            )  # fmt: skip
        challenge = args.get("code_challenge")
        method = args.get("code_challenge_method")
        if method is not None and challenge is None:
            raise invalid("Missing required parameter: code_challenge")
        method = method or "plain"
        if method not in ("S256", "plain"):
            raise invalid(f"Invalid code_challenge_method: {method}")
        if challenge is not None and not PKCE_RE.match(challenge):
            raise invalid("Invalid code_challenge.")
        access_type = args.get("access_type", "online")
        if access_type not in ("online", "offline"):
            raise invalid(f"Invalid access_type: {access_type}")
        prompt = args.get("prompt")
        approval_prompt = args.get("approval_prompt")
        if prompt is not None and approval_prompt is not None:
            raise invalid("Conflict params: approval_prompt and prompt")
        if approval_prompt not in (None, "auto", "force"):
            raise invalid(f"Invalid approval_prompt: {approval_prompt}")
        prompts = set((prompt or "").split())
        if not prompts <= PROMPTS or ("none" in prompts and len(prompts) > 1):
            raise invalid(f"Invalid prompt: {prompt}")
        consent_prompted = "consent" in prompts or approval_prompt == "force"
        state = args.get("state")
        echoed = [("state", state)] if state is not None else []

        answer = self.settings.consent
        if answer not in CONSENT_ANSWERS:
            raise RuntimeError(f"consent must be one of {CONSENT_ANSWERS}, not {answer!r}")
        with self._lock:
            first_time = client_id not in self._consented
        if "none" in prompts and first_time:
            return _with_query(redirect_uri, [("error", "consent_required"), *echoed])
        if answer == "deny":
            return _with_query(redirect_uri, [("error", "access_denied"), *echoed])
        code = "4/0" + secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = _AuthCode(
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=tuple(scopes),
                challenge=challenge,
                challenge_method=method,
                offline=access_type == "offline",
                consent_prompted=consent_prompted or first_time,
                expiry=self.settings.clock() + CODE_LIFETIME,
            )
        granted = [("code", code), ("scope", " ".join(scopes)), ("authuser", "0")]
        if consent_prompted or first_time:
            granted.append(("prompt", "consent"))
        return _with_query(redirect_uri, [*echoed, *granted])

    # ------------------------------------------------------------------ token endpoint

    def _token_endpoint(self) -> Response:
        try:
            body = self._grant()
        except OAuthError as exc:
            return json_response(
                {"error": exc.error, "error_description": exc.description},
                exc.status,
                {"Cache-Control": "no-store"},
            )
        return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _grant(self) -> dict[str, Any]:
        form = request.form
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant_type not in ("refresh_token", "authorization_code"):
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id = request.authorization.username
            client_secret = request.authorization.password
        if not client_id:
            raise OAuthError(400, "invalid_request", "Could not determine client ID from request.")
        with self._lock:
            if self._clients.get(client_id) != client_secret or client_secret is None:
                raise OAuthError(401, "invalid_client", "Unauthorized")
            if grant_type == "refresh_token":
                return self._refresh(client_id, form)
            return self._exchange_code(client_id, form)

    def _refresh(self, client_id: str, form: MultiDict[str, str]) -> dict[str, Any]:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token")
        grant = self._grants.get(refresh_token)
        if grant is None or grant.revoked or grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = list(grant.scopes)
        requested = form.get("scope")
        if requested:
            wanted = requested.split()
            if not set(wanted) <= set(grant.scopes):
                raise OAuthError(400, "invalid_scope", "Bad Request")
            scopes = wanted
        token, _ = self.issue_access_token(client_id, scopes)
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.settings.access_token_lifetime,
        }
        if self.settings.rotate_refresh_tokens:
            body["refresh_token"] = self._new_refresh_token(client_id, grant.scopes)
        body.update(scope=" ".join(scopes), token_type="Bearer")
        return body

    def _exchange_code(self, client_id: str, form: MultiDict[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise OAuthError(400, "invalid_request", "Missing required parameter: code")
        redirect_uri = form.get("redirect_uri")
        if not redirect_uri:
            raise OAuthError(400, "invalid_request", "Missing parameter: redirect_uri")
        entry = self._codes.get(code)
        if entry is None:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if entry.used or entry.client_id != client_id or self.settings.clock() >= entry.expiry:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        if redirect_uri != entry.redirect_uri:
            # What Google answers here (RFC 6749 would say invalid_grant).
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier")
        if entry.challenge is None:
            if verifier:
                raise OAuthError(400, "invalid_grant", "code_verifier or verifier is not needed.")
        elif not verifier:
            raise OAuthError(400, "invalid_grant", "Missing code verifier.")
        else:
            expected = s256(verifier) if entry.challenge_method == "S256" else verifier
            if not PKCE_RE.match(verifier) or not hmac.compare_digest(expected, entry.challenge):
                raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        entry.used = True
        token, _ = self.issue_access_token(client_id, entry.scopes)
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.settings.access_token_lifetime,
        }
        if entry.offline and (entry.consent_prompted or client_id not in self._consented):
            body["refresh_token"] = self._new_refresh_token(client_id, entry.scopes)
        body.update(scope=" ".join(entry.scopes), token_type="Bearer")
        self._consented.add(client_id)
        self._code_grants.append({"client_id": client_id, "scopes": list(entry.scopes)})
        return body

    def _new_refresh_token(self, client_id: str, scopes: Iterable[str]) -> str:
        token = "1//" + secrets.token_urlsafe(48)
        self._grants[token] = _Grant(client_id, tuple(scopes))
        return token
