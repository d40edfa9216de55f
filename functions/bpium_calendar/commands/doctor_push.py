"""`make doctor`'s look at the way back (Google → Bpium): Firestore and the push channels."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..errors import AppError
from ..settings import Settings
from ..state import StateStore, firestore_client

RUN_WATCH = (
    "run the job watch_calendars (`gcloud scheduler jobs run bpium-gcal-watch-calendars`) "
    "and read its log (calendar_watch_failed)"
)


class Reporter(Protocol):
    def ok(self, what: str, detail: str) -> None: ...

    def fail(self, what: str, problem: str, fix: str) -> None: ...

    def say(self, line: str) -> None: ...


def check_push(
    report: Reporter, settings: Settings, *, clock: Callable[[], float] = time.time
) -> None:
    """Firestore answers; each watched calendar has a live channel and a sync token."""
    if not settings.two_way:
        report.ok("push channels", "not used (no responses, status or FROM_GOOGLE role)")
        return
    database = settings.firestore_database
    store = StateStore(lambda: firestore_client(settings.gcp_project, database))
    try:
        watched = store.watched()
    except AppError as exc:
        fix = "check FIRESTORE_DATABASE, GCP_PROJECT and roles/datastore.user (or `make deploy`)"
        report.fail(f"Firestore database {database}", exc.message, fix)
        return
    report.ok(f"Firestore database {database}", f"readable, {len(watched)} calendar(s) watched")
    if not watched:
        report.say(f"! push channels: none yet (a fresh deployment) — fix: {RUN_WATCH}")
        return
    now = clock()
    for state in sorted(watched, key=lambda s: str(s.get("calendarId"))):
        what = f"push channel of {state.get('calendarId')}"
        hours = (float(state.get("expiration") or 0) - now) / 3600
        if not state.get("channelId") or hours <= 0:
            report.fail(
                what, "none live: changes in Google reach Bpium only by reconcile", RUN_WATCH
            )
        elif not state.get("syncToken"):
            report.fail(what, "no sync token yet", "check the log of sync_calendar")
        else:
            report.ok(what, f"live, expires in {hours:.0f} h")
