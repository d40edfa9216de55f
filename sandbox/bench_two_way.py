"""`make bench`'s Google → Bpium rows (issue «two-way»): what a push costs, how soon a
person's answer in Google reaches the record, and that our own writes never echo.

Every function runs as deployed, each in its own functions-framework process (gunicorn
with the deployed threads); Google's Firestore emulator holds the sync tokens, channels and
mirrors; the Google stand-in pushes to `on_calendar_push` and the Bpium stand-in fires real
signed webhooks. Bpium's limit and the queue's rate are lifted (the rows count calls and
time our pipeline, not the budget's waits; `sandbox.burst` measures those), and
FROM_GOOGLE=start,end throughout. Calls are counted at the stand-ins once Google's pushes,
the queue and Bpium's webhooks are all idle.

Runs on its own too: `PYTHONPATH=functions .venv/bin/python -m sandbox.bench_two_way`
prints its rows and replaces its section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from sandbox import firestore_emulator
from sandbox.bpium import API_USER_ID, ROLES
from sandbox.burst import THREADS, meeting_values, stamp
from sandbox.common import Call
from sandbox.processes import free_port, functions_served
from sandbox.stack import PRODUCTION_QUEUE, Stack, start_stack

RowFn = Callable[..., None]
ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "PERFORMANCE.md"
HEADING = "## Google → Bpium"
TITLE, START, END, AGENDA, EVENT_ID = (
    ROLES[r] for r in ("title", "start", "end", "agenda", "event_id")
)
RESPONSES = ROLES["responses"]
FROM_GOOGLE = "start,end"
ANSWERER = "anna@acme.example"  # employee 1, an attendee of every meeting here
ANSWERS = ("accepted", "declined", "tentative")  # cycled: each differs from the last
PER_PUSH_SAMPLES = 10
LATENCY_SAMPLES = 50
POLL = 0.020
# PUSH_DEBOUNCE_SECONDS of the latency rows; the calls per push are counted under the first,
# the 1,000 edits run under the last. With 0, every push is a sync of its own: the edits'
# waves of 20 at once make concurrent syncs, whose Firestore transactions collide in the
# emulator (about 2 s each, see sandbox.firestore_emulator), so a wave takes seconds.
DEBOUNCES = (0, 1)
MEETINGS = 20
EDITS = 1000  # half in Bpium, half in Google
# The deployed queue, its rate lifted: the 500 Bpium edits' tasks alone would take three and
# a half minutes at its 2.4 a second.
QUEUE = {**PRODUCTION_QUEUE, "max_dispatches_per_second": 500.0}
# The functions' entry points but the push receiver, which restarts with each debounce.
SERVED = (
    "on_meeting_created",
    "on_meeting_updated",
    "on_meeting_deleted",
    "sync_meeting",
    "sync_calendar",
    "watch_calendars",
)
LIST_RE = re.compile(r"/calendar/v3/calendars/[^/]+/events$")
EVENT_RE = re.compile(r"/calendar/v3/calendars/[^/]+/events/(?!watch$)([^/]+)$")
RECORD_RE = re.compile(r"/api/v1/catalogs/[^/]+/records/([^/]+)$")
NOTES = [
    "Every function in its own functions-framework process (gunicorn, THREADS=8), state in "
    "Google's Firestore emulator, the Google stand-in's real pushes, the Bpium stand-in's "
    "real signed webhooks. FROM_GOOGLE=start,end. Bpium's limit lifted (stand-in and "
    "BPIUM_RATE_LIMIT=0) and the queue's rate lifted to 500 tasks/s (its concurrency, 8, "
    "and backoff as deployed): these rows count calls and time the pipeline, not the "
    "budget's waits. Calls are counted at the stand-ins once Google's pushes, the queue and "
    "Bpium's webhooks are all idle; a Calendar read is an events.list by sync token.",
    "",
    "The 1,000 edits run with PUSH_DEBOUNCE_SECONDS=1: with 0 every push is a sync of its own, "
    "and a wave of 20 edits at once makes concurrent syncs of the calendar, whose Firestore "
    "transactions collide in the emulator (it aborts one after about 2 s, "
    "`sandbox.firestore_emulator`), so each wave would take seconds.",
]


# -- the stack, the processes, settling -------------------------------------------------------


class TwoWayStack:
    """The stand-ins, the emulator and the functions' processes, with the push receiver
    restartable under another PUSH_DEBOUNCE_SECONDS."""

    def __init__(self, stack: Stack, exits: contextlib.ExitStack) -> None:
        self.stack = stack
        self._exits = exits
        self.ports = distinct_ports([*SERVED, "on_calendar_push"])
        stack.deliver_to(f"http://127.0.0.1:{self.ports['sync_meeting']}/")
        stack.push_to(
            f"http://127.0.0.1:{self.ports['on_calendar_push']}/",
            f"http://127.0.0.1:{self.ports['sync_calendar']}/",
        )
        self.env = {
            **os.environ,
            **stack.env,
            "BPIUM_RATE_LIMIT": "0",
            "THREADS": str(THREADS),
            "LOG_LEVEL": "WARNING",
            "FROM_GOOGLE": FROM_GOOGLE,
            "PUSH_DEBOUNCE_SECONDS": str(DEBOUNCES[0]),
        }
        self.urls = exits.enter_context(functions_served(SERVED, self.env, self.ports))
        stack.subscribe(self.urls)
        self._push: contextlib.ExitStack | None = None
        self.debounce = -1

    def serve_push(self, debounce: int) -> None:
        """`on_calendar_push` (again) with PUSH_DEBOUNCE_SECONDS=`debounce`, on its port."""
        if debounce == self.debounce:
            return
        settle(self.stack)
        if self._push is not None:
            self._push.close()
        self._push = self._exits.enter_context(contextlib.ExitStack())
        env = {**self.env, "PUSH_DEBOUNCE_SECONDS": str(debounce)}
        self._push.enter_context(functions_served(["on_calendar_push"], env, self.ports))
        self.debounce = debounce


def distinct_ports(names: list[str]) -> dict[str, int]:
    """A free port for each function, none twice: the workers' and the push receiver's
    must be known before anything starts, and the receiver restarts on its own."""
    ports: set[int] = set()
    while len(ports) < len(names):
        ports.add(free_port())
    return dict(zip(names, sorted(ports), strict=True))


@contextlib.contextmanager
def two_way_stack() -> Iterator[TwoWayStack]:
    with contextlib.ExitStack() as exits:
        emulator = firestore_emulator.start()
        exits.callback(emulator.stop)
        stack = start_stack(queue=QUEUE, firestore_host=emulator.host, rate_limit=10**9)
        exits.callback(stack.stop)
        yield TwoWayStack(stack, exits)


def activity(stack: Stack) -> tuple[int, ...]:
    return (
        len(stack.google.push_log),
        len(stack.tasks.attempts),
        len(stack.bpium.deliveries),
        len(stack.google.recorder.snapshot()),
        len(stack.bpium.recorder.snapshot()),
    )


def settle(stack: Stack, timeout: float = 120.0) -> None:
    """Until Google's pushes, the queue and Bpium's webhooks are idle at once with nothing
    new between two looks (each may set the others going)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        before = activity(stack)
        waited = (
            stack.google.wait_pushes_idle(5)
            and stack.tasks.wait_idle(5)
            and stack.bpium.wait_idle(5)
        )
        if not waited:
            continue
        time.sleep(0.05)
        idle = (
            stack.google.wait_pushes_idle(0)
            and stack.tasks.wait_idle(0)
            and stack.bpium.wait_idle(0)
        )
        if idle and activity(stack) == before:
            return
    raise TimeoutError("pushes, the queue and the webhooks did not settle")


