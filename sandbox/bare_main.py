"""The bench's baseline: functions-framework functions that import the same libraries as
ours (named in BARE_IMPORTS: what our entry point had loaded after its first request) and
do nothing, so that a cold start's difference is what our own code adds. One function for
each entry point of functions/main.py, under the same name."""

import importlib
import os

import functions_framework

LOADED = [importlib.import_module(m) for m in os.environ.get("BARE_IMPORTS", "").split(",") if m]


def _ok() -> dict[str, int]:
    return {"ok": len(LOADED)}


@functions_framework.http
def on_meeting_created(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def on_meeting_updated(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def on_meeting_deleted(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def sync_meeting(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def on_calendar_push(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def sync_calendar(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def list_events(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def create_calendar(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def refresh_tokens(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def reconcile(request: object) -> dict[str, int]:
    return _ok()


@functions_framework.http
def watch_calendars(request: object) -> dict[str, int]:
    return _ok()
