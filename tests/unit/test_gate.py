"""RecordGate: one sync per record at a time; requests covered by a later read return at once."""

from __future__ import annotations

import contextlib
import threading
import time

from bpium_calendar.record_gate import RecordGate


def test_many_requests_for_one_record_collapse_into_two_syncs() -> None:
    gate = RecordGate()
    key = ("7", "1")
    runs: list[int] = []
    running = threading.Lock()
    overlaps = []

    def work() -> str:
        if not running.acquire(blocking=False):
            overlaps.append(1)
            return "overlap"
        try:
            if not runs:  # the first sync lasts until all fifty have arrived
                deadline = time.monotonic() + 5
                while gate._turns[key].arrived < 50 and time.monotonic() < deadline:
                    time.sleep(0.001)
            runs.append(1)
            return "synced"
        finally:
            running.release()

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(gate.run(key, work))) for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    # The first sync began before the others arrived; the second began after all of them
    # had: it covers every one, so the other 48 return at once.
    assert len(runs) == 2
    assert results.count("synced") == 2
    assert results.count(None) == 48
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
