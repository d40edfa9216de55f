"""`make demo`: against a running `make run`, create, change and delete a meeting in the
Bpium stand-in (through its REST API, as a person's edit would) and show the calendar event
after each step; then the way back: in the Google stand-in (its admin routes, as a person
in Google's UI) an attendee accepts, the event moves and is cancelled, and the Bpium record
follows each time. Exits non-zero if any step did not sync.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from sandbox.bpium import DEMO_LOGIN, DEMO_PASSWORD
from sandbox.stack import PORTS

BPIUM_ROOT = f"http://127.0.0.1:{PORTS['bpium']}"
BPIUM = f"{BPIUM_ROOT}/api/v1"
GOOGLE = f"http://127.0.0.1:{PORTS['google']}"
MEETINGS = "7"
TIMEOUT = 15.0
# The seeded Meetings catalog's fields (sandbox.bpium.ROLES).
TITLE, START, END, AGENDA, EMPLOYEES, GUESTS, EVENT_ID = "2", "3", "4", "5", "6", "7", "8"
RESPONSES, STATUS = "21", "22"
GUEST = "guest@partner.example"
ENV_FILE = Path(__file__).resolve().parent.parent / ".sandbox" / "local.env"


def bpium(method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(
        method, BPIUM + path, auth=(DEMO_LOGIN, DEMO_PASSWORD), timeout=10, **kwargs
    )
    response.raise_for_status()
    return response.json() if response.content else None


def event_of(record_id: str) -> dict[str, Any] | None:
    items = requests.get(f"{GOOGLE}/_sandbox/calendars/primary/events", timeout=10).json()["items"]
    mine = [
        e
        for e in items
        if e.get("extendedProperties", {}).get("private", {}).get("bpiumRecordId") == record_id
    ]
    return mine[0] if mine else None


def wait_for(what: str, check: Callable[[], Any], pause: float = 0.2) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(pause)
    print(f"FAILED: {what} did not happen within {TIMEOUT:.0f} s", file=sys.stderr)
    sys.exit(1)


def stamp(t: datetime) -> str:
    """A moment as Bpium writes dates: UTC, milliseconds, Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def record_values(record: str) -> dict[str, Any]:
    return dict(bpium("GET", f"/catalogs/{MEETINGS}/records/{record}")["values"])


def create_meeting(
    start: datetime, title: str, agenda: str, employees: list[str], guest_comment: str
) -> tuple[str, dict[str, Any], str]:
    """A one-hour meeting with GUEST, made in Bpium as a person would; waits for its event
    and the event id's write-back. Returns the record, the event and the id written back."""
    record = bpium(
        "POST",
        f"/catalogs/{MEETINGS}/records",
        json={
            "values": {
                TITLE: title,
                START: stamp(start),
                END: stamp(start + timedelta(hours=1)),
                AGENDA: agenda,
                EMPLOYEES: [{"id": e} for e in employees],
                GUESTS: [{"contact": GUEST, "comment": guest_comment}],
            }
        },
    )["id"]
    print(f"Created meeting record {record} in Bpium's «Встречи».")
    event = wait_for("the event's creation", lambda: event_of(record))
    written = wait_for(
        "the write-back of the event id", lambda: record_values(record).get(EVENT_ID)
    )
    return record, event, written


def record_patches(record: str) -> int:
    """PATCHes of the record the Bpium stand-in has served: the integration's writes."""
    calls = requests.get(f"{BPIUM_ROOT}/_sandbox/calls", timeout=10).json()["calls"]
    return sum(
        1 for c in calls if c["method"] == "PATCH" and c["path"].endswith(f"/records/{record}")
    )


