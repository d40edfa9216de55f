"""Which Bpium user the integration is: its writes' webhooks name it in `user.id`.

`BPIUM_API_USER_ID` when set; otherwise learned once per instance from the `$users` record
whose `$email` is the login of `bpium-credentials` (Bpium's text filter matches by
occurrence, so the e-mail is compared exactly here). Unknown stays unknown for a while
rather than asking Bpium on every webhook.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from . import log
from .errors import AppError

USERS_CATALOG, EMAIL_FIELD = "$users", "$email"
RETRY_AFTER = 600.0  # seconds before a failed or fruitless lookup is tried again


class UsersPort(Protocol):
    def list_records(
        self,
        catalog_id: str,
        *,
        ids: Sequence[str] = (),
        fields: Sequence[str] = (),
        filters: Any = None,
    ) -> list[dict[str, Any]]: ...


class ApiUser:
    def __init__(
        self,
        configured: str | None,
        bpium: Callable[[], UsersPort],
        login: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._id = configured
        self._bpium = bpium
        self._login = login
        self._clock = clock
        self._tried_at: float | None = None
        self._lock = threading.Lock()

    def id(self) -> str | None:
        with self._lock:
            if self._id is not None:
                return self._id
            if self._tried_at is not None and self._clock() - self._tried_at < RETRY_AFTER:
                return None
            self._tried_at = self._clock()
            try:
                self._id = self._learn()
            except AppError as exc:
                log.warning("api_user_unknown", error_code=exc.code, error=exc.message)
            return self._id

    def _learn(self) -> str | None:
        login = self._login().strip().lower()
        records = self._bpium().list_records(
            USERS_CATALOG, filters={EMAIL_FIELD: login}, fields=[EMAIL_FIELD]
        )
        for record in records:
            email = (record.get("values") or {}).get(EMAIL_FIELD)
            if isinstance(email, str) and email.strip().lower() == login:
                log.info("api_user_learned", user_id=str(record["id"]))
                return str(record["id"])
        log.warning(
            "api_user_unknown",
            error_code="no_user",
            error="no $users record has the API login as its e-mail: set BPIUM_API_USER_ID",
        )
        return None