def reset_calls(stack: Stack) -> None:
    for standin in (stack.google, stack.bpium, stack.secrets, stack.tasks):
        standin.recorder.reset_calls()


# -- counting ---------------------------------------------------------------------------------


class Since:
    """What the stand-ins logged after a mark: pushes, webhooks, tasks, calls by kind."""

    def __init__(self, stack: Stack) -> None:
        settle(stack)
        self.stack = stack
        reset_calls(stack)
        self._pushes = len(stack.google.push_log)
        self._deliveries = len(stack.bpium.deliveries)
        self._attempts = len(stack.tasks.attempts)

    def pushes(self) -> list[dict[str, Any]]:
        return [p for p in self.stack.google.push_log[self._pushes :] if p.get("state") == "exists"]

    def deliveries(self) -> list[dict[str, Any]]:
        return self.stack.bpium.deliveries[self._deliveries :]

    def attempts(self) -> list[dict[str, Any]]:
        return self.stack.tasks.attempts[self._attempts :]

    def calendar(self) -> list[Call]:
        google = self.stack.google
        return [c for c in google.recorder.snapshot() if c.path.startswith("/calendar/")] + [
            c for c in google.part_calls if c.path.startswith("/calendar/")
        ]

    def bpium(self) -> list[Call]:
        return [c for c in self.stack.bpium.recorder.snapshot() if c.path.startswith("/api/")]

    def counts(self) -> dict[str, int]:
        calendar, bpium = self.calendar(), self.bpium()
        return {
            "pushes": len(self.pushes()),
            "calendar_list": sum(
                1 for c in calendar if c.method == "GET" and LIST_RE.search(c.path)
            ),
            "calendar_get": sum(
                1 for c in calendar if c.method == "GET" and EVENT_RE.search(c.path)
            ),
            "calendar_write": sum(1 for c in calendar if c.method != "GET"),
            "bpium_read": sum(1 for c in bpium if c.method == "GET"),
            "bpium_write": sum(1 for c in bpium if c.method != "GET"),
            "tasks": self.stack.tasks.recorder.count("POST", r"/tasks$"),
            "secrets": len(self.stack.secrets.recorder.snapshot()),
        }


