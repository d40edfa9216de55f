"""Employees' e-mails cached per instance with a time limit: one read for the missing ones."""

from __future__ import annotations

from collections.abc import Iterable

from bpium_calendar.domain import EmployeeRef
from bpium_calendar.employees import EmployeeEmails

ANNA, BORIS, GONE = (
    EmployeeRef("$users", "1"),
    EmployeeRef("$users", "2"),
    EmployeeRef("$users", "9"),
)


class Source:
    def __init__(self) -> None:
        self.emails = {ANNA: ("anna@acme.ru",), BORIS: ("boris@acme.ru", "b@acme.ru")}
        self.reads: list[list[EmployeeRef]] = []

    def emails_by_ref(
        self, refs: Iterable[EmployeeRef], email_field: str
    ) -> dict[EmployeeRef, tuple[str, ...]]:
        asked = list(refs)
        self.reads.append(asked)
        return {r: self.emails[r] for r in asked if r in self.emails}


def test_cached_refs_cost_no_read_and_missing_ones_one_read_together() -> None:
    now = [0.0]
    source = Source()
    cache = EmployeeEmails(source, "$email", max_age=600, clock=lambda: now[0])
    assert cache.emails([ANNA]) == ["anna@acme.ru"]
    assert cache.emails([ANNA, BORIS, GONE]) == ["anna@acme.ru", "boris@acme.ru", "b@acme.ru"]
    assert source.reads == [[ANNA], [BORIS, GONE]]
    assert cache.emails([BORIS, ANNA, GONE]) == ["boris@acme.ru", "b@acme.ru", "anna@acme.ru"]
    assert len(source.reads) == 2  # a deleted employee is remembered too: no read each time


def test_an_entry_expires_after_the_time_limit() -> None:
    now = [0.0]
    source = Source()
    cache = EmployeeEmails(source, "$email", max_age=600, clock=lambda: now[0])
    cache.emails([ANNA])
    now[0] = 599.0
    cache.emails([ANNA])
    assert len(source.reads) == 1
    source.emails[ANNA] = ("anna.new@acme.ru",)
    now[0] = 600.0
    assert cache.emails([ANNA]) == ["anna.new@acme.ru"]
    assert len(source.reads) == 2


def test_a_zero_time_limit_reads_every_time() -> None:
    source = Source()
    cache = EmployeeEmails(source, "$email", max_age=0)
    cache.emails([ANNA])
    cache.emails([ANNA])
    assert len(source.reads) == 2
