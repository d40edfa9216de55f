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
    def handle() -> tuple[int, dict[str, Any]]:
        if request.method != "POST":
            raise BadRequest("tasks are POSTed", code="method_not_allowed")
        retry = request.headers.get("X-CloudTasks-TaskRetryCount", "")
        context: dict[str, Any] = {
            "task": request.headers.get("X-CloudTasks-TaskName", "")[:100],
            "retry_count": int(retry) if _COUNT.fullmatch(retry) else None,
        }
        job: SyncJob | None = None
        try:
            body = read_body(request)
            try:
                job = SyncJob.from_json(load_json(body))
            except AppError as exc:
                log.error("task_refused", error_code=exc.code, error=exc.message, **context)
                return 200, {"status": "refused", "error": exc.to_json()["error"]}
            ready = services()
            if job.catalog_id != ready.settings.meetings_catalog:
                # Only our webhooks make tasks, and they queue the Meetings catalog's alone.
                raise BadRequest("a task for another catalog", field="catalogId")
            with deadline_in(ready.settings.work_deadline_seconds):
                result = ready.meeting_sync.run(job)
        except AppError as exc:
            fields = {**context, **(job.log_fields() if job else {})}
            fields.update(error_code=exc.code, error=exc.message, **exc.context)
            if refused_for_good(exc):
                log.error("sync_refused", **fields)
                return 200, {"status": "refused", "error": exc.to_json()["error"]}
            # The first attempts may meet a passing outage; after that an operator should look.
            retries = context["retry_count"] or 0
            (log.error if retries >= LOUD_AFTER_RETRIES else log.warning)(
                "sync_retry_later", **fields
            )
            return 503, {"status": "retry", "error": exc.to_json()["error"]}
        except Exception:
            log.error(
                "sync_retry_later",
                error_code="internal",
                exc_info=True,
                **context,
                **(job.log_fields() if job else {}),
            )
            return 503, {"status": "retry", "error": {"code": "internal", "message": "see logs"}}
        log.info("task_done", status=result.status, **context, **job.log_fields())
        return 200, result.to_json()

    return endpoint(name, request, handle)