def answered(delivery: Mapping[str, Any]) -> str:
    """A webhook's answer: "status" or "status: reason"."""
    try:
        answer = json.loads(delivery.get("response") or "{}")
    except ValueError:
        return f"HTTP {delivery.get('status')}"
    if not isinstance(answer, dict):
        return f"HTTP {delivery.get('status')}"
    reason = answer.get("reason")
    return f"{answer.get('status')}: {reason}" if reason else str(answer.get("status"))


def tally(items: list[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in Counter(items).most_common()) or "none"


# -- meetings and people's edits ------------------------------------------------------------


def new_meeting(stack: Stack, start: datetime, title: str) -> tuple[str, str]:
    """A meeting created in Bpium, its webhook delivered and synced: (record, event id)."""
    record = stack.bpium.put_record(stack.meetings, meeting_values(start, title, ["1", "2"]))
    settle(stack)
    event_id = values(stack, record).get(EVENT_ID)
    if not event_id or stack.google.event("primary", event_id) is None:
        raise RuntimeError(f"meeting {record} got no event")
    return record, str(event_id)


def values(stack: Stack, record: str) -> dict[str, Any]:
    return dict((stack.bpium.record(stack.meetings, record) or {}).get("values") or {})


def answer(stack: Stack, event_id: str, status: str, email: str = ANSWERER) -> None:
    """An attendee answers the invitation (Google changes the organizer's copy)."""
    event = stack.google.event("primary", event_id) or {}
    people = [
        {**a, "responseStatus": status} if a.get("email") == email else a
        for a in event.get("attendees") or []
    ]
    stack.google.person_edit("primary", event_id, {"attendees": people})


def has_answer(stack: Stack, record: str, status: str, email: str = ANSWERER) -> bool:
    return f"{email}: {status}" in str(values(stack, record).get(RESPONSES) or "").splitlines()


def move(stack: Stack, event_id: str, start: datetime) -> None:
    """A person moves the event in Google's UI (45 minutes long)."""
    stack.google.person_edit(
        "primary",
        event_id,
        {
            "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Moscow"},
            "end": {"dateTime": (start + timedelta(minutes=45)).isoformat()},
        },
    )


def watch(served: TwoWayStack) -> None:
    answer_ = requests.post(served.urls["watch_calendars"] + "/", timeout=120)
    answer_.raise_for_status()
    settle(served.stack)
    if not served.stack.google.channels():
        raise RuntimeError(f"watch_calendars opened no channel: {answer_.text}")


# -- 1. calls per push ------------------------------------------------------------------------


