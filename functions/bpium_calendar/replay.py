"""Replayed webhooks: a message already handled here, or one older than the age limit.

A captured delivery stays validly signed forever (the signature covers only the body), so
it is refused once it is older than `WEBHOOK_MAX_AGE_MINUTES` by its `timestamp`, and within
that window a second arrival of the same message (`hook.id` + `sequenceId`: Bpium never
sends one twice) is refused by this instance's memory of what it has seen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .domain import Webhook

MAX_REMEMBERED = 100_000  # messages; each is two short strings
FUTURE_SLACK = timedelta(minutes=5)  # clocks differ a little


class ReplayGuard:
    """Why a verified webhook is a replay ("too_old", "seen"), or None; thread-safe."""

    def __init__(
        self, max_age: timedelta, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.max_age = max_age
        self.clock = clock
        self._seen: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, webhook: Webhook) -> str | None:
        now = self.clock()
        sent = webhook.sent_at
        if sent is None or now - sent > self.max_age:
            return "too_old"
        key = (webhook.hook_id, webhook.sequence_id)
        with self._lock:
            while self._seen:
                oldest, arrived = next(iter(self._seen.items()))
                if (
                    now - arrived <= self.max_age + FUTURE_SLACK
                    and len(self._seen) < MAX_REMEMBERED
                ):
                    break
                del self._seen[oldest]
            if key in self._seen:
                return "seen"
            self._seen[key] = now
        return None
