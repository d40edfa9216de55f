"""Use case of the job `watch_calendars`: one live push channel per calendar we write to.

A channel is renewed at least RENEW_BEFORE ahead of the expiration Google granted: a new
channel first, then `channels.stop` on the old one, so no change goes unannounced in
between. The id of a new channel is ours and stored before events.watch is called (its
first message, `sync`, may arrive before the answer). A calendar without a sync token gets
a first, full sync queued: it sets the token that later pushes read from. Channels of
calendars we no longer write to, and channels whose watch never answered, are stopped.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from . import log
from .errors import AppError, ConfigError, NotFound
from .push import Queue, calendar_task
from .settings import Settings
from .state import StateStore

RENEW_BEFORE = 24 * 3600.0  # seconds before a channel's expiration it is replaced
# The channel lifetime asked for: events.watch's default and, as seen, its longest grant is
# longer (a month); a week keeps a renewal routine, not a rarity.
TTL_SECONDS = 7 * 86400
OPENING_GRACE = 3600.0  # a channel whose watch answer never came is stopped after this


class WatchPort(Protocol):
    def watch(self, calendar_id: str, channel: dict[str, Any]) -> dict[str, Any]: ...

    def stop_channel(self, channel_id: str, resource_id: str) -> None: ...


class Watcher:
    def __init__(
        self,
        settings: Settings,
        *,
        calendar: WatchPort,
        state: StateStore,
        token: Callable[[], str],
        calendars: Callable[[], list[str]],
        queue: Callable[[], Queue],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.state = state
        self._token = token
        self._calendars = calendars
        self._queue = queue
        self.clock = clock

    def run(self) -> dict[str, Any]:
        if not self.settings.two_way:
            log.info("calendar_watch_skipped", reason="no responses, status or FROM_GOOGLE role")
            return {"status": "skipped", "reason": "two_way_off"}
        if not self.settings.calendar_push_url:
            raise ConfigError("CALENDAR_PUSH_URL: required by watch_calendars")
        wanted = sorted({self.settings.calendar_id, *self._calendars()})
        counts = {"calendars": len(wanted), "opened": 0, "kept": 0, "stopped": 0, "failed": 0}
        for calendar_id in wanted:
            try:
                counts["opened" if self._ensure(calendar_id) else "kept"] += 1
            except AppError as exc:
                counts["failed"] += 1
                log.error(
                    "calendar_watch_failed",
                    calendar_id=calendar_id,
                    error_code=exc.code,
                    error=exc.message,
                )
        counts["stopped"] = self._tidy(set(wanted))
        log.info("calendars_watched", **counts)
        return counts

    def _ensure(self, calendar_id: str) -> bool:
        """Whether a channel was opened (new or renewing one) for the calendar."""
        current = self.state.calendar(calendar_id)
        expires = float(current.get("expiration") or 0)
        opened = False
        if not current.get("channelId") or expires - self.clock() < RENEW_BEFORE:
            self._open(calendar_id)
            opened = True
        if not current.get("syncToken"):
            # The first sync is a full one; it stores the token later pushes read from.
            queued = self._queue().enqueue(None, calendar_task(calendar_id))
            log.info("calendar_first_sync_queued", calendar_id=calendar_id, task=queued.task)
        return opened

    def _open(self, calendar_id: str) -> None:
        channel_id = f"bpium-gcal-{uuid.uuid4().hex}"
        self.state.open_channel(calendar_id, channel_id)
        answer = self.calendar.watch(
            calendar_id,
            {
                "id": channel_id,
                "type": "web_hook",
                "address": self.settings.calendar_push_url,
                "token": self._token(),
                "params": {"ttl": str(TTL_SECONDS)},
            },
        )
        resource_id = str(answer.get("resourceId") or "")
        # Milliseconds since the epoch, as a string (Channel.expiration).
        expiration = int(answer.get("expiration") or 0) / 1000.0
        old = self.state.channel_opened(calendar_id, channel_id, resource_id, expiration)
        log.info(
            "calendar_watch_opened",
            calendar_id=calendar_id,
            channel_id=channel_id,
            expiration=expiration,
            replaces=old["id"] if old else None,
        )
        if old:
            self._stop(str(old["id"]), str(old.get("resourceId") or ""))

    def _stop(self, channel_id: str, resource_id: str) -> None:
        if resource_id:
            with contextlib.suppress(NotFound):  # expired or stopped already
                self.calendar.stop_channel(channel_id, resource_id)
        self.state.drop_channel(channel_id)
        log.info("calendar_watch_stopped", channel_id=channel_id)

    def _tidy(self, wanted: set[str]) -> int:
        """Stops the channels no calendar of ours uses: calendars we no longer write to,
        the channels renewals replaced but could not stop, watches that never answered."""
        live = {}
        for state in self.state.watched():
            calendar_id = state.get("calendarId")
            if calendar_id in wanted:
                live[state.get("channelId")] = calendar_id
            elif calendar_id:
                self.state.forget_calendar(str(calendar_id))
        stopped = 0
        now = self.clock()
        for channel in self.state.channels():
            if channel["id"] in live:
                continue
            if channel.get("state") == "opening" and now - channel.get("opened", 0) < OPENING_GRACE:
                continue  # a watch in flight (perhaps this run's own)
            self._stop(channel["id"], str(channel.get("resourceId") or ""))
            stopped += 1
        return stopped
