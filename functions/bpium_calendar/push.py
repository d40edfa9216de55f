"""Use case of `on_calendar_push`: Google's push notifications for the calendars we watch.

A push proves itself with the channel token alone (`X-Goog-Channel-Token`, checked in
constant time; 401 otherwise, no call). It names a channel; the calendar comes from our own
record of that channel, never from a header. A channel we do not hold is stopped and
nothing else is read or written. For a change, the calendar's sync is queued for the
worker `sync_calendar`: one task per calendar per short interval, dispatched when the
interval ends, so a burst of pushes costs one sync that reads every change of the burst.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from . import log
from .errors import BadRequest, NotFound, Unauthorized
from .settings import Settings
from .state import StateStore
from .tasks import Enqueued

# The message the guide says every new channel sends first ("sync"), and the rest.
KNOWN_STATES = ("sync", "exists", "not_exists")
SLOT_MARGIN_SECONDS = 0.5


class Queue(Protocol):
    def enqueue(
        self, task_id: str | None, body: dict[str, Any], *, not_before: datetime | None = None
    ) -> Enqueued: ...


class ChannelStopper(Protocol):
    def stop_channel(self, channel_id: str, resource_id: str) -> None: ...


def calendar_task(calendar_id: str) -> dict[str, Any]:
    return {"calendarId": calendar_id}


class PushReceiver:
    def __init__(
        self,
        settings: Settings,
        *,
        token: Callable[[], str],
        state: StateStore,
        queue: Callable[[], Queue],
        stopper: Callable[[], ChannelStopper],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._token = token
        self.state = state
        self._queue = queue
        self._stopper = stopper
        self.clock = clock

    def handle(self, received: Mapping[str, str]) -> dict[str, Any]:
        headers = {name.lower(): value for name, value in received.items()}
        given = headers.get("x-goog-channel-token", "")
        if not given:
            raise Unauthorized("missing X-Goog-Channel-Token", code="channel_token_missing")
        if not hmac.compare_digest(given.encode("utf-8"), self._token().encode("utf-8")):
            raise Unauthorized("the channel token is not ours", code="channel_token_invalid")
        channel_id = headers.get("x-goog-channel-id", "").strip()
        resource_id = headers.get("x-goog-resource-id", "").strip()
        state = headers.get("x-goog-resource-state", "").strip()
        number = headers.get("x-goog-message-number", "").strip()
        if not channel_id or len(channel_id) > 64:
            raise BadRequest("missing X-Goog-Channel-ID", field="X-Goog-Channel-ID")
        if state not in KNOWN_STATES:
            raise BadRequest(f"unknown X-Goog-Resource-State {state[:20]!r}", field="state")
        fields = {"channel_id": channel_id, "resource_state": state, "message_number": number}
        channel = self.state.channel(channel_id)
        held = channel is not None and (
            not channel.get("resourceId") or channel.get("resourceId") == resource_id
        )
        if channel is None or not held:
            self._stop(channel_id, resource_id, fields)
            return {"status": "ignored", "reason": "unknown_channel"}
        assert channel is not None
        calendar_id = str(channel.get("calendarId"))
        if not channel.get("resourceId") and resource_id:
            self.state.note_resource(channel_id, resource_id)  # its watch answer is not in yet
        if state == "sync":
            log.info("push_channel_confirmed", calendar_id=calendar_id, **fields)
            return {"status": "ignored", "reason": "sync"}
        task_id, not_before = self._slot(calendar_id, channel_id, number)
        queued = self._queue().enqueue(task_id, calendar_task(calendar_id), not_before=not_before)
        log.info(
            "push_queued",
            calendar_id=calendar_id,
            task=queued.task,
            coalesced=queued.duplicate,
            **fields,
        )
        return {"status": "queued", "task": queued.task}

    def _slot(self, calendar_id: str, channel_id: str, number: str) -> tuple[str, datetime | None]:
        """The task for this push: the calendar's for the current interval, dispatched when
        it ends (a push later in the interval is read by it too); without an interval, one
        per message, so a message sent twice is queued once."""
        seconds = self.settings.push_debounce_seconds
        if seconds <= 0:
            digest = hashlib.sha256(f"{channel_id}\n{number}".encode()).hexdigest()[:40]
            return f"push-{digest}", None
        slot = math.floor(self.clock() / seconds)
        digest = hashlib.sha256(f"{calendar_id}\n{slot}".encode()).hexdigest()[:40]
        # A moment after the interval's end: a push another instance stamps a little late
        # (clocks differ) still finds the task waiting, not run.
        due = (slot + 1) * seconds + SLOT_MARGIN_SECONDS
        return f"cal-{digest}", datetime.fromtimestamp(due, UTC)

    def _stop(self, channel_id: str, resource_id: str, fields: dict[str, str]) -> None:
        log.warning("push_channel_unknown", **fields)
        if not resource_id:
            return
        with contextlib.suppress(NotFound):  # stopped already
            self._stopper().stop_channel(channel_id, resource_id)
        log.info("push_channel_stopped", **fields)
