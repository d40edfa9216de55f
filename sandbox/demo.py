"""`make demo`: against a running `make run`, create, change and delete a meeting in the
Bpium stand-in (through its REST API, as a person's edit would) and show the calendar event
after each step. Exits non-zero if any step did not sync.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from sandbox.bpium import DEMO_LOGIN, DEMO_PASSWORD
from sandbox.stack import PORTS

BPIUM = f"http://127.0.0.1:{PORTS['bpium']}/api/v1"
GOOGLE = f"http://127.0.0.1:{PORTS['google']}"
MEETINGS = "7"
TIMEOUT = 15.0


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


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    print(f"FAILED: {what} did not happen within {TIMEOUT:.0f} s", file=sys.stderr)
    sys.exit(1)


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
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    record = bpium(
        "POST",
        f"/catalogs/{MEETINGS}/records",
        json={
            "values": {
                "2": "Демо: планёрка",
                "3": stamp(start),
                "4": stamp(start + timedelta(hours=1)),
                "5": "Повестка: итоги недели",
                "6": [{"id": "1"}, {"id": "2"}],
                "7": [{"contact": "guest@partner.example", "comment": "гость"}],
            }
        },
    )["id"]
    print(f"Created meeting record {record} in Bpium's «Встречи».")
    event = wait_for("the event's creation", lambda: event_of(record))
    written = wait_for(
        "the write-back of the event id",
        lambda: bpium("GET", f"/catalogs/{MEETINGS}/records/{record}")["values"].get("8"),
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


if __name__ == "__main__":
    main()
