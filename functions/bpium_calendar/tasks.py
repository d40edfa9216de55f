"""Cloud Tasks adapter: one task per hook message, for the worker `sync_meeting`.

google-cloud-tasks over REST (`transport="rest"`); `TASKS_ENDPOINT` points it at a local
stand-in with anonymous calls, as `SECRET_MANAGER_ENDPOINT` does for Secret Manager. Cloud
Tasks answers 409 to a name in use (or used within about an hour): over REST the client
raises `Conflict`, not its gRPC-only subclass `AlreadyExists`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from google.api_core import exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2

from . import log
from .errors import AppError

# A webhook waits this long at most for Cloud Tasks before it syncs inline instead.
ENQUEUE_SECONDS = 8.0
ATTEMPT_TIMEOUT = 3.0


def tasks_client(endpoint: str | None) -> tasks_v2.CloudTasksClient:
    """google-cloud-tasks over REST; at `endpoint` (a stand-in) with anonymous calls."""
    return tasks_v2.CloudTasksClient(
        transport="rest",
        # A local stand-in, like Google's emulators, takes anonymous calls.
        credentials=AnonymousCredentials() if endpoint else None,  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": endpoint} if endpoint else None,
    )


class QueueUnavailable(AppError):
    """The task could not be created: the caller syncs inline rather than lose it."""

    status = 503
    code = "queue_unavailable"
    retryable = True


@dataclass(frozen=True)
class Enqueued:
    task: str  # the task's id within the queue
    duplicate: bool  # a task of that name was there already: a second delivery


class TaskQueue:
    """Creates the worker's tasks on `queue` (projects/…/queues/…); thread-safe."""

    def __init__(
        self,
        client: Callable[[], Any],
        queue: str,
        worker_url: str,
        service_account: str | None,
        dispatch_deadline_seconds: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.queue = queue
        self.worker_url = worker_url
        self.service_account = service_account
        # Cloud Tasks allows 15 s to 30 min; the worker answers within its own timeout.
        self.dispatch_deadline = max(15, min(1800, dispatch_deadline_seconds))
        self._sleep = sleep
        self._clock = clock

    def enqueue(
        self, task_id: str | None, body: dict[str, Any], *, not_before: datetime | None = None
    ) -> Enqueued:
        """Creates the task (dispatched at `not_before`, or at once), retrying for a few
        seconds; QueueUnavailable when it cannot."""
        task = self._task(task_id, body)
        if not_before is not None:
            task.schedule_time = not_before
        end = self._clock() + ENQUEUE_SECONDS
        attempt = 0
        uncertain = False  # an earlier attempt may have created it before its answer was lost
        while True:
            attempt += 1
            try:
                created = self._client().create_task(
                    parent=self.queue, task=task, retry=None, timeout=ATTEMPT_TIMEOUT
                )
                return Enqueued(_short(created.name), duplicate=False)
            except exceptions.Conflict:
                return Enqueued(task_id or "", duplicate=not uncertain)
            except Exception as exc:  # every failure either retries or falls back inline
                retryable = _retryable(exc)
                uncertain = uncertain or retryable
                # "Equal jitter": at least half the backoff, so a few seconds are a few tries.
                backoff = min(2.0, 0.25 * 2 ** (attempt - 1))
                wait = backoff / 2 * (1 + random.random())  # noqa: S311 - jitter, not crypto
                if not retryable or self._clock() + wait >= end:
                    raise QueueUnavailable(
                        f"Cloud Tasks did not take the task: {_describe(exc)}",
                        code="queue_unavailable",
                        attempts=attempt,
                    ) from exc
                log.warning("task_create_retry", attempt=attempt, error=_describe(exc))
                self._sleep(wait)

    def _task(self, task_id: str | None, body: dict[str, Any]) -> tasks_v2.Task:
        headers = {"Content-Type": "application/json"}
        trace = log.trace_header()
        if trace:
            headers["X-Cloud-Trace-Context"] = trace  # the worker's log lines join the trace
        request = tasks_v2.HttpRequest(
            url=self.worker_url,
            http_method=tasks_v2.HttpMethod.POST,
            headers=headers,
            body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        )
        if self.service_account:
            # The worker is IAM-only: Cloud Tasks mints this identity's OIDC token for it.
            request.oidc_token = tasks_v2.OidcToken(
                service_account_email=self.service_account, audience=self.worker_url
            )
        task = tasks_v2.Task(
            http_request=request,
            dispatch_deadline=timedelta(seconds=self.dispatch_deadline),
        )
        if task_id:
            task.name = f"{self.queue}/tasks/{task_id}"
        return task


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _retryable(exc: Exception) -> bool:
    """Worth another try: Google's retryable statuses, timeouts and lost connections."""
    transient = (
        exceptions.TooManyRequests,
        exceptions.InternalServerError,
        exceptions.BadGateway,
        exceptions.ServiceUnavailable,
        exceptions.GatewayTimeout,
        exceptions.DeadlineExceeded,
        exceptions.Aborted,
        requests.RequestException,
        auth_exceptions.TransportError,
    )
    return isinstance(exc, transient)


def _describe(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__
