"""Direct writes to the Google stand-in over its real API (as another client would)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests

from sandbox.stack import CLIENT_ID, SCOPES, Stack


def insert_event(stack: Stack, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
    token, _ = stack.google.issue_access_token(CLIENT_ID, SCOPES)
    response = requests.post(
        f"{stack.google_url}/calendar/v3/calendars/{calendar_id}/events",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def insert_legacy_event(
    stack: Stack,
    event_id: str,
    start: str = "2026-12-01T10:00:00+03:00",
    *,
    adopted_by: str | None = None,
    summary: str = "Old",
) -> None:
    """An event as Bpium's old BPMN scenario made it: its own id, none of our marks; or,
    with `adopted_by` (a record id), marked as that record's, as adoption leaves it."""
    begin = datetime.fromisoformat(start)
    body: dict[str, Any] = {
        "id": event_id,
        "summary": summary,
        "start": {"dateTime": begin.isoformat()},
        "end": {"dateTime": (begin + timedelta(hours=1)).isoformat()},
    }
    if adopted_by:
        marks = {"bpiumCatalogId": stack.meetings, "bpiumRecordId": adopted_by}
        body["extendedProperties"] = {"private": marks}
    insert_event(stack, "primary", body)
