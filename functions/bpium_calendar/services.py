"""Composition root: builds each service once per instance, lazily, on first use.

Nothing here runs at import time. A component is built the first time a request needs it,
and heavy client libraries are imported there too, so an entry point loads only what it
uses (the Calendar client only where events are written, Secret Manager's only with that
backend): cold starts stay short.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from . import log
from .bpium import BpiumClient, RateLimiter
from .catalog_schema import CatalogSchemaCache
from .employees import EmployeeEmails
from .errors import ConfigError
from .replay import ReplayGuard
from .secret_store import (
    BPIUM_CREDENTIALS,
    GOOGLE_CHANNEL_TOKEN,
    LocalFolderSource,
    SecretManagerSource,
    SecretSource,
    SecretStore,
)
from .settings import Settings
from .sync import MeetingSync

if TYPE_CHECKING:
    from .api_user import ApiUser
    from .calendar_sync import CalendarSync
    from .from_google import GoogleToBpium
    from .gcalendar import CalendarClient
    from .intake import Intake
    from .push import PushReceiver
    from .reconcile import Reconciler
    from .scenarios import Scenarios
    from .state import StateStore
    from .tasks import TaskQueue
    from .tokens import TokenRefresher
    from .watch import Watcher

T = TypeVar("T")


def secret_source(settings: Settings) -> SecretSource:
    if settings.secrets_backend == "local":
        return LocalFolderSource(settings.secrets_dir)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.secretmanager import SecretManagerServiceClient

    endpoint = settings.secret_manager_endpoint
    client = SecretManagerServiceClient(
        transport="rest",
        # A local stand-in, like Google's emulators, takes anonymous calls.
        credentials=AnonymousCredentials() if endpoint else None,  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": endpoint} if endpoint else None,
    )
    assert settings.gcp_project  # checked by Settings
    return SecretManagerSource(client, settings.gcp_project)


class Services:
    """Everything an entry point needs, each part built once and shared by threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._built: dict[str, object] = {}
        log.configure(settings.log_level, settings.gcp_project)

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]  # type: ignore[return-value]

    @property
    def secrets(self) -> SecretStore:
        return self._once("secrets", lambda: SecretStore(secret_source(self.settings)))

    def _bpium_login(self) -> tuple[str, str]:
        data = self.secrets.get_json(BPIUM_CREDENTIALS)
        login, password = data.get("login"), data.get("password")
        if not isinstance(login, str) or not isinstance(password, str):
            raise ConfigError(f"secret {BPIUM_CREDENTIALS} needs login and password")
        return login, password

    @property
    def bpium(self) -> BpiumClient:
        def build() -> BpiumClient:
            # This instance's share of Bpium's per-account budget (infra/ sizes the shares).
            limiter = RateLimiter(
                self.settings.bpium_rate_limit, float(self.settings.bpium_rate_window_seconds)
            )
            return BpiumClient(self.settings.bpium_api_url, self._bpium_login, limiter=limiter)

        return self._once("bpium", build)

    @property
    def calendar(self) -> CalendarClient:
        def build() -> CalendarClient:
            from .gcalendar import CalendarClient
            from .oauth import StoredTokenCredentials

            credentials = StoredTokenCredentials(self.secrets, self.settings.google_token_uri)
            return CalendarClient(credentials, self.settings.google_calendar_endpoint)

        return self._once("calendar", build)

    @property
    def scenarios(self) -> Scenarios:
        def build() -> Scenarios:
            from .scenarios import Scenarios

            return Scenarios(self.settings, self.calendar)

        return self._once("scenarios", build)

    @property
    def reconciler(self) -> Reconciler:
        def build() -> Reconciler:
            from .reconcile import Reconciler

            return Reconciler(
                self.bpium,
                self.calendar,
                self.meeting_sync,
                back=self.google_to_bpium if self.settings.two_way else None,
            )

        return self._once("reconciler", build)

    @property
    def token_refresher(self) -> TokenRefresher:
        def build() -> TokenRefresher:
            from .tokens import TokenRefresher

            margin = timedelta(minutes=self.settings.token_refresh_margin_minutes)
            return TokenRefresher(self.secrets, self.settings.google_token_uri, margin)

        return self._once("token_refresher", build)

    @property
    def replay_guard(self) -> ReplayGuard:
        max_age = timedelta(minutes=self.settings.webhook_max_age_minutes)
        return self._once("replay_guard", lambda: ReplayGuard(max_age))

    @property
    def meeting_sync(self) -> MeetingSync:
        def build() -> MeetingSync:
            schema = CatalogSchemaCache(self.bpium, self.settings)
            emails = EmployeeEmails(
                self.bpium,
                self.settings.employee_email_field,
                max_age=60.0 * self.settings.employee_email_cache_minutes,
            )
            return MeetingSync(self.settings, self.bpium, self.calendar, schema, emails)

        return self._once("meeting_sync", build)

    @property
    def task_queue(self) -> TaskQueue:
        """Tasks for the worker `sync_meeting`."""
        return self._once("task_queue", lambda: self._queue_for(self.settings.sync_worker_url))

    def _queue_for(self, worker_url: str) -> TaskQueue:
        """Tasks on TASKS_QUEUE for the worker at `worker_url`; one client for all."""
        from .tasks import TaskQueue, tasks_client

        settings = self.settings
        return TaskQueue(
            lambda: self._once("tasks_client", lambda: tasks_client(settings.tasks_endpoint)),
            settings.tasks_queue,
            worker_url,
            settings.tasks_service_account,
            # The worker's own timeout is not known here: Cloud Tasks' default, 10 min.
            dispatch_deadline_seconds=600,
        )

    @property
    def intake(self) -> Intake:
        def build() -> Intake:
            from .intake import Intake

            return Intake(
                self.settings,
                lambda: self.task_queue,
                lambda: self.meeting_sync,
                lambda: self.api_user,
            )

        return self._once("intake", build)

    @property
    def api_user(self) -> ApiUser:
        def build() -> ApiUser:
            from .api_user import ApiUser

            return ApiUser(
                self.settings.bpium_api_user_id, lambda: self.bpium, lambda: self._bpium_login()[0]
            )

        return self._once("api_user", build)

    # -- Google → Bpium -------------------------------------------------------------------

    @property
    def state(self) -> StateStore:
        def build() -> StateStore:
            from .state import StateStore, firestore_client

            settings = self.settings
            return StateStore(
                lambda: self._once(
                    "firestore",
                    lambda: firestore_client(settings.gcp_project, settings.firestore_database),
                )
            )

        return self._once("state", build)

    @property
    def google_to_bpium(self) -> GoogleToBpium:
        def build() -> GoogleToBpium:
            from .from_google import GoogleToBpium

            return GoogleToBpium(self.settings, self.bpium, self.state)

        return self._once("google_to_bpium", build)

    @property
    def calendar_sync(self) -> CalendarSync:
        def build() -> CalendarSync:
            from .calendar_sync import CalendarSync

            return CalendarSync(self.settings, self.calendar, self.state, self.google_to_bpium)

        return self._once("calendar_sync", build)

    def channel_token(self) -> str:
        return self.secrets.get_strong(GOOGLE_CHANNEL_TOKEN)

    @property
    def calendar_task_queue(self) -> TaskQueue:
        """Tasks for the worker `sync_calendar`, on the same queue as the meetings'."""

        def build() -> TaskQueue:
            if not self.settings.calendar_worker_url:
                raise ConfigError("CALENDAR_WORKER_URL: required to queue calendar syncs")
            return self._queue_for(self.settings.calendar_worker_url)

        return self._once("calendar_task_queue", build)

    @property
    def push_receiver(self) -> PushReceiver:
        def build() -> PushReceiver:
            from .push import PushReceiver

            return PushReceiver(
                self.settings,
                token=self.channel_token,
                state=self.state,
                queue=lambda: self.calendar_task_queue,
                stopper=lambda: self.calendar,
            )

        return self._once("push_receiver", build)

    @property
    def watcher(self) -> Watcher:
        def build() -> Watcher:
            from .watch import Watcher

            return Watcher(
                self.settings,
                calendar=self.calendar,
                state=self.state,
                token=self.channel_token,
                calendars=self.meeting_sync.canceller.other_calendars,
                queue=lambda: self.calendar_task_queue,
            )

        return self._once("watcher", build)


_services: Services | None = None
_services_lock = threading.Lock()


def services() -> Services:
    """The instance's services; settings errors fail each request until they are fixed."""
    global _services  # noqa: PLW0603 - one composition root per instance
    if _services is None:
        with _services_lock:
            if _services is None:
                _services = Services(Settings.from_env())
    return _services


def reset() -> None:
    """Forgets the built services (tests change the environment between apps)."""
    global _services  # noqa: PLW0603
    with _services_lock:
        _services = None
