"""Cloud Functions entry points: each a plain function that hands its request to one use case."""

import flask
import functions_framework

from bpium_calendar import web, worker
from bpium_calendar.services import services


@functions_framework.http
def on_meeting_created(request: flask.Request) -> flask.Response:
    """Bpium webhook `record.created`: create the event, write its id back."""
    return web.meeting_webhook("on_meeting_created", request, "record.created", services)


@functions_framework.http
def on_meeting_updated(request: flask.Request) -> flask.Response:
    """Bpium webhook `record.updated`: follow the change; ignore our own write-back."""
    return web.meeting_webhook("on_meeting_updated", request, "record.updated", services)


@functions_framework.http
def on_meeting_deleted(request: flask.Request) -> flask.Response:
    """Bpium webhook `record.deleted`: cancel the event."""
    return web.meeting_webhook("on_meeting_deleted", request, "record.deleted", services)


@functions_framework.http
def sync_meeting(request: flask.Request) -> flask.Response:
    """Cloud Tasks (OIDC): one queued webhook's sync; 503 asks for a retry, 2xx ends it."""
    return worker.sync_task("sync_meeting", request, services)


@functions_framework.http
def on_calendar_push(request: flask.Request) -> flask.Response:
    """Google push notification (channel token): queue the calendar's sync; 200 at once."""
    return web.calendar_push("on_calendar_push", request, services)


@functions_framework.http
def sync_calendar(request: flask.Request) -> flask.Response:
    """Cloud Tasks (OIDC): a calendar's changes since its sync token, written to Bpium."""
    return worker.calendar_task("sync_calendar", request, services)


@functions_framework.http
def list_events(request: flask.Request) -> flask.Response:
    """Bpium scenario (API key): events of a calendar and period, all pages, flat JSON."""
    return web.scenario_call(
        "list_events", request, services, lambda ready, params: ready.scenarios.list_events(params)
    )


@functions_framework.http
def create_calendar(request: flask.Request) -> flask.Response:
    """Bpium scenario (API key): create (or find) a calendar and share it."""
    return web.scenario_call(
        "create_calendar",
        request,
        services,
        lambda ready, params: ready.scenarios.create_calendar(params),
    )


@functions_framework.http
def refresh_tokens(request: flask.Request) -> flask.Response:
    """Cloud Scheduler (OIDC): keep the stored Google access token fresh; prune old versions."""
    return web.scheduled_job(
        "refresh_tokens", request, services, lambda ready: ready.token_refresher.run()
    )


@functions_framework.http
def reconcile(request: flask.Request) -> flask.Response:
    """Cloud Scheduler (OIDC): make the calendar match Bpium over the window; heals drops."""
    return web.scheduled_job("reconcile", request, services, lambda ready: ready.reconciler.run())


@functions_framework.http
def watch_calendars(request: flask.Request) -> flask.Response:
    """Cloud Scheduler (OIDC): one live push channel per calendar; renew before expiry."""
    return web.scheduled_job(
        "watch_calendars", request, services, lambda ready: ready.watcher.run()
    )
