"""Placing an event in time, as events.list's timeMin/timeMax would, and sharing records out."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from bpium_calendar.event_compare import moment_of, overlaps
from bpium_calendar.reconcile import _share

START, END = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)


def event(start: str, end: str) -> dict:
    key = "date" if len(start) == 10 else "dateTime"
    return {"start": {key: start}, "end": {key: end}}


def test_an_event_is_in_the_window_when_it_ends_after_its_start_and_starts_before_its_end() -> None:
    assert overlaps(event("2026-11-30T23:00:00+00:00", "2026-12-01T01:00:00+00:00"), START, END)
    assert not overlaps(event("2026-11-30T22:00:00+00:00", "2026-12-01T00:00:00+00:00"), START, END)
    assert not overlaps(event("2027-03-01T00:00:00+00:00", "2027-03-01T01:00:00+00:00"), START, END)
    assert overlaps(event("2027-02-28", "2027-03-01"), START, END)
    assert not overlaps(event("2027-06-01", "2027-06-02"), START, END)
    assert overlaps({"start": {"dateTime": "soon"}, "end": {}}, START, END)  # unreadable: in


def test_times_with_offsets_are_compared_as_instants() -> None:
    moscow = moment_of({"dateTime": "2026-12-01T03:00:00+03:00"})
    assert moscow == START
    assert moment_of(None) is None


def test_records_are_shared_out_evenly_and_the_same_way_every_run() -> None:
    ids = [str(i) for i in range(3000)]
    counts = Counter(_share(i, 3) for i in ids)
    assert set(counts) == {0, 1, 2}
    assert min(counts.values()) > 900
    assert [_share(i, 3) for i in ids[:50]] == [_share(i, 3) for i in ids[:50]]
