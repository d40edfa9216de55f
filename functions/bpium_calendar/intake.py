"""Use case of the webhook functions: decide the no-ops at once, queue the rest.

Bpium sends each webhook once and never retries, so what needs a sync becomes a Cloud
Tasks task for the worker (durable, retried, paced for Bpium's budget). A no-op costs no
call at all, our own write-back's echo included. Should Cloud Tasks not take the task
within a few seconds, the webhook syncs inline, as before the queue, rather than lose it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from . import log
from .domain import Webhook
from .jobs import SyncJob, job_of, triage
from .settings import Settings
from .sync import MeetingSync
from .tasks import Enqueued, QueueUnavailable


class Queue(Protocol):
    def enqueue(self, task_id: str | None, body: dict[str, Any]) -> Enqueued: ...


class ApiUserPort(Protocol):
    def id(self) -> str | None: ...


class Intake:
    def __init__(
        self,
        settings: Settings,
        queue: Callable[[], Queue],
        inline: Callable[[], MeetingSync],
        api_user: Callable[[], ApiUserPort] | None = None,
    ) -> None:
        self.settings = settings
        self._queue = queue
        self._inline = inline
        self._api_user = api_user

    def handle(self, webhook: Webhook, expected_event: str) -> dict[str, Any]:
        """The webhook's answer: ignored (with the reason), queued, or the inline result."""
        reason = triage(webhook, expected_event, self.settings)
        if reason is None and self._own_google_write(webhook):
            reason = "own_google_write"
        if reason:
            unusual = reason in ("other_catalog", "unexpected_event")
            (log.warning if unusual else log.info)(
                "webhook_ignored", reason=reason, **webhook.log_fields()
            )
            return {"status": "ignored", "reason": reason}
        job = job_of(webhook, self.settings)
        try:
            queued = self._queue().enqueue(job.task_id(), job.to_json())
        except QueueUnavailable as exc:
            return self._inline_sync(job, exc)
        if queued.duplicate:
            log.warning("webhook_ignored", reason="duplicate", task=queued.task, **job.log_fields())
            return {"status": "ignored", "reason": "duplicate"}
        log.info("webhook_queued", task=queued.task, **job.log_fields())
        return {"status": "queued", "task": queued.task}

    def _own_google_write(self, webhook: Webhook) -> bool:
        """Our own write of what a person changed in Google (FROM_GOOGLE), made by the
        integration's Bpium user: following it back to Google would be an echo."""
        from_google = self.settings.from_google_fields
        changed = webhook.changed_fields()
        if webhook.event != "record.updated" or not changed & from_google:
            return False
        if not changed <= from_google | self.settings.fields.written():
            return False
        user = self._api_user().id() if self._api_user else None
        return user is not None and webhook.user_id == user

    def _inline_sync(self, job: SyncJob, exc: QueueUnavailable) -> dict[str, Any]:
        log.warning(
            "webhook_synced_inline",
            reason=exc.code,
            error=exc.message,
            hint="Cloud Tasks did not take the task; check the queue and the webhooks "
            "account's roles/cloudtasks.enqueuer",
            **job.log_fields(),
        )
        return self._inline().run(job).to_json()