def bench_per_push(served: TwoWayStack, row: RowFn, start: datetime) -> None:
    stack = served.stack
    record, event_id = new_meeting(stack, start, "Планёрка")
    answer(stack, event_id, "accepted", "ivan@acme.example")  # warm: the worker's first sync
    settle(stack)

    since = Since(stack)
    for i in range(PER_PUSH_SAMPLES):
        status = ANSWERS[i % len(ANSWERS)]
        answer(stack, event_id, status)
        settle(stack)
        if not has_answer(stack, record, status):
            raise RuntimeError(f"answer {i} ({status}) did not reach record {record}")
    c = since.counts()
    echoes = [answered(d) for d in since.deliveries()]
    n = c["pushes"] or 1
    others = c["calendar_get"] + c["calendar_write"] + c["bpium_read"] + c["secrets"]
    row(
        f"an attendee's answer in Google ({PER_PUSH_SAMPLES} in turn), per push: Bpium writes "
        "/ Calendar reads / other calls",
        f"{c['bpium_write'] / n:.2f} / {c['calendar_list'] / n:.2f} / "
        f"{others / n:.2f}"
        f" ({c['pushes']} pushes, {c['tasks']} tasks; our write's webhooks: {tally(echoes)})",
        "1 / 1 / 0; the webhooks ignored",
        c["pushes"] == PER_PUSH_SAMPLES
        and c["bpium_write"] == c["calendar_list"] == c["pushes"]
        and c["bpium_read"] + c["calendar_get"] + c["calendar_write"] == 0
        and len(echoes) == PER_PUSH_SAMPLES
        and all(e.startswith("ignored") for e in echoes),
    )

    since = Since(stack)
    for i in range(PER_PUSH_SAMPLES):
        stack.bpium.update_record(stack.meetings, record, {TITLE: f"Планёрка ({i + 1})"})
        settle(stack)
    c = since.counts()
    hooks = [answered(d) for d in since.deliveries()]
    title = (stack.google.event("primary", event_id) or {}).get("summary")
    n = c["pushes"] or 1
    row(
        f"the echo of our own Bpium → Google write ({PER_PUSH_SAMPLES} title edits in Bpium), "
        "per push: Bpium writes / Calendar reads",
        f"{c['bpium_write'] / n:.2f} / {c['calendar_list'] / n:.2f} ({c['pushes']} pushes; "
        f"the edits themselves: webhooks {tally(hooks)}, Calendar {c['calendar_get']} GET + "
        f"{c['calendar_write']} writes, Bpium {c['bpium_read']} reads)",
        "0 / 1",
        c["pushes"] == PER_PUSH_SAMPLES
        and c["bpium_write"] == 0
        and c["calendar_list"] == c["pushes"]
        and c["calendar_write"] == PER_PUSH_SAMPLES
        and title == f"Планёрка ({PER_PUSH_SAMPLES})",
    )


# -- 2. from a person's answer in Google to the record -------------------------------------------


def latencies(
    stack: Stack, record: str, event_id: str, count: int, debounce: int
) -> tuple[list[float], int]:
    """Milliseconds from each answer's change in Google until the record holds it (polled
    every 20 ms), one at a time; and how many never arrived within 30 s. Each answer comes
    at a random moment of the debounce interval: right after the last sync's dispatch (the
    interval's end), every one would wait almost the whole interval."""
    chance = random.Random(20261201)
    took: list[float] = []
    lost = 0
    for i in range(count):
        status = ANSWERS[i % len(ANSWERS)]
        time.sleep(chance.uniform(0, debounce))
        began = time.perf_counter()
        answer(stack, event_id, status)
        while not has_answer(stack, record, status):
            if time.perf_counter() - began > 30:
                lost += 1
                break
            time.sleep(POLL)
        else:
            took.append((time.perf_counter() - began) * 1000)
        settle(stack)
    return took, lost


def bench_latency(served: TwoWayStack, row: RowFn, start: datetime) -> None:
    stack = served.stack
    medians: dict[int, float] = {}
    for serial, debounce in enumerate(DEBOUNCES):
        served.serve_push(debounce)
        record, event_id = new_meeting(
            stack, start + timedelta(hours=serial), f"Латентность {serial}"
        )
        latencies(stack, record, event_id, 3, debounce)  # warm
        took, lost = latencies(stack, record, event_id, LATENCY_SAMPLES, debounce)
        median = statistics.median(took) if took else float("nan")
        p95 = statistics.quantiles(took, n=20)[18] if len(took) > 1 else float("nan")
        medians[debounce] = median
        row(
            f"an attendee's answer in Google → in the Bpium record, PUSH_DEBOUNCE_SECONDS="
            f"{debounce}, {LATENCY_SAMPLES} answers one at a time (median / p95)",
            f"{median:.0f} ms / {p95:.0f} ms ({lost} lost)",
            "none lost",
            lost == 0,
        )
    low, high = DEBOUNCES
    row(
        "",
        f"(polled every {POLL * 1000:.0f} ms; debounce {high} s / {low} s: "
        f"{medians[high] / medians[low]:.1f}× the median: a push's sync waits for its "
        "interval's end, the answers coming at random moments of it; deployed default 5 s)",
    )


# -- 3. no echo over 1,000 edits in both directions -------------------------------------------


