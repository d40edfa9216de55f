"""RecordGate: one sync per record at a time; requests covered by a later read return at once."""

from __future__ import annotations

import contextlib
import threading
import time

from bpium_calendar.sync import RecordGate


def test_many_requests_for_one_record_collapse_into_few_syncs() -> None:
    gate = RecordGate()
    runs: list[int] = []
    running = threading.Lock()
    overlaps = []

    def work() -> str:
        if not running.acquire(blocking=False):
            overlaps.append(1)
            return "overlap"
        try:
            runs.append(1)
            time.sleep(0.02)
            return "synced"
        finally:
            running.release()

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(gate.run(("7", "1"), work)))
        for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert len(results) == 50
    assert results.count("synced") == len(runs)
    assert results.count(None) == 50 - len(runs)
    assert len(runs) <= 3  # the first, then at most one for all who arrived during it, ...
    assert gate._turns == {}


def test_different_records_do_not_wait_for_each_other() -> None:
    gate = RecordGate()
    started = threading.Event()
    release = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "slow"

    thread = threading.Thread(target=lambda: gate.run(("7", "1"), slow))
    thread.start()
    started.wait(5)
    assert gate.run(("7", "2"), lambda: "other") == "other"
    release.set()
    thread.join()


def test_a_failed_sync_covers_nobody() -> None:
    gate = RecordGate()

    def fail() -> str:
        raise RuntimeError("down")

    with contextlib.suppress(RuntimeError):
        gate.run(("7", "1"), fail)
    assert gate.run(("7", "1"), lambda: "again") == "again"
