"""Use case `refresh_tokens`: keep the stored Google access token fresh, cheaply.

Run by Cloud Scheduler. It refreshes only when the stored token expires within the margin,
stores the result as a new secret version (keeping a rotated refresh token), and destroys
old versions so that at most two stay enabled. Two runs at once both leave valid tokens:
each writes its own version and neither destroys the newest two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.transport.requests

from . import log
from .domain import rfc3339
from .oauth import OAuthClient, ReauthorizationRequired, StoredToken, refresh_token_grant
from .secret_store import GOOGLE_OAUTH_CLIENT, GOOGLE_OAUTH_TOKEN, SecretStore

KEEP_VERSIONS = 2
TOKEN_HTTP_TIMEOUT = 20.0
REAUTHORIZE_HINT = (
    "Google no longer accepts the stored refresh token (revoked, or expired because the "
    "OAuth app is in 'Testing'). A person must run `make authorize` on a workstation with "
    "SECRETS_BACKEND=secret-manager and GCP_PROJECT set (README: «Google account»), and "
    "publish the OAuth app so that refresh tokens stop expiring after 7 days."
)


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport with a timeout that fits the function's deadline."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = min(
            float(kwargs.get("timeout") or TOKEN_HTTP_TIMEOUT), TOKEN_HTTP_TIMEOUT
        )
        return super().__call__(*args, **kwargs)  # type: ignore[no-untyped-call]


def _iso(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


class TokenRefresher:
    def __init__(
        self,
        secrets: SecretStore,
        token_uri: str,
        margin: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        request: google.auth.transport.Request | None = None,
    ) -> None:
        self.secrets = secrets
        self.token_uri = token_uri
        self.margin = margin
        self.clock = clock
        self.request = request or _TimedRequest()
        self._lock = threading.Lock()

    def run(self) -> dict[str, Any]:
        with self._lock:
            stored = StoredToken.from_json(self.secrets.get_json(GOOGLE_OAUTH_TOKEN, fresh=True))
            if stored.access_token and stored.expiry and stored.expiry - self.margin > self.clock():
                log.info("token_fresh", expiry=_iso(stored.expiry))
                return {"status": "fresh", "expiry": _iso(stored.expiry)}
            client = OAuthClient.from_json(self.secrets.get_json(GOOGLE_OAUTH_CLIENT))
            try:
                token = refresh_token_grant(client, stored, self.token_uri, self.request)
            except ReauthorizationRequired:
                log.critical("reauthorization_required", action=REAUTHORIZE_HINT)
                raise
            version = self.secrets.put(GOOGLE_OAUTH_TOKEN, token.to_json())
            pruned = self.secrets.prune(GOOGLE_OAUTH_TOKEN, keep=KEEP_VERSIONS, protect=version)
            rotated = token.refresh_token != stored.refresh_token
            log.info(
                "token_refreshed",
                expiry=_iso(token.expiry),
                version=version,
                destroyed_versions=pruned,
                refresh_token_rotated=rotated,
            )
            return {
                "status": "refreshed",
                "expiry": _iso(token.expiry),
                "version": version,
                "destroyedVersions": pruned,
                "refreshTokenRotated": rotated,
            }