def bench_no_echo(served: TwoWayStack, row: RowFn, start: datetime) -> None:
    """`EDITS` people's edits over `MEETINGS` meetings, in waves: each wave edits every
    meeting once, half in Bpium (title or agenda, real webhooks) and half in Google (a move,
    FROM_GOOGLE=start,end), then settles. Every Bpium write and Calendar write is then set
    against the edits that should cause it, meeting by meeting."""
    stack = served.stack
    served.serve_push(DEBOUNCES[-1])
    meetings = [
        new_meeting(stack, start + timedelta(days=1, hours=2 * i), f"Встреча {i}")
        for i in range(MEETINGS)
    ]
    event_of = dict(meetings)
    record_of = {e: r for r, e in meetings}
    bpium_edits: Counter[str] = Counter()
    google_edits: Counter[str] = Counter()
    last_text: dict[str, tuple[str, str]] = {}  # record → (field, value) of its last Bpium edit
    last_move: dict[str, datetime] = {}
    waves = EDITS // MEETINGS
    since = Since(stack)
    began = time.perf_counter()
    wave_times: list[float] = []
    for wave in range(waves):
        wave_began = time.perf_counter()
        for i, (record, event_id) in enumerate(meetings):
            if (i + wave) % 2 == 0:
                field = TITLE if wave % 4 < 2 else AGENDA
                text = f"Встреча {i}, правка {wave}"
                stack.bpium.update_record(stack.meetings, record, {field: text})
                last_text[record] = (field, text)
                bpium_edits[record] += 1
            else:
                moved = start + timedelta(days=1, hours=2 * i, minutes=5 * (wave + 1))
                move(stack, event_id, moved)
                last_move[record] = moved
                google_edits[record] += 1
        settle(stack)
        wave_times.append(time.perf_counter() - wave_began)
    took = time.perf_counter() - began

    calendar_writes, conflicts, other_calendar = calendar_writes_of(since, record_of)
    bpium_writes, other_bpium = bpium_writes_of(since)
    records = list(event_of)
    extra_bpium = sum(max(0, bpium_writes[r] - google_edits[r]) for r in records) + other_bpium
    missing_bpium = sum(max(0, google_edits[r] - bpium_writes[r]) for r in records)
    extra_calendar = (
        sum(max(0, calendar_writes[r] - bpium_edits[r]) for r in records) + other_calendar
    )
    missing_calendar = sum(max(0, bpium_edits[r] - calendar_writes[r]) for r in records)
    lost = lost_edits(stack, meetings, last_move, last_text)
    deliveries = since.deliveries()
    ours = [answered(d) for d in deliveries if d["body"].get("user", {}).get("id") == API_USER_ID]
    people = [answered(d) for d in deliveries if d["body"].get("user", {}).get("id") != API_USER_ID]
    retried = sum(1 for a in since.attempts() if not (a["status"] and 200 <= a["status"] < 300))
    counts = since.counts()
    total_bpium, total_calendar = sum(bpium_writes.values()), sum(calendar_writes.values())
    n_bpium, n_google = sum(bpium_edits.values()), sum(google_edits.values())
    row(
        f"{n_bpium + n_google:,} people's edits over {MEETINGS} meetings ({n_bpium} in Bpium: "
        f"title/agenda; {n_google} in Google: moves), in {waves} waves of {MEETINGS} at once, "
        f"PUSH_DEBOUNCE_SECONDS={served.debounce}: writes not caused by a person's edit "
        "(Bpium / Calendar)",
        f"{extra_bpium} / {extra_calendar} (Bpium PATCHes {total_bpium} for {n_google} Google "
        f"edits; Calendar writes {total_calendar} for {n_bpium} Bpium edits; missing "
        f"{missing_bpium} / {missing_calendar}; {conflicts} Calendar 412s) in {took:.0f} s "
        f"(a wave settles in {statistics.median(wave_times):.1f} s, median)",
        "0 / 0, none missing",
        extra_bpium == extra_calendar == missing_bpium == missing_calendar == 0,
    )
    row(
        f"the {n_bpium + n_google:,} edits: webhooks of our own Bpium writes (by the API "
        f"user, id {API_USER_ID}) / of people's edits; pushes → Calendar reads; tasks retried",
        f"{tally(ours)} / {tally(people)}; {counts['pushes']} → {counts['calendar_list']}; "
        f"{retried}",
        f"{n_google} ignored / {n_bpium} queued",
        len(ours) == n_google
        and all(o.startswith("ignored") for o in ours)
        and len(people) == n_bpium
        and all(p == "queued" for p in people),
    )
    row(
        "the edits' end state: meetings whose record or event lost a person's last edit",
        f"{len(lost)} of {MEETINGS}" + (f" ({'; '.join(lost[:3])})" if lost else ""),
        "0",
        not lost,
    )


