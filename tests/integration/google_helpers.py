"""Direct writes to the Google stand-in over its real API (as another client would)."""

from __future__ import annotations

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
