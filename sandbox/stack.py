"""The whole local stand-in stack, seeded and wired: used by `make run`, the demo and tests.

`start_stack()` serves Bpium, Google (Calendar + OAuth), Secret Manager and Cloud Tasks on
127.0.0.1, stores every secret the functions read in the Secret Manager stand-in, and
returns the environment that points the functions at them. The queue delivers to the
worker `sync_meeting` at `worker_url` (set it with `Stack.deliver_to` once it is known).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox import bpium, cloud_tasks, google_calendar, secret_manager
from sandbox.common import ServerThread

PROJECT = "local-project"
WEBHOOK_SECRET = "local-webhook-secret-string"
API_KEY = "local-api-key-0123456789"
CHANNEL_TOKEN = "local-channel-token-0123456789"
# The Firestore database infra/ deploys (a named one; the emulator needs no setup for it).
FIRESTORE_DATABASE = "bpium-gcal"
CLIENT_ID = "local-client.apps.googleusercontent.com"
CLIENT_SECRET = "local-client-secret"
REFRESH_TOKEN = "local-refresh-token"
SCOPES = ["https://www.googleapis.com/auth/calendar"]
# `make run` and `make demo` use these fixed ports.
PORTS = {
    "functions": 8080,
    "bpium": 8081,
    "google": 8082,
    "secrets": 8083,
    "tasks": 8084,
    "firestore": 8085,  # Google's emulator
}
QUEUE = f"projects/{PROJECT}/locations/local/queues/bpium-gcal-sync"
TASKS_ACCOUNT = f"bpium-gcal-tasks@{PROJECT}.iam.gserviceaccount.com"
# The queue infra/queue.tf deploys: the worker's share of Bpium's budget, one dispatch per
# worker thread, retries with backoff for days.
PRODUCTION_QUEUE = {
    "max_dispatches_per_second": 2.4,
    "max_concurrent_dispatches": 8,
    "max_attempts": 100,
    "max_retry_duration": 7 * 86400.0,
    "min_backoff": 10.0,
    "max_backoff": 3600.0,
    "max_doublings": 9,
}
WEBHOOKS = {
    "on_meeting_created": "record.created",
    "on_meeting_updated": "record.updated",
    "on_meeting_deleted": "record.deleted",
}

# Every entry point of functions/main.py.
ENTRY_POINTS = (
    *WEBHOOKS,
    "sync_meeting",
    "on_calendar_push",
    "sync_calendar",
    "watch_calendars",
    "list_events",
    "create_calendar",
    "refresh_tokens",
    "reconcile",
)


@dataclass
class Stack:
    google: google_calendar.GoogleStandIn
    bpium: bpium.BpiumStandIn
    secrets: secret_manager.SecretManagerStandIn
    tasks: cloud_tasks.CloudTasksStandIn
    servers: list[ServerThread]
    seed: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def google_url(self) -> str:
        return self.servers[0].url

    @property
    def bpium_url(self) -> str:
        return self.servers[1].url

    @property
    def secrets_url(self) -> str:
        return self.servers[2].url

    @property
    def tasks_url(self) -> str:
        return self.servers[3].url

    def deliver_to(self, worker_url: str) -> None:
        """Where the queue's tasks go: the functions read SYNC_WORKER_URL from `env`."""
        self.env["SYNC_WORKER_URL"] = worker_url

    def push_to(self, push_url: str, calendar_worker_url: str) -> None:
        """Where Google's pushes and the calendar syncs' tasks go (CALENDAR_PUSH_URL,
        CALENDAR_WORKER_URL in `env`)."""
        self.env["CALENDAR_PUSH_URL"] = push_url
        self.env["CALENDAR_WORKER_URL"] = calendar_worker_url

    @property
    def meetings(self) -> str:
        return str(self.seed["meetings"])

    def put_secret(self, name: str, value: str) -> None:
        self.secrets.add_version(PROJECT, name, value.encode())

    def store_token(self, lifetime: int = 3600) -> None:
        """A fresh access token in `google-oauth-token`, as the authorize command leaves it."""
        token, expiry = self.google.issue_access_token(CLIENT_ID, SCOPES, lifetime)
        self.put_secret(
            "google-oauth-token",
            json.dumps(
                {
                    "refresh_token": REFRESH_TOKEN,
                    "access_token": token,
                    "expiry": datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "scopes": SCOPES,
                }
            ),
        )

    def store_secrets(self) -> None:
        """Every secret the functions read, with the stand-ins' values (as a new version)."""
        self.put_secret(
            "bpium-credentials",
            json.dumps({"login": bpium.DEMO_LOGIN, "password": bpium.DEMO_PASSWORD}),
        )
        self.put_secret("bpium-webhook-secret", WEBHOOK_SECRET)
        self.put_secret("api-key", API_KEY)
        self.put_secret("google-channel-token", CHANNEL_TOKEN)
        self.put_secret(
            "google-oauth-client",
            json.dumps({"installed": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}),
        )
        self.store_token()

    def subscribe(self, url_of: dict[str, str]) -> None:
        """Bpium webhooks of the Meetings catalog to each function's URL."""
        for name, event in WEBHOOKS.items():
            self.bpium.add_hook(url_of[name], event, self.meetings, WEBHOOK_SECRET)

    def stop(self) -> None:
        self.tasks.stop()
        for server in self.servers:
            server.stop()