def calendar_writes_of(since: Since, record_of: Mapping[str, str]) -> tuple[Counter[str], int, int]:
    """Calendar writes that succeeded, by the record of their event; the 412s (a write
    refused for a stale etag, then retried); and any other write."""
    writes: Counter[str] = Counter()
    conflicts = other = 0
    for call in since.calendar():
        if call.method == "GET":
            continue
        found = EVENT_RE.search(call.path)
        if found and found.group(1) in record_of and call.status < 300:
            writes[record_of[found.group(1)]] += 1
        elif call.status == 412:
            conflicts += 1
        else:
            other += 1
    return writes, conflicts, other


def bpium_writes_of(since: Since) -> tuple[Counter[str], int]:
    """Bpium record PATCHes that succeeded, by record; and any other write."""
    writes: Counter[str] = Counter()
    other = 0
    for call in since.bpium():
        if call.method == "GET":
            continue
        found = RECORD_RE.search(call.path)
        if found and call.method == "PATCH" and call.status < 300:
            writes[found.group(1)] += 1
        else:
            other += 1
    return writes, other


def lost_edits(
    stack: Stack,
    meetings: list[tuple[str, str]],
    last_move: Mapping[str, datetime],
    last_text: Mapping[str, tuple[str, str]],
) -> list[str]:
    """The meetings whose record or event does not hold a person's last edit."""
    lost = []
    for record, event_id in meetings:
        event = stack.google.event("primary", event_id) or {}
        now = values(stack, record)
        if record in last_move:
            expected = stamp(last_move[record])
            there = stamp(datetime.fromisoformat(event["start"]["dateTime"]).astimezone(UTC))
            if now.get(START) != expected or there != expected:
                lost.append(f"{record}: start {now.get(START)} / Google {there} ≠ {expected}")
        if record in last_text:
            field, text = last_text[record]
            held = event.get("summary") if field == TITLE else event.get("description")
            if text not in str(held or ""):
                lost.append(f"{record}: field {field} {text!r} not in the event")
    return lost


# -- the section --------------------------------------------------------------------------------


def bench(row: RowFn) -> list[str]:
    """Measures, reporting each row through `row`; returns the section's notes."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-ins' request lines
    began = time.perf_counter()
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    with two_way_stack() as served:
        served.serve_push(DEBOUNCES[0])
        watch(served)
        bench_per_push(served, row, start)
        bench_latency(served, row, start + timedelta(days=1))
        bench_no_echo(served, row, start + timedelta(days=2))
    took = time.perf_counter() - began
    return [*NOTES, "", f"This section's run took {took:.0f} s."]


def section(notes: list[str], lines: list[str]) -> list[str]:
    return [
        "",
        HEADING,
        "",
        *notes,
        "",
        "| measure | value | target | |",
        "|---|---|---|---|",
        *lines,
    ]


def replace_section(text: str, new: list[str]) -> str:
    """`text` (docs/PERFORMANCE.md) with its Google → Bpium section replaced (or added)."""
    kept = text.rstrip("\n").split("\n")
    if HEADING in kept:
        at = kept.index(HEADING)
        after = next((i for i in range(at + 1, len(kept)) if kept[i].startswith("## ")), len(kept))
        kept = kept[:at] + kept[after:]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept + new) + "\n"


def main() -> None:
    lines: list[str] = []
    missed = 0

    def row(measure: str, value: str, target: str = "", ok: bool | None = None) -> None:
        nonlocal missed
        mark = "" if ok is None else ("✔" if ok else "✘")
        missed += ok is False
        lines.append(f"| {measure} | {value} | {target} | {mark} |")
        print(lines[-1], flush=True)

    print("| measure | value | target | |\n|---|---|---|---|", flush=True)
    notes = bench(row)
    when = f"Measured on its own ({__spec__.name if __spec__ else 'bench_two_way'}) on "
    notes[-1] += f" {when}{datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    old = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Performance\n"
    REPORT.write_text(replace_section(old, section(notes, lines)), encoding="utf-8")
    print(f"\nwritten to {REPORT.relative_to(ROOT)}; {missed} target(s) missed", flush=True)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
