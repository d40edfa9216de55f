"""`make bench`'s rows under Bpium's limit: a burst of webhooks through the queue, and a
reconcile of 20,000 meetings within the jobs' share of the budget.

Both would take minutes in real time (the limit is 100 requests per 30 s), so they run with
time scaled by a factor k: Bpium's window, our limiters' window (`BPIUM_RATE_WINDOW_SECONDS`),
the queue's rate and backoff and the scheduled job's timeout all go k times faster,
while every count (requests per window, tasks in a burst, dispatches at once, threads) stays
as deployed. A scaled run's seconds times k is its real-time equivalent, and a
conservative one: our own processing, the stand-ins' and the added latency are real seconds
that get multiplied too.

Also here, shared with `sandbox.bench`: added latency, peak memory, call timestamps, the
queue's settling and pausing, the worker's task bodies, a quick stop of a function process.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from sandbox import bpium
from sandbox.common import Call, Fault, Recorder
from sandbox.processes import free_port, start_function, stop, wait_listening
from sandbox.stack import PRODUCTION_QUEUE, QUEUE, WEBHOOK_SECRET, WEBHOOKS, Stack

RowFn = Callable[..., None]
# How much faster time runs (it must divide 30: BPIUM_RATE_WINDOW_SECONDS is whole seconds).
# The burst is bound by the queue's rate, and little of its time is our own: 10. The big
# reconcile spends most of its time processing (its own and the stand-ins' paging through
# 20,000 records), which the factor multiplies: 5 keeps its equivalent nearer real time
# and its run within about two minutes.
BURST_SCALE = 10
RECONCILE_SCALE = 5
WINDOW = 30.0  # DESIGN §5: Bpium allows 100 requests per 30 s per account
BPIUM_LIMIT = 100
# infra/main.tf, locals: bpium_budget (per instance), threads, and each function's timeout.
BUDGET = {"worker": 60, "calendar_worker": 12, "jobs": 20, "fallback": 5}
RATE = PRODUCTION_QUEUE["max_dispatches_per_second"]  # infra/queue.tf
THREADS = 8
TIMEOUT = {"webhook": 60, "sync_meeting": 300, "reconcile": 1800}
BURST = 500
BIG_RECONCILE = 20_000
LATENCY = 0.020
MEETINGS = "7"
EVENT_ID_FIELD = "8"
# Counted where the calls arrive, a share may show a call or two more than our limiter lets
# through in its own window: a call's transit (milliseconds) moves it relative to the
# window's edge, a larger part of a scaled window than of 30 s.
SHARE_NOTE = "counted on arrival, a call or two more may show"


# -- shared helpers --------------------------------------------------------------------------


@contextmanager
def latency(stack: Stack, seconds: float) -> Iterator[None]:
    """Every call to every stand-in waits `seconds` first, like a real network."""
    recorders: list[Recorder] = [
        stack.google.recorder,
        stack.bpium.recorder,
        stack.secrets.recorder,
        stack.tasks.recorder,
    ]
    for recorder in recorders:
        recorder.add_fault(Fault(re.compile("."), None, None, count=10**9, delay=seconds))
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.clear_faults()


@contextmanager
def peak_memory() -> Iterator[list[float]]:
    result: list[float] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()


@contextmanager
def call_times(recorder: Recorder) -> Iterator[list[tuple[float, Call]]]:
    """(monotonic time, call) of every call the recorder logs meanwhile: `Call` has no time,
    so the bench wraps `record` (the stand-in's status is filled in on the same object)."""
    stamps: list[tuple[float, Call]] = []
    original = recorder.record

    def record(call: Call) -> None:
        stamps.append((time.monotonic(), call))  # list.append is atomic
        original(call)

    recorder.record = record  # type: ignore[method-assign]
    try:
        yield stamps
    finally:
        del recorder.record


def quick_stop(process: subprocess.Popen[bytes]) -> None:
    """Ends a functions-framework process at once: SIGINT is gunicorn's quick shutdown (its
    workers too); SIGTERM, the graceful one, takes over 2 s each."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        stop(process)


@contextmanager
def queue_paused(stack: Stack) -> Iterator[None]:
    """Tasks wait in the queue (the worker's calls stay out of a measure); then dropped."""
    stack.tasks.pause()
    try:
        yield
    finally:
        stack.tasks.reset()  # also resumes


def task_body(record: str, values: dict[str, Any], serial: int) -> bytes:
    """What `on_meeting_created` queues for the worker (jobs.SyncJob's JSON)."""
    from bpium_calendar.jobs import SyncJob

    job = SyncJob("record.created", "7", record, values, hook_id="bench", sequence_id=str(serial))
    return json.dumps(job.to_json(), ensure_ascii=False).encode()


def post_task(client: Any, body: bytes, serial: int) -> Any:
    headers = {"X-CloudTasks-TaskName": f"bench-{serial}", "X-CloudTasks-TaskRetryCount": "0"}
    return client.post("/", data=body, headers=headers, content_type="application/json")


def most_in_window(times: list[float], window: float) -> int:
    """The most calls in any sliding window of `window` seconds."""
    ordered, most, first = sorted(times), 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def meeting_values(start: datetime, title: str, employees: list[str]) -> dict[str, Any]:
    return {
        "2": title,
        "3": stamp(start),
        "4": stamp(start + timedelta(minutes=45)),
        "6": [{"id": e} for e in employees],
        "7": [{"contact": "guest@partner.example"}],
    }


@contextmanager
def scaled(stack: Stack, k: int) -> Iterator[float]:
    """Bpium's limit enforced at the stand-in, its window and the queue's clock scaled;
    yields the scaled window. Everything goes back (and is emptied) afterwards."""
    if WINDOW % k:
        raise ValueError("k must divide 30: BPIUM_RATE_WINDOW_SECONDS is whole seconds")
    window = WINDOW / k
    saved = stack.bpium.rate_limit, stack.bpium.rate_window
    fresh(stack)
    stack.bpium.rate_limit, stack.bpium.rate_window = BPIUM_LIMIT, window
    stack.tasks.time_scale = 1 / k  # backoff, retry duration and tombstones
    rate = PRODUCTION_QUEUE["max_dispatches_per_second"]
    stack.tasks.add_queue(
        QUEUE,
        **{
            **PRODUCTION_QUEUE,
            "max_dispatches_per_second": rate * k,
            # The burst the stand-in picks for the deployed rate (ceil(2.4) = 3 tasks): a
            # count, so it is not scaled with the rate.
            "max_burst_size": math.ceil(rate),
        },
    )
    try:
        yield window
    finally:
        stack.bpium.hooks.clear()
        stack.bpium.rate_limit, stack.bpium.rate_window = saved
        stack.tasks.time_scale = 1.0
        stack.tasks.add_queue(QUEUE, **PRODUCTION_QUEUE)
        fresh(stack)


def fresh(stack: Stack) -> None:
    """No records but the demo data, no events, tasks, calls or hooks."""
    stack.bpium.hooks.clear()
    stack.bpium.wait_idle(30)
    stack.bpium.reset()
    bpium.seed(stack.bpium)
    stack.google.reset()
    stack.tasks.reset()
    stack.secrets.recorder.reset_calls()


# -- a burst of 500 created meetings ---------------------------------------------------------


def serve_functions(stack: Stack, window: float) -> tuple[list[Any], dict[str, str]]:
    """The webhooks and the worker, each a functions-framework process (gunicorn with the
    deployed threads) with its deployed BPIUM_RATE_LIMIT and timeout; windows scaled."""
    worker_port = free_port()
    base = {
        **os.environ,
        **stack.env,
        "SYNC_WORKER_URL": f"http://127.0.0.1:{worker_port}/",
        "BPIUM_RATE_WINDOW_SECONDS": str(int(window)),
        "THREADS": str(THREADS),
        "LOG_LEVEL": "WARNING",
    }
    specs = {
        "sync_meeting": (BUDGET["worker"], TIMEOUT["sync_meeting"], worker_port),
        "on_meeting_created": (BUDGET["fallback"], TIMEOUT["webhook"], None),
        "on_meeting_updated": (BUDGET["fallback"], TIMEOUT["webhook"], None),
    }
    processes, urls = [], {}
    try:
        for name, (limit, timeout, port) in specs.items():
            env = {
                **base,
                "BPIUM_RATE_LIMIT": str(limit),
                "FUNCTION_TIMEOUT_SECONDS": str(timeout),
            }
            process, url = start_function(name, env, port=port)
            processes.append(process)
            wait_listening(url, process)
            urls[name] = url
    except BaseException:
        for process in processes:
            quick_stop(process)
        raise
    return processes, urls


def wait_for(done: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(step)
    return done()


def settle(stack: Stack, timeout: float = 60.0) -> None:
    """Until the queue and Bpium's webhooks are both idle at once (a sync's write-back fires
    a webhook; a webhook may queue a task)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if stack.tasks.wait_idle(5) and stack.bpium.wait_idle(5) and stack.tasks.wait_idle(0):
            return
    raise TimeoutError("the queue and the webhooks did not settle")


def written_back(stamps: list[tuple[float, Call]]) -> dict[str, float]:
    """Record path → when its write-back (a PATCH Bpium answered 200) arrived."""
    return {c.path: t for t, c in stamps if c.method == "PATCH" and c.status == 200}


def bench_burst(stack: Stack, row: RowFn) -> None:
    """500 meetings created at once in Bpium, its webhooks subscribed: every event made and
    its id written back, within Bpium's limit, the write-backs' echoes costing nothing."""
    with scaled(stack, BURST_SCALE) as window:
        processes, urls = serve_functions(stack, window)
        try:
            for name in ("on_meeting_created", "on_meeting_updated"):
                stack.bpium.add_hook(urls[name], WEBHOOKS[name], MEETINGS, WEBHOOK_SECRET)
            _burst(stack, row, window)
        finally:
            for process in processes:
                quick_stop(process)


def _burst(stack: Stack, row: RowFn, window: float) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    # Warm instances, as under steady use: secrets, the catalog's schema, employees' e-mails.
    warm = stack.bpium.put_record(MEETINGS, meeting_values(start, "warm-up", ["1", "2", "3"]))
    if not wait_for(lambda: _event_id(stack, warm) is not None, 60):
        raise RuntimeError("the warm-up meeting got no event")
    settle(stack)
    time.sleep(window)  # the warm-up's calls leave Bpium's window
    seen, tried = len(stack.bpium.deliveries), len(stack.tasks.attempts)
    for recorder in (stack.google.recorder, stack.tasks.recorder):
        recorder.reset_calls()
    physical = BURST * window / BPIUM_LIMIT
    with call_times(stack.bpium.recorder) as stamps, latency(stack, LATENCY):
        began = time.monotonic()
        records = [
            stack.bpium.put_record(
                MEETINGS,
                meeting_values(start + timedelta(minutes=30 * (i + 1)), f"B{i}", [str(1 + i % 3)]),
            )
            for i in range(BURST)
        ]
        paths = {f"/api/v1/catalogs/{MEETINGS}/records/{r}" for r in records}
        wait_for(lambda: paths <= written_back(stamps).keys(), 10 * physical, step=0.05)
        settle(stack, timeout=10 * physical)
    done = {p: t for p, t in written_back(stamps).items() if p in paths}
    took = (max(done.values()) - began) if len(done) == len(paths) else math.inf
    events = [_event_id(stack, r) for r in records]
    exist = sum(
        1
        for e in events
        if e and (stack.google.event("primary", e) or {}).get("status") == "confirmed"
    )
    deliveries = stack.bpium.deliveries[seen:]
    created = [d for d in deliveries if d["event"] == "record.created"]
    echoes = [d for d in deliveries if d["event"] == "record.updated"]
    failed = sum(1 for d in deliveries if d["status"] is None or d["status"] >= 500)
    queued = sum(1 for d in created if _status(d) == "queued")
    ignored = sum(1 for d in echoes if _status(d) == "ignored")
    calls = [c for _, c in stamps if c.path.startswith("/api/")]
    refused = sum(1 for c in calls if c.status == 429)
    most = most_in_window([t for t, c in stamps if c.path.startswith("/api/")], window)
    tasks = stack.tasks.recorder.count("POST", r"/tasks$")
    dispatches = stack.tasks.attempts[tried:]
    retried = sum(1 for a in dispatches if not (a["status"] and 200 <= a["status"] < 300))
    calendar = len(stack.google.recorder.snapshot())
    k = BURST_SCALE
    real, limit = took * k, physical * k
    row(
        f"burst of {BURST} meetings created at once (Bpium webhooks → queue → worker), "
        f"time-scaled ×{k}: until every event exists with its id written back",
        f"{took:.1f} s scaled = {real:.0f} s real-time equivalent vs {limit:.0f} s physical "
        f"limit ({real / limit:.2f}×); {exist} of {BURST} events there",
        f"≤ 1.5× ({1.5 * limit:.0f} s)",
        real <= 1.5 * limit and exist == BURST,
    )
    row(
        "",
        f"({BURST} × 30 s / {BPIUM_LIMIT} = {limit:.0f} s; the deployed budget gives the "
        f"worker {BUDGET['worker']} per 30 s and the queue {RATE:g} tasks/s: {BURST / RATE:.0f} s "
        f"at best. Windows {window:.0f} s, queue {RATE * k:g} tasks/s, burst 3, "
        f"{LATENCY * 1000:.0f} ms per call; conservative: our own and the stand-ins' "
        f"processing are multiplied by {k} too)",
    )
    row(
        "burst: webhooks answered 5xx (or not at all)",
        f"{failed} of {len(deliveries)} ({queued} of {len(created)} created: queued; "
        f"{ignored} of {len(echoes)} write-back echoes: ignored)",
        "0",
        failed == 0 and queued == BURST and ignored == len(echoes) == BURST,
    )
    row(
        f"burst: Bpium 429s / most Bpium calls in any 30-s window (scaled: {window:.0f} s)",
        f"{refused} / {most} (the worker's share: {BUDGET['worker']}; {SHARE_NOTE})",
        f"0 / ≤ {BPIUM_LIMIT}",
        refused == 0 and most <= BPIUM_LIMIT,
    )
    row(
        "burst, per meeting: Bpium calls / Calendar calls / tasks created / worker retries",
        f"{len(calls) / BURST:.2f} / {calendar / BURST:.2f} / {tasks / BURST:.2f} / "
        f"{retried / BURST:.2f}",
        "1 / 1 / 1 / 0 (the echoes cost nothing)",
        len(calls) == calendar == tasks == BURST and retried == 0,
    )


def _event_id(stack: Stack, record_id: str) -> str | None:
    values = (stack.bpium.record(MEETINGS, record_id) or {}).get("values") or {}
    value = values.get(EVENT_ID_FIELD)
    return value if isinstance(value, str) and value else None


def _status(delivery: Mapping[str, Any]) -> str:
    try:
        answer = json.loads(delivery["response"] or "{}")
    except ValueError:
        return ""
    return str(answer.get("status", "")) if isinstance(answer, dict) else ""


# -- reconcile of 20,000 meetings ------------------------------------------------------------


def memory_of(process: Any) -> dict[str, float]:
    """VmRSS and VmHWM (peak) in MiB of the process serving the function: gunicorn's worker,
    the functions-framework process's child."""
    pid = process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    status = Path(f"/proc/{kids[0] if kids else pid}/status").read_text()
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    return {k: int(v) / 1024 for k, v in found.items()}


def bench_big_reconcile(stack: Stack, row: RowFn, one_by_one_per_meeting: float) -> None:
    """`reconcile` over 20,000 meetings, served as deployed (its own functions-framework
    process, the jobs' BPIUM_RATE_LIMIT), Bpium's limit enforced at the stand-in, against
    its function's timeout; its peak memory read from the kernel, not traced."""
    with scaled(stack, RECONCILE_SCALE) as window:
        start = datetime.now(UTC) + timedelta(hours=1)
        for i in range(BIG_RECONCILE):
            values = meeting_values(start + timedelta(minutes=6 * i), f"R{i}", [str(1 + i % 3)])
            stack.bpium.put_record(MEETINGS, values, fire=False)
        timeout = TIMEOUT["reconcile"] // RECONCILE_SCALE
        env = {
            **os.environ,
            **stack.env,
            "BPIUM_RATE_LIMIT": str(BUDGET["jobs"]),
            "BPIUM_RATE_WINDOW_SECONDS": str(int(window)),
            "FUNCTION_TIMEOUT_SECONDS": str(timeout),
            "THREADS": str(THREADS),
            "LOG_LEVEL": "WARNING",
        }
        process, url = start_function("reconcile", env)
        try:
            wait_listening(url, process)
            before = memory_of(process)
            with call_times(stack.bpium.recorder) as stamps, latency(stack, LATENCY):
                began = time.perf_counter()
                answer = requests.post(url + "/", timeout=timeout + 60)
                wall = time.perf_counter() - began
            after = memory_of(process)
        finally:
            quick_stop(process)
        calendar = len(stack.google.recorder.snapshot())
        secrets = len(stack.secrets.recorder.snapshot())
    counts = (
        answer.json()
        if answer.headers.get("Content-Type", "").startswith("application/json")
        else {}
    )
    calls = [c for _, c in stamps if c.path.startswith("/api/")]
    refused = sum(1 for c in calls if c.status == 429)
    most = most_in_window([t for t, c in stamps if c.path.startswith("/api/")], window)
    trips = len(calls) + calendar + secrets
    base = one_by_one_per_meeting * BIG_RECONCILE
    real = wall * RECONCILE_SCALE
    # Calls beyond the first window's share each wait for a later window: the floor the
    # budget alone sets, in real seconds.
    floor = max(0, math.ceil(len(calls) / BUDGET["jobs"]) - 1) * WINDOW
    done = answer.status_code == 200 and counts.get("created") == BIG_RECONCILE
    row(
        f"reconcile {BIG_RECONCILE:,} meetings, Bpium's limit enforced, the jobs' share "
        f"{BUDGET['jobs']} per 30 s, time-scaled ×{RECONCILE_SCALE}: wall time",
        f"{wall:.1f} s scaled = {real:.0f} s real-time equivalent; Bpium's budget alone "
        f"needs ≥ {floor:.0f} s; answer {answer.status_code}, created {counts.get('created')}",
        f"within its {TIMEOUT['reconcile']} s timeout",
        done and real <= TIMEOUT["reconcile"],
    )
    row(
        f"reconcile {BIG_RECONCILE:,} meetings: round trips; Bpium 429s / most Bpium calls "
        "in any 30-s window",
        f"{trips} vs {base:,.0f} one by one ({trips / base:.1%}; {len(calls)} Bpium, "
        f"{calendar} Calendar, {secrets} Secret Manager); {refused} / {most} (the jobs' "
        f"share: {BUDGET['jobs']}; {SHARE_NOTE})",
        f"≤ 3%; 0 / ≤ {BPIUM_LIMIT}",
        trips <= 0.03 * base and refused == 0 and most <= BPIUM_LIMIT,
    )
    row(
        f"reconcile {BIG_RECONCILE:,} meetings: peak memory of its process (RSS)",
        f"{after.get('VmHWM', 0):.0f} MiB ({before.get('VmRSS', 0):.0f} MiB before the run)",
    )