def person(action: str, event_id: str, patch: dict[str, Any] | None = None) -> dict[str, Any]:
    """A person's edit (`person-edit`) or deletion (`person-delete`) in Google's UI."""
    response = requests.post(
        f"{GOOGLE}/_sandbox/calendars/primary/events/{event_id}/{action}",
        json=patch or {},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def from_google() -> set[str]:
    """The roles `make run` lets follow Google (FROM_GOOGLE in the env file it writes)."""
    try:
        lines = ENV_FILE.read_text().splitlines()
    except OSError:
        return set()
    for line in lines:
        name, _, value = line.partition("=")
        if name == "FROM_GOOGLE":
            return {r.strip() for r in value.strip("'\"").split(",") if r.strip()}
    return set()


def channels() -> list[dict[str, Any]]:
    return list(requests.get(f"{GOOGLE}/_sandbox/channels", timeout=10).json()["items"])


def settle(seconds: float = 2.0) -> None:
    """Time for echoes to show: our Bpium write's webhook, a push of our own Calendar write."""
    time.sleep(seconds)


def show_record(title: str, record: str, started: float | None = None) -> None:
    values = record_values(record)
    took = f" ({time.monotonic() - started:.1f} s after the change in Google)" if started else ""
    shown = {
        "Дата начала (3)": values.get(START),
        "Дата окончания (4)": values.get(END),
        "Ответы участников (21)": values.get(RESPONSES),
        "Статус в календаре (22)": values.get(STATUS),
    }
    print(f"\n== {title}{took}")
    print(json.dumps(shown, ensure_ascii=False, indent=2))


def show(title: str, event: dict[str, Any]) -> None:
    keep = ("id", "status", "summary", "start", "end", "reminders")
    shown = {k: event[k] for k in keep if k in event}
    shown["attendees"] = [a["email"] for a in event.get("attendees", [])]
    print(f"\n== {title}")
    print(json.dumps(shown, ensure_ascii=False, indent=2))


def main() -> None:
    try:
        requests.get(f"http://127.0.0.1:{PORTS['functions']}/", timeout=3)
    except requests.ConnectionError:
        print("Nothing listens on port 8080: start `make run` first.", file=sys.stderr)
        sys.exit(2)
    one_way()
    two_way()


def one_way() -> None:
    """Bpium → Google: create, change, delete a meeting; the event follows."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    record, event, written = create_meeting(
        start, "Демо: планёрка", "Повестка: итоги недели", ["1", "2"], "гость"
    )
    show(f"Created: event {event['id']} (record field «Код события» = {written})", event)

    bpium(
        "PATCH",
        f"/catalogs/{MEETINGS}/records/{record}",
        json={
            "values": {
                "2": "Демо: планёрка (перенесена)",
                "3": stamp(start + timedelta(hours=2)),
                "4": stamp(start + timedelta(hours=3)),
            }
        },
    )
    event = wait_for(
        "the event's update",
        lambda: (e := event_of(record)) and e["summary"].endswith("(перенесена)") and e,
    )
    show("Changed: new title and time", event)

    bpium("DELETE", f"/catalogs/{MEETINGS}/records/{record}")
    event = wait_for(
        "the event's cancellation",
        lambda: (e := event_of(record)) and e["status"] == "cancelled" and e,
    )
    show("Deleted: the event is cancelled", event)
    print("\nAll three steps synced.")


def two_way() -> None:
    """Google → Bpium: a person answers, moves and cancels the event in Google; the record
    follows (answers to 21, the move to 3 and 4 under FROM_GOOGLE=start,end, the status to
    22), our own writes echo nowhere, and the record is never deleted."""
    print("\n\n#### The way back: what people do in Google reaches the Bpium record")
    wait_for("a live push channel on the calendar (`make run` runs watch_calendars)", channels)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    record, event, _ = create_meeting(
        start, "Демо: встреча с партнёром", "Повестка: договор", ["1"], "партнёр"
    )
    settle()
    show(f"Created: event {event['id']}", event)
    writes = Writes(record)
    print(f"Bpium writes to record {record} so far: {writes.seen} (the event id's write-back)")

    # An attendee accepts: Google changes the organizer's copy of the event.
    event = event_of(record) or event
    people = [
        {**a, "responseStatus": "accepted"} if a["email"] == GUEST else a
        for a in event.get("attendees", [])
    ]
    started = time.monotonic()
    person("person-edit", event["id"], {"attendees": people})
    print(f"\n-> In Google, {GUEST} accepts the invitation.")
    line = f"{GUEST}: accepted"
    wait_for(
        "the answer in «Ответы участников» (21)",
        lambda: line in str(record_values(record).get(RESPONSES) or "").splitlines(),
        pause=0.05,
    )
    show_record("Accepted: the record's answers follow", record, started)
    writes.step("the answer")

    if {"start", "end"} <= from_google():
        move(record, start, writes)
    else:
        print(
            "\n(skipped: a person's move in Google; FROM_GOOGLE in .sandbox/local.env "
            "does not include start,end)"
        )

    # A person deletes the event in Google's UI.
    started = time.monotonic()
    person("person-delete", event["id"])
    print("\n-> In Google, a person deletes (cancels) the event.")
    wait_for(
        "«Статус в календаре» (22) = cancelled",
        lambda: record_values(record).get(STATUS) == "cancelled",
        pause=0.05,
    )
    show_record("Cancelled: the record says so, and is still there", record, started)
    writes.step("the cancellation")
    print(f"The event's status in Google: {(event_of(record) or {}).get('status')} (not revived)")
    if writes.echoes:
        print(f"\nFAILED: our own writes echoed: {'; '.join(writes.echoes)}", file=sys.stderr)
        sys.exit(1)
    print("\nEvery change made in Google reached Bpium, once.")


class Writes:
    """The integration's writes to one record, step by step: each change in Google is one
    Bpium write, and that write's own webhook costs nothing more."""

    def __init__(self, record: str) -> None:
        self.record = record
        self.seen = record_patches(record)
        self.echoes: list[str] = []

    def step(self, what: str) -> None:
        settle()
        now = record_patches(self.record)
        print(f"Bpium writes to the record for {what}: {now - self.seen} (expected 1)")
        if now - self.seen != 1:
            self.echoes.append(f"{what} cost {now - self.seen} Bpium writes")
        self.seen = now


def move(record: str, start: datetime, writes: Writes) -> None:
    """A person moves the event an hour later in Google's UI; the record's dates follow."""
    event = event_of(record) or {}
    moved = {
        key: {
            "dateTime": (
                datetime.fromisoformat(event[key]["dateTime"]) + timedelta(hours=1)
            ).isoformat(timespec="seconds"),
            **({"timeZone": event[key]["timeZone"]} if "timeZone" in event[key] else {}),
        }
        for key in ("start", "end")
    }
    started = time.monotonic()
    person("person-edit", event["id"], moved)
    print(f"\n-> In Google, a person moves the event an hour later: {moved['start']['dateTime']}.")
    new_start, new_end = stamp(start + timedelta(hours=1)), stamp(start + timedelta(hours=2))
    wait_for(
        "the move in «Дата начала» (3) and «Дата окончания» (4)",
        lambda: (v := record_values(record)).get(START) == new_start and v.get(END) == new_end,
        pause=0.05,
    )
    show_record("Moved: the record's start and end follow (FROM_GOOGLE=start,end)", record, started)
    writes.step("the move")
    after = (event_of(record) or {}).get("start", {}).get("dateTime")
    print(f"The event still starts at {after} (our write to Bpium did not move it back)")


if __name__ == "__main__":
    main()
