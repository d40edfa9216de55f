"""Retries with exponential backoff and full jitter, bounded by the request's deadline.

Adapters raise our errors; those marked `retryable` are tried again. The web edge sets the
deadline for each request, so retries stop in time for the answer to reach Bpium.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from . import log
from .errors import AppError

T = TypeVar("T")

# Cloud Functions time out at 60 s by default; answering by 50 s leaves room for the answer.
DEFAULT_DEADLINE_SECONDS = 50.0

_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 16.0


@contextmanager
def deadline_in(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Every retry loop inside stops so as to finish within `seconds`."""
    token = _deadline.set(clock() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(clock: Callable[[], float] = time.monotonic) -> float:
    """Seconds left before the current deadline."""
    end = _deadline.get()
    return (end - clock()) if end is not None else DEFAULT_DEADLINE_SECONDS


def with_retries(
    attempt: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] | None = None,
) -> T:
    """Calls `attempt` until it succeeds, fails for good, or the deadline comes."""
    number = 0
    while True:
        number += 1
        try:
            return attempt()
        except AppError as exc:
            if not exc.retryable or number >= policy.max_attempts:
                raise
            jitter = rand() if rand else random.random()  # noqa: S311 - jitter, not crypto
            backoff = jitter * min(policy.max_delay, policy.base_delay * 2 ** (number - 1))
            retry_after = exc.details.get("retry_after")
            wait = max(backoff, float(retry_after)) if retry_after else backoff
            if wait >= remaining(clock) - 1.0:
                raise
            log.warning(
                "upstream_retry",
                what=what,
                attempt=number,
                wait_seconds=round(wait, 3),
                error_code=exc.code,
            )
            sleep(wait)
