"""The worker `sync_meeting`: Cloud Tasks' calls, each one job a webhook queued.

Cloud Tasks retries every answer that is not 2xx, with backoff, for days. So the worker
answers 2xx when the job is done or can never succeed (a meeting that cannot become an
event is logged at ERROR with its reason), and 503 only when a retry may help: Bpium or
Google unavailable, settings or credentials an operator can fix, a record others keep
writing. A 4xx or 502 would be retried all the same and loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask

from . import log
from .domain import load_json
from .errors import AppError, BadRequest, Unprocessable
from .jobs import SyncJob
from .retry import deadline_in
from .web import endpoint, read_body

if TYPE_CHECKING:
    from .services import Services

_COUNT = re.compile(r"\d{1,9}")
# Retries (10 s, 20 s, 40 s apart) after which a failing task logs at ERROR, not WARNING.
LOUD_AFTER_RETRIES = 3


def refused_for_good(exc: AppError) -> bool:
    """Whether no retry can help: the record's own data, or Google refusing the event
    body it makes (400). Access, credentials and settings can be fixed: those retry."""
    return isinstance(exc, Unprocessable | BadRequest) or exc.code == "calendar_refused"


def sync_task(
    name: str, request: flask.Request, services: Callable[[], Services]
) -> flask.Response:
    """`sync_meeting`: one queued webhook's job."""

    def work(ready: Services, body: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        job = SyncJob.from_json(load_json(body))
        fields.update(job.log_fields())
        if job.catalog_id != ready.settings.meetings_catalog:
            # Only our webhooks make tasks, and they queue the Meetings catalog's alone.
            raise BadRequest("a task for another catalog", field="catalogId")
        return ready.meeting_sync.run(job).to_json()

    return task_endpoint(name, request, services, work)


def calendar_task(
    name: str, request: flask.Request, services: Callable[[], Services]
) -> flask.Response:
    """`sync_calendar`: read one calendar's changes since its sync token, write them to
    Bpium. The calendar must be one we watch: a task names nothing else."""

    def work(ready: Services, body: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        data = load_json(body)
        calendar_id = data.get("calendarId") if isinstance(data, dict) else None
        if not isinstance(calendar_id, str) or not calendar_id or len(calendar_id) > 1024:
            raise BadRequest("the task names no calendarId", field="calendarId")
        fields["calendar_id"] = calendar_id
        # A calendar we do not watch is refused by the sync's lease (state.NotWatched).
        return ready.calendar_sync.run(calendar_id)

    return task_endpoint(name, request, services, work)


# The task's work: its answer; it adds what it learns of the task to the log fields.
Work = Callable[["Services", bytes, dict[str, Any]], dict[str, Any]]


def task_endpoint(
    name: str, request: flask.Request, services: Callable[[], Services], work: Work
) -> flask.Response:
    """A Cloud Tasks call: 2xx when done or refused for good, 503 when a retry may help."""

    def handle() -> tuple[int, dict[str, Any]]:
        if request.method != "POST":
            raise BadRequest("tasks are POSTed", code="method_not_allowed")
        retry = request.headers.get("X-CloudTasks-TaskRetryCount", "")
        context: dict[str, Any] = {
            "task": request.headers.get("X-CloudTasks-TaskName", "")[:100],
            "retry_count": int(retry) if _COUNT.fullmatch(retry) else None,
        }
        job_fields: dict[str, Any] = {}
        try:
            body = read_body(request)
            ready = services()
            with deadline_in(ready.settings.work_deadline_seconds):
                result = work(ready, body, job_fields)
        except AppError as exc:
            fields = {**context, **job_fields, **exc.context}
            fields.update(error_code=exc.code, error=exc.message)
            if refused_for_good(exc):
                log.error("task_refused" if not job_fields else "sync_refused", **fields)
                return 200, {"status": "refused", "error": exc.to_json()["error"]}
            # The first attempts may meet a passing outage; after that an operator should look.
            retries = context["retry_count"] or 0
            (log.error if retries >= LOUD_AFTER_RETRIES else log.warning)(
                "sync_retry_later", **fields
            )
            return 503, {"status": "retry", "error": exc.to_json()["error"]}
        except Exception:
            log.error(
                "sync_retry_later", error_code="internal", exc_info=True, **context, **job_fields
            )
            return 503, {"status": "retry", "error": {"code": "internal", "message": "see logs"}}
        log.info("task_done", status=result.get("status"), **context, **job_fields)
        return 200, result

    return endpoint(name, request, handle)
