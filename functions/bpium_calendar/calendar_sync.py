"""Use case of the worker `sync_calendar`: read a calendar's changes, write them to Bpium.

Changes come by the calendar's stored sync token, every page; without a token, or when
Google answers 410 for it, a full sync of the reconcile window (answers and status only: a
full list cannot tell a person's edit from old drift) gives a new one. One sync of a
calendar runs at a time (a lock in the instance, then a Firestore lease across instances);
a push that arrives meanwhile makes it read once more before it lets go, and the token is
stored only over the one it started from.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from . import log
from .domain import rfc3339
from .errors import Gone
from .from_google import Applied, GoogleToBpium
from .settings import Settings
from .state import StateStore

# More rounds than this in one task (pushes that never stop): the next push continues.
MAX_ROUNDS = 5


class ChangesPort(Protocol):
    def list_events(
        self, calendar_id: str, params: Mapping[str, Any], *, limit: int | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...


class CalendarSync:
    def __init__(
        self,
        settings: Settings,
        calendar: ChangesPort,
        state: StateStore,
        applier: GoogleToBpium,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.state = state
        self.applier = applier
        self.clock = clock
        self._lock = threading.Lock()
        self._busy: dict[str, bool] = {}  # calendar → whether a push came while it synced

    def run(self, calendar_id: str) -> dict[str, Any]:
        """Syncs the calendar, unless this instance is at it already (which then reads once
        more): threads of one instance never contend in Firestore."""
        with self._lock:
            if calendar_id in self._busy:
                self._busy[calendar_id] = True
                log.info("calendar_sync_coalesced", calendar_id=calendar_id)
                return {"status": "coalesced", "calendarId": calendar_id}
            self._busy[calendar_id] = False
        try:
            full = False
            for _ in range(MAX_ROUNDS):
                result = self._leased(calendar_id)
                full = full or bool(result.get("full"))
                result["full"] = full
                with self._lock:
                    if not self._busy[calendar_id]:
                        break
                    self._busy[calendar_id] = False
            return result
        finally:
            with self._lock:
                self._busy.pop(calendar_id, None)

    def _leased(self, calendar_id: str) -> dict[str, Any]:
        holder = uuid.uuid4().hex
        lease = float(self.settings.function_timeout_seconds)
        start = self.state.begin_sync(calendar_id, holder, lease)
        if start is None:
            log.info("calendar_sync_coalesced", calendar_id=calendar_id)
            return {"status": "coalesced", "calendarId": calendar_id}
        total = Applied()
        full = False
        rounds = 0
        try:
            while start is not None and rounds < MAX_ROUNDS:
                rounds += 1
                read_from, items, token, incremental = self._changes(calendar_id, start.token)
                full = full or not incremental
                done = self.applier.apply(calendar_id, items, incremental=incremental)
                total.events += done.events
                total.written += done.written
                total.unchanged += done.unchanged
                start = self.state.finish_sync(calendar_id, holder, read_from, token)
        except BaseException:
            self.state.release(calendar_id, holder)
            raise
        if start is not None:
            self.state.release(calendar_id, holder)
        log.info(
            "calendar_synced",
            calendar_id=calendar_id,
            full=full,
            rounds=rounds,
            **total.to_json(),
        )
        return {"status": "synced", "calendarId": calendar_id, "full": full, **total.to_json()}

    def _changes(
        self, calendar_id: str, token: str | None
    ) -> tuple[str | None, list[dict[str, Any]], str | None, bool]:
        """(the token read from, items, the next token, whether they are incremental)."""
        if token:
            try:
                items, next_token = self.calendar.list_events(
                    calendar_id, {"syncToken": token}, limit=None
                )
                return token, items, next_token, True
            except Gone:
                log.warning("sync_token_expired", calendar_id=calendar_id)
                self.state.drop_token(calendar_id, token)
        now = self.clock()
        params = {
            "timeMin": rfc3339(now - timedelta(days=self.settings.reconcile_lookback_days)),
            "timeMax": rfc3339(now + timedelta(days=self.settings.reconcile_lookahead_days)),
            "showDeleted": True,
        }
        items, next_token = self.calendar.list_events(calendar_id, params, limit=None)
        return None, items, next_token, False
