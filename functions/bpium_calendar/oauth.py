"""Google OAuth: the stored client and token, and the credentials the Calendar client uses.

The token lives in the `google-oauth-token` secret, kept fresh by `refresh_tokens`. When the
stored access token has expired anyway (that job failing), the other functions refresh it in
memory, say so in a warning, and go on working.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
import google.oauth2.credentials

from . import log
from .domain import rfc3339
from .errors import ConfigError, UpstreamError, UpstreamUnavailable
from .secret_store import GOOGLE_OAUTH_CLIENT, GOOGLE_OAUTH_TOKEN, SecretStore

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
REFRESH_JOB = "refresh_tokens"
# google-auth treats a token as expired this long before its expiry; we use the same.
EXPIRY_SKEW = timedelta(minutes=5)


class ReauthorizationRequired(UpstreamUnavailable):
    """Google answered invalid_grant: the refresh token was revoked or expired."""

    code = "reauthorization_required"
    retryable = False


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OAuthClient:
        """Accepts `{"client_id", "client_secret"}` or Google's downloaded client file."""
        inner = data.get("installed") or data.get("web") or data
        client_id, secret = inner.get("client_id"), inner.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise ConfigError(
                f"secret {GOOGLE_OAUTH_CLIENT} needs client_id and client_secret",
                code="secret_invalid",
            )
        return cls(client_id, secret)


@dataclass(frozen=True)
class StoredToken:
    refresh_token: str
    access_token: str | None
    expiry: datetime | None
    scopes: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredToken:
        refresh = data.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise ConfigError(
                f"secret {GOOGLE_OAUTH_TOKEN} has no refresh_token: run the authorize command",
                code="secret_invalid",
            )
        expiry = None
        if isinstance(data.get("expiry"), str):
            try:
                expiry = datetime.fromisoformat(data["expiry"])
            except ValueError:
                expiry = None
            if expiry is not None and expiry.tzinfo is None:
                expiry = expiry.replace(tzinfo=UTC)
        scopes = data.get("scopes") or [CALENDAR_SCOPE]
        if isinstance(scopes, str):
            scopes = scopes.split()
        token = data.get("access_token") or data.get("token")
        return cls(refresh, token if isinstance(token, str) else None, expiry, tuple(scopes))

    def to_json(self) -> str:
        return json.dumps(
            {
                "refresh_token": self.refresh_token,
                "access_token": self.access_token,
                "expiry": rfc3339(self.expiry) if self.expiry else None,
                "scopes": list(self.scopes),
            }
        )

    def usable_at(self, now: datetime) -> bool:
        """True when the access token is there and will not expire within the skew."""
        return bool(self.access_token and self.expiry and self.expiry - EXPIRY_SKEW > now)


def refresh_token_grant(
    client: OAuthClient, token: StoredToken, token_uri: str, request: google.auth.transport.Request
) -> StoredToken:
    """Exchanges the refresh token for a new access token (keeps a rotated refresh token)."""
    creds = google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=token.refresh_token,
        token_uri=token_uri,
        client_id=client.client_id,
        client_secret=client.client_secret,
        scopes=list(token.scopes),
    )
    try:
        creds.refresh(request)  # type: ignore[no-untyped-call]
    except google.auth.exceptions.RefreshError as exc:
        details = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        if details.get("error") == "invalid_grant":
            raise ReauthorizationRequired(
                "Google refused the refresh token (revoked, or expired as for an app in "
                "'Testing'): a person must run `make authorize` again"
            ) from exc
        if getattr(exc, "retryable", False):
            raise UpstreamUnavailable("Google token endpoint unavailable") from exc
        raise UpstreamError(f"Google token endpoint refused: {details.get('error')}") from exc
    except google.auth.exceptions.TransportError as exc:
        raise UpstreamUnavailable("Google token endpoint unreachable") from exc
    expiry = creds.expiry.replace(tzinfo=UTC) if creds.expiry else None
    return StoredToken(
        creds.refresh_token or token.refresh_token, creds.token, expiry, token.scopes
    )


class StoredTokenCredentials(google.auth.credentials.Credentials):
    """Credentials that use the stored access token, refreshing in memory only if it expired."""

    def __init__(
        self,
        secrets: SecretStore,
        token_uri: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._secrets = secrets
        self._token_uri = token_uri
        self._clock = clock
        self._lock = threading.Lock()

    def refresh(self, request: google.auth.transport.Request) -> None:
        with self._lock:
            now = self._clock()
            if self.token and self.expiry and self.expiry.replace(tzinfo=UTC) - EXPIRY_SKEW > now:
                return  # another thread refreshed while we waited
            stored = StoredToken.from_json(self._secrets.get_json(GOOGLE_OAUTH_TOKEN))
            if not stored.usable_at(now):
                # The cache may hold an old version: the refresher may have stored a new one.
                stored = StoredToken.from_json(
                    self._secrets.get_json(GOOGLE_OAUTH_TOKEN, fresh=True)
                )
            if not stored.usable_at(now):
                log.warning(
                    "stored_token_expired",
                    failing_job=REFRESH_JOB,
                    expiry=stored.expiry.isoformat() if stored.expiry else None,
                    hint=f"{REFRESH_JOB} is not keeping the token fresh; refreshing in memory",
                )
                client = OAuthClient.from_json(self._secrets.get_json(GOOGLE_OAUTH_CLIENT))
                stored = refresh_token_grant(client, stored, self._token_uri, request)
            if not stored.access_token or not stored.expiry:
                raise UpstreamError("Google's token answer had no access token or expiry")
            self.token = stored.access_token
            # google-auth compares expiry with a naive UTC datetime.
            self.expiry = stored.expiry.astimezone(UTC).replace(tzinfo=None)
