"""Employees' e-mails, cached per instance for a time limit (`EMPLOYEE_EMAIL_CACHE_MINUTES`).

Bpium allows the whole account 100 requests per 30 s, and a meeting's employees are mostly
the same few people: with their e-mails cached, a warm create costs Bpium one call (the
write-back). An e-mail changed in Bpium reaches new events once its entry expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from .domain import EmployeeRef

MAX_ENTRIES = 10_000  # a bound on memory: beyond it the oldest entries go first


class EmailSource(Protocol):
    def emails_by_ref(
        self, refs: Iterable[EmployeeRef], email_field: str
    ) -> dict[EmployeeRef, tuple[str, ...]]: ...


class EmployeeEmails:
    """`emails(refs)`: the e-mails of the referenced employees, one Bpium read for all the
    refs not cached (or expired); `max_age` 0 caches nothing."""

    def __init__(
        self,
        source: EmailSource,
        email_field: str,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._field = email_field
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[EmployeeRef, tuple[float, tuple[str, ...]]] = {}

    def emails(self, refs: Sequence[EmployeeRef]) -> list[str]:
        now = self._clock()
        with self._lock:
            known = {
                ref: entry[1]
                for ref in refs
                if (entry := self._cache.get(ref)) and now - entry[0] < self._max_age
            }
        missing = [ref for ref in dict.fromkeys(refs) if ref not in known]
        if missing:
            found = self._source.emails_by_ref(missing, self._field)
            fetched = {ref: found.get(ref, ()) for ref in missing}
            known.update(fetched)
            if self._max_age > 0:
                with self._lock:
                    for ref, emails in fetched.items():
                        self._cache.pop(ref, None)
                        self._cache[ref] = (now, emails)  # newest last: eviction order
                    while len(self._cache) > MAX_ENTRIES:
                        del self._cache[next(iter(self._cache))]
        return [email for ref in refs for email in known.get(ref, ())]

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