def start_stack(
    google_port: int = 0,
    bpium_port: int = 0,
    secrets_port: int = 0,
    *,
    tasks_port: int = 0,
    worker_url: str = f"http://127.0.0.1:{PORTS['functions']}/sync_meeting",
    queue: dict[str, Any] | None = None,
    time_scale: float = 1.0,
    firestore_host: str | None = None,
    functions_url: str = f"http://127.0.0.1:{PORTS['functions']}",
    **bpium_options: Any,
) -> Stack:
    """`queue`: the queue's settings (`PRODUCTION_QUEUE` unless given); `time_scale`
    shortens the queue's backoff (tests), never its rate; `firestore_host`: the Firestore
    emulator's host:port; `functions_url`: where the functions are served (the push and
    calendar-worker URLs under it; `Stack.push_to` changes them)."""
    google, google_server = google_calendar.serve(google_port)
    bpium_standin, bpium_server = bpium.serve(bpium_port, **bpium_options)
    secrets, secrets_server = secret_manager.serve(secrets_port)
    tasks, tasks_server = cloud_tasks.serve(tasks_port, time_scale=time_scale)
    tasks.add_queue(QUEUE, **(PRODUCTION_QUEUE if queue is None else queue))
    stack = Stack(
        google,
        bpium_standin,
        secrets,
        tasks,
        [google_server, bpium_server, secrets_server, tasks_server],
        bpium.seed(bpium_standin),
    )
    google.add_client(CLIENT_ID, CLIENT_SECRET)
    google.add_refresh_token(REFRESH_TOKEN, CLIENT_ID, SCOPES)
    stack.store_secrets()
    stack.env = {
        "BPIUM_URL": stack.bpium_url,
        "BPIUM_MEETINGS_CATALOG": stack.meetings,
        "BPIUM_FIELDS": json.dumps(stack.seed["fields"]),
        "GCP_PROJECT": PROJECT,
        "SECRETS_BACKEND": "secret-manager",
        "SECRET_MANAGER_ENDPOINT": stack.secrets_url,
        "GOOGLE_CALENDAR_ENDPOINT": f"{stack.google_url}/calendar/v3/",
        "GOOGLE_TOKEN_URI": f"{stack.google_url}/token",
        "TIME_ZONE": "Europe/Moscow",
        "LOG_LEVEL": "INFO",
        "TASKS_QUEUE": QUEUE,
        "TASKS_ENDPOINT": stack.tasks_url,
        "TASKS_SERVICE_ACCOUNT": TASKS_ACCOUNT,
        "SYNC_WORKER_URL": worker_url,
        "CALENDAR_PUSH_URL": f"{functions_url}/on_calendar_push",
        "CALENDAR_WORKER_URL": f"{functions_url}/sync_calendar",
        "FIRESTORE_DATABASE": FIRESTORE_DATABASE,
    }
    if firestore_host:
        stack.env["FIRESTORE_EMULATOR_HOST"] = firestore_host
    return stack
