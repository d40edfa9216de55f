"""One sync per record at a time in an instance, skipping requests a later read covered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class _Turn:
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: int = 0
    done: int = 0
    present: int = 0


class RecordGate:
    """One sync per record at a time in this instance, skipping those already covered.

    Each request takes a ticket on arrival. The one holding the record's lock notes how many
    had arrived when it began; once it succeeds, every request with a ticket up to that
    number is covered by it (it read the record after they arrived) and returns at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[tuple[str, str], _Turn] = {}

    def run(self, key: tuple[str, str], work: Callable[[], T]) -> T | None:
        with self._lock:
            turn = self._turns.setdefault(key, _Turn())
            turn.arrived += 1
            turn.present += 1
            ticket = turn.arrived
        try:
            with turn.lock:
                with self._lock:
                    if turn.done >= ticket:
                        return None
                    began = turn.arrived
                result = work()
                with self._lock:
                    turn.done = max(turn.done, began)
                return result
        finally:
            with self._lock:
                turn.present -= 1
                if not turn.present:
                    del self._turns[key]  # nobody waits: forget the record
