"""Cloud Tasks v2 REST stand-in, spoken to by the real `google-cloud-tasks` client (REST).

The client sends `$alt=json;enum-encoding=int` and `{"task": {...}, "responseView": n}`; enums
answer as numbers when asked that way. Only HTTP-target tasks exist here. Queues are made in
Python (`add_queue`); a background dispatcher delivers every task to its `httpRequest.url`
with `requests`, under the queue's token bucket, concurrency and retry settings.

Where the sources disagree or are silent, the harsher reading is the default or a keyword:

- A task holds at most 100 KB (CreateTask's reference; the quotas page is said to give 1 MB):
  `max_task_bytes`. Size = body + url + headers + name, a guess at what Google counts.
- A used name is refused for ~1 hour (quotas page; the 2.26.0 CreateTaskRequest reference says
  "up to 24 hours"): `tombstone_seconds` (3600, the harsher for de-duplication: a late
  duplicate gets through sooner; 86400 for the other reading).
- Creating a task in a missing queue answers 400 FAILED_PRECONDITION "Queue does not exist."
  (what the real service answers: stackkit/laravel-google-cloud-tasks-queue#103,
  esminc/activejob-google_cloud_tasks-http#9); reading a missing queue answers 404 NOT_FOUND.
- The BASIC view omits the body (Task.View reference) and, harsher, the headers too:
  `basic_view_hides_headers`.
- `duplicate_delivery=True`: a seeded share (`duplicate_rate`) of tasks is delivered once more
  after its 2xx (common-pitfalls: "a non-zero number of duplicate executions do occur").
- 429/503 with `Retry-After` (delta-seconds): the retry waits at least that long. The "higher
  backoff rate" and system throttling the HttpRequest reference mentions are not modelled.
- `max_burst_size` unset: ceil(rate), the RateLimits reference's "generally at least equal to"
  the rate (configuring-queues' sample shows 100 for 500/s: a smaller, gentler burst).

`time_scale` multiplies every backoff, Retry-After, tombstone, retry duration and schedule
wait (never the rate limits); `deadline_scale` multiplies dispatch deadlines, kept apart so a
fast test clock does not cut a slow worker short.

Admin routes (besides those of `sandbox.common`): `GET /_sandbox/tasks` -> {"pending",
"completed", "attempts"}; `POST /_sandbox/pause`, `/_sandbox/resume`, `/_sandbox/reset`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask, Response, request

from sandbox import common

MAX_TASK_BYTES = 100 * 1024  # CreateTask reference: "The maximum task size is 100KB."
MAX_HEADER_BYTES = 80 * 1024  # HttpRequest.headers: "must be less than 80KB"
MAX_URL_CHARS = 2083  # HttpRequest.url reference
MAX_SCHEDULE_AHEAD = 30 * 86400.0  # quotas page: at most 30 days ahead
DEFAULT_DEADLINE, MIN_DEADLINE, MAX_DEADLINE = 600.0, 15.0, 1800.0  # Task.dispatch_deadline
MAX_PAGE_SIZE = 1000  # ListTasksRequest.page_size reference
QUEUE = r"projects/[A-Za-z0-9:.-]+/locations/[A-Za-z0-9-]+/queues/[A-Za-z0-9-]{1,100}"
QUEUE_RE = re.compile(rf"^{QUEUE}$")  # Queue.name reference
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,500}$")  # Task.name reference
URL_RE = re.compile(r"^https?://[^/\s?#]+")  # HttpRequest.url: begins http:// or https://
METHODS = ["POST", "POST", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]  # HttpMethod
BODY_METHODS = {"POST", "PUT", "PATCH"}  # HttpRequest.body: only these may carry a body
TASK_FIELDS = {"name", "httpRequest", "scheduleTime", "dispatchDeadline", "createTime", "view"}
TASK_FIELDS |= {"dispatchCount", "responseCount", "firstAttempt", "lastAttempt"}  # output only
AUTH_FIELDS = ("oidcToken", "oauthToken")  # HttpRequest.authorization_header, a oneof
HTTP_FIELDS = {"url", "httpMethod", "headers", "body", *AUTH_FIELDS}
STATUS_NAMES = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message, "status": self.status}}
        return _json(body, self.code)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _parse_time(value: Any, where: str) -> float:
    text = value if isinstance(value, str) else ""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", text)
    try:
        offset = match.group(3).replace("Z", "+00:00") if match else ""
        stamp = datetime.fromisoformat(match.group(1) + offset) if match else None
    except ValueError:
        stamp = None
    if match is None or stamp is None:
        raise _invalid(f"Invalid value at '{where}' (google.protobuf.Timestamp): {value!r}")
    return stamp.timestamp() + float(match.group(2) or 0)


def _decode_body(value: Any) -> bytes:
    """Proto3 JSON bytes: base64, standard or url-safe, padding optional."""
    if not isinstance(value, str):
        raise _invalid("Invalid value at 'task.http_request.body' (TYPE_BYTES)")
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Invalid value at 'task.http_request.body' (TYPE_BYTES)") from None


def _parse_duration(value: Any, where: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d{1,9})?)s", value if isinstance(value, str) else "")
    if not match:
        raise _invalid(f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Duration)")
    return float(match.group(1))


def _fields(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _invalid(f"Invalid JSON payload received. '{where}' must be an object.")
    for key in obj:
        if key not in allowed:
            raise _invalid(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}'.")
    return obj


def retry_delay(config: QueueConfig, failures: int) -> float:
    """Seconds before retry number `failures` (1 = the first retry), unscaled.

    RetryConfig.max_doublings reference: start at min_backoff, double max_doublings times,
    then grow linearly by that last step, capped at max_backoff (10s, 20s, 40s, 80s, 160s,
    240s, 300s, ... for 10s/300s/3 doublings)."""
    k = max(0, failures - 1)
    doubled = config.min_backoff * 2.0 ** min(k, config.max_doublings)
    linear = doubled * (1 + max(0, k - config.max_doublings))
    return min(linear, config.max_backoff)


def oidc_token(email: str, audience: str, now: float) -> str:
    """An unsigned, JWT-shaped Google ID token (`alg: none`): claims only, no signature."""

    def segment(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {
        "aud": audience,
        "azp": email,
        "email": email,
        "email_verified": True,
        "exp": int(now) + 3600,
        "iat": int(now),
        "iss": "https://accounts.google.com",
        "sub": str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16)),
    }
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims)}."


@dataclass
class QueueConfig:
    """A queue's RateLimits and RetryConfig; defaults are those `gcloud tasks queues describe`
    shows for a new queue (cloud.google.com/tasks/docs/configuring-queues)."""

    name: str
    max_dispatches_per_second: float = 500.0
    max_burst_size: int | None = None
    max_concurrent_dispatches: int = 1000
    max_attempts: int = 100
    max_retry_duration: float = 0.0  # 0 = unlimited (RetryConfig.max_retry_duration)
    min_backoff: float = 0.1
    max_backoff: float = 3600.0
    max_doublings: int = 16

    def __post_init__(self) -> None:
        if not QUEUE_RE.match(self.name):
            raise ValueError(
                f"queue name must be projects/{{p}}/locations/{{l}}/queues/{{q}}: {self.name}"
            )
        if (
            not 0 < self.max_dispatches_per_second <= 500
        ):  # RateLimits: "maximum allowed value is 500"
            raise ValueError("max_dispatches_per_second must be in (0, 500]")
        if not 0 < self.max_concurrent_dispatches <= 5000:  # RateLimits: "maximum ... is 5,000"
            raise ValueError("max_concurrent_dispatches must be in [1, 5000]")
        if self.max_attempts < -1 or self.max_attempts == 0:  # RetryConfig: ">= -1"
            raise ValueError("max_attempts must be -1 (unlimited) or positive")
        if not 0 <= self.min_backoff <= self.max_backoff or self.max_doublings < 0:
            raise ValueError("need 0 <= min_backoff <= max_backoff and max_doublings >= 0")

    @property
    def burst(self) -> int:
        # RateLimits.max_burst_size: picked from the rate, "generally at least equal to" it.
        return self.max_burst_size or max(1, math.ceil(self.max_dispatches_per_second))


@dataclass(eq=False)
class _Task:
    name: str
    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    auth: dict[str, Any]
    create_time: float
    schedule_time: float  # shown to clients and sent as X-CloudTasks-TaskETA
    due: float  # when the dispatcher may send it (schedule waits scaled)
    deadline: float
    dispatch_count: int = 0
    response_count: int = 0
    execution_count: int = 0  # answers that were not 5xx (X-CloudTasks-TaskExecutionCount)
    first_dispatch: float | None = None
    last_attempt: dict[str, Any] | None = None
    previous_response: int | None = None
    sent_headers: dict[str, str] = field(default_factory=dict)
    in_flight: bool = False

    @property
    def id(self) -> str:
        return self.name.rsplit("/", 1)[1]


@dataclass(eq=False)
class _Queue:
    config: QueueConfig
    tasks: dict[str, _Task] = field(default_factory=dict)  # by full name, creation order
    ghosts: list[_Task] = field(default_factory=list)  # duplicate deliveries still to make
    tokens: float = 0.0
    refilled: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    completed: int = 0


class CloudTasksStandIn:
    """In-memory Cloud Tasks with a Flask app speaking REST v2 and a threaded dispatcher."""

    def __init__(
        self,
        queues: list[str | QueueConfig] | tuple[str | QueueConfig, ...] = (),
        *,
        time_scale: float = 1.0,
        deadline_scale: float = 1.0,
        tombstone_seconds: float = 3600.0,
        duplicate_delivery: bool = False,
        duplicate_rate: float = 0.5,
        basic_view_hides_headers: bool = True,
        max_task_bytes: int = MAX_TASK_BYTES,
        seed: int = 20261130,
    ) -> None:
        self.time_scale, self.deadline_scale = time_scale, deadline_scale
        self.tombstone_seconds = tombstone_seconds
        self.duplicate_delivery, self.duplicate_rate = duplicate_delivery, duplicate_rate
        self.basic_view_hides_headers = basic_view_hides_headers
        self.max_task_bytes = max_task_bytes
        self._seed = seed
        self._random = random.Random(seed)
        self._cond = threading.Condition()
        self._queues: dict[str, _Queue] = {}
        self._tombstones: dict[str, float] = {}  # task name -> when it may be used again
        self._attempts: list[dict[str, Any]] = []
        self._paused = self._stopping = False
        self._workers: set[threading.Thread] = set()
        for queue in queues:
            self.add_queue(queue)
        self.recorder = common.Recorder()
        self.app = Flask("sandbox.cloud_tasks")
        common.install_sandbox_routes(self.app, self.recorder)
        self._install_routes()
        self._scheduler = threading.Thread(target=self._run, name="cloud-tasks", daemon=True)
        self._scheduler.start()

    # ------------------------------------------------------------ Python API

    def add_queue(self, name: str | QueueConfig, **settings: Any) -> QueueConfig:
        """Adds (or reconfigures) a queue; `settings` are `QueueConfig` fields."""
        config = name if isinstance(name, QueueConfig) else QueueConfig(name, **settings)
        with self._cond:
            queue = self._queues.setdefault(config.name, _Queue(config))
            queue.config, queue.tokens, queue.refilled = config, float(config.burst), time.time()
            self._cond.notify_all()
        return config

    def fault_creates(self, count: int = 1, *, status: int = 503, drop: bool = False) -> None:
        """The next `count` tasks.create calls answer `status` (or lose the connection)."""
        name = STATUS_NAMES.get(status, "UNKNOWN")
        body = {"error": {"code": status, "message": "Injected fault", "status": name}}
        self.recorder.add_fault(
            common.Fault(
                path=re.compile(r"^/v2/.+/tasks$"),
                method="POST",
                status=None if drop else status,
                count=count,
                delay=0.0,
                body=None if drop else body,
                drop=drop,
            )
        )

    def pause(self) -> None:
        """Stops dispatching (queue state PAUSED); tasks still accumulate."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once nothing is pending or in flight; False if `timeout` passes first."""
        end = time.monotonic() + timeout
        with self._cond:
            while any(q.tasks or q.ghosts or q.in_flight for q in self._queues.values()):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def pending(self, queue: str | None = None) -> list[dict[str, Any]]:
        """The tasks not yet done, oldest first: name, id, queue, url, dispatch_count, ..."""
        with self._cond:
            return [
                {
                    "name": t.name,
                    "id": t.id,
                    "queue": q.config.name,
                    "url": t.url,
                    "dispatch_count": t.dispatch_count,
                    "schedule_time": t.schedule_time,
                    "in_flight": t.in_flight,
                }
                for q in self._queues.values()
                if queue in (None, q.config.name)
                for t in q.tasks.values()
            ]

    @property
    def attempts(self) -> list[dict[str, Any]]:
        """Every delivery so far: task, queue, url, status, error, retry_count, time, duplicate."""
        with self._cond:
            return [dict(a) for a in self._attempts]

    @property
    def completed(self) -> dict[str, int]:
        with self._cond:
            return {name: q.completed for name, q in self._queues.items()}

    @property
    def max_in_flight_seen(self) -> dict[str, int]:
        with self._cond:
            return {name: q.max_in_flight for name, q in self._queues.items()}

    def reset(self) -> None:
        """Forgets tasks, names, attempts, counters, calls and faults; keeps the queues."""
        with self._cond:
            for name, queue in self._queues.items():
                self._queues[name] = _Queue(
                    queue.config, tokens=float(queue.config.burst), refilled=time.time()
                )
            self._tombstones.clear()
            self._attempts.clear()
            self._paused = False
            self._random = random.Random(self._seed)
            self._cond.notify_all()
        self.recorder.reset_calls()
        self.recorder.clear_faults()

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the dispatcher; waits up to `timeout` for deliveries under way."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            workers = list(self._workers)
        end = time.monotonic() + timeout
        for thread in [self._scheduler, *workers]:
            thread.join(max(0.0, end - time.monotonic()))

    # ------------------------------------------------------------ dispatcher

    def _run(self) -> None:
        with self._cond:
            while not self._stopping:
                self._cond.wait(min(self._dispatch_ready(), 0.5))

    def _dispatch_ready(self) -> float:
        """Starts every delivery the limits allow now (lock held); seconds until the next."""
        now, wait = time.time(), math.inf
        for queue in [] if self._paused else self._queues.values():
            config = queue.config
            # RateLimits.max_burst_size: a token bucket of max_burst_size tokens, refilled
            # at max_dispatches_per_second; each dispatch (first try or retry) takes one.
            queue.tokens = min(
                float(config.burst),
                queue.tokens + (now - queue.refilled) * config.max_dispatches_per_second,
            )
            queue.refilled = now
            ready = [t for t in queue.tasks.values() if not t.in_flight] + queue.ghosts
            for task in sorted(ready, key=lambda t: t.due):
                if task.due > now:
                    wait = min(wait, task.due - now)
                    break
                # RateLimits.max_concurrent_dispatches: no more until one finishes.
                if queue.in_flight >= config.max_concurrent_dispatches:
                    break
                if queue.tokens < 1:
                    wait = min(wait, (1 - queue.tokens) / config.max_dispatches_per_second)
                    break
                queue.tokens -= 1
                self._start(queue, task, ghost=task in queue.ghosts, now=now)
        return wait

    def _start(self, queue: _Queue, task: _Task, *, ghost: bool, now: float) -> None:
        if ghost:
            queue.ghosts.remove(task)
            headers = task.sent_headers
        else:
            headers = self._headers(queue, task, now)
            task.sent_headers, task.in_flight = headers, True
            task.dispatch_count += 1  # Task.dispatch_count counts attempts not yet answered
            task.first_dispatch = task.first_dispatch or now
            task.last_attempt = {
                "scheduleTime": _rfc3339(task.schedule_time),
                "dispatchTime": _rfc3339(now),
            }
        queue.in_flight += 1
        queue.max_in_flight = max(queue.max_in_flight, queue.in_flight)
        worker = threading.Thread(
            target=self._deliver, args=(queue, task, headers, ghost), daemon=True
        )
        self._workers.add(worker)
        worker.start()

    def _headers(self, queue: _Queue, task: _Task, now: float) -> dict[str, str]:
        # HttpRequest.headers: Host, Content-Length and User-Agent are replaced, X-Google-*
        # and X-AppEngine-* are Google's; creating-http-target-tasks lists the X-CloudTasks-*.
        headers = {
            k: v
            for k, v in task.headers.items()
            if k.lower() not in ("host", "content-length", "user-agent")
            and not k.lower().startswith(("x-google-", "x-appengine-", "x-cloudtasks-"))
        }
        headers["User-Agent"] = "Google-Cloud-Tasks"
        headers["X-CloudTasks-QueueName"] = queue.config.name.rsplit("/", 1)[1]
        headers["X-CloudTasks-TaskName"] = task.id
        headers["X-CloudTasks-TaskRetryCount"] = str(task.dispatch_count)
        headers["X-CloudTasks-TaskExecutionCount"] = str(task.execution_count)
        headers["X-CloudTasks-TaskETA"] = f"{task.schedule_time:.6f}"
        if task.previous_response is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(task.previous_response)
        if "oidcToken" in task.auth:  # OidcToken: audience defaults to the target's url
            oidc = task.auth["oidcToken"]
            audience = oidc.get("audience") or task.url
            token = oidc_token(oidc.get("serviceAccountEmail", ""), audience, now)
            headers["Authorization"] = f"Bearer {token}"
        elif "oauthToken" in task.auth:  # OAuthToken: an access token, opaque here
            headers["Authorization"] = "Bearer sandbox-oauth-token"
        return headers

    def _deliver(self, queue: _Queue, task: _Task, headers: dict[str, str], ghost: bool) -> None:
        status, error, retry_after = None, None, None
        try:
            answer = requests.request(
                task.method,
                task.url,
                headers=headers,
                data=task.body or None,
                timeout=task.deadline * self.deadline_scale,
            )
            status = answer.status_code
            answer.close()
            text = answer.headers.get("Retry-After", "")
            retry_after = float(text) if text.isdigit() else None
        except requests.Timeout:
            error = "DEADLINE_EXCEEDED"  # Task.dispatch_deadline: a failure, retried
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._workers.discard(threading.current_thread())
            queue.in_flight -= 1
            self._finish(
                queue, task, status=status, error=error, retry_after=retry_after, ghost=ghost
            )
            self._cond.notify_all()

    def _finish(
        self,
        queue: _Queue,
        task: _Task,
        *,
        status: int | None,
        error: str | None,
        retry_after: float | None,
        ghost: bool,
    ) -> None:
        now, scale, config = time.time(), self.time_scale, queue.config
        if self._queues.get(config.name) is not queue:
            return  # under way when the stand-in was reset
        self._attempts.append(
            {
                "task": task.id,
                "queue": config.name,
                "url": task.url,
                "status": status,
                "error": error,
                "retry_count": int(task.sent_headers["X-CloudTasks-TaskRetryCount"]),
                "time": now,
                "duplicate": ghost,
            }
        )
        if ghost or queue.tasks.get(task.name) is not task:
            return  # a duplicate, or a task deleted while it was under way
        task.in_flight = False
        assert task.last_attempt is not None
        task.last_attempt["responseTime"] = _rfc3339(now)
        if status is not None:
            task.response_count += 1
            task.previous_response = status
            task.execution_count += status < 500  # creating-http-target-tasks: 5xx not counted
        if status is not None and 200 <= status < 300:  # HttpRequest: 2xx acknowledges
            self._remove(queue, task, now)
            queue.completed += 1
            if self.duplicate_delivery and self._random.random() < self.duplicate_rate:
                task.due = now
                queue.ghosts.append(task)
            return
        # RetryConfig.max_attempts: stop once max_attempts *and* max_retry_duration are spent.
        out_of_attempts = config.max_attempts != -1 and task.dispatch_count >= config.max_attempts
        first = task.first_dispatch or now
        out_of_time = (
            not config.max_retry_duration or now - first >= config.max_retry_duration * scale
        )
        if out_of_attempts and out_of_time:
            self._remove(queue, task, now)
            return
        delay = retry_delay(config, task.dispatch_count)
        if status in (429, 503) and retry_after is not None:  # HttpRequest: Retry-After considered
            delay = max(delay, retry_after)
        task.due = task.schedule_time = now + delay * scale

    def _remove(self, queue: _Queue, task: _Task, now: float) -> None:
        # CreateTaskRequest.task: a deleted or executed task's name stays taken for a while.
        queue.tasks.pop(task.name, None)
        self._tombstones[task.name] = now + self.tombstone_seconds * self.time_scale

    # ------------------------------------------------------------ REST

    def _install_routes(self) -> None:
        app = self.app

        @app.route("/v2/<path:rest>", methods=["GET", "POST", "DELETE"])
        def _v2(rest: str) -> Response:  # anonymous calls accepted, like Google's emulators
            try:
                with self._cond:
                    return self._route(
                        request.method, rest, "enum-encoding=int" in request.args.get("$alt", "")
                    )
            except ApiError as exc:
                return exc.response()

        @app.get(common.ADMIN_PREFIX + "tasks")
        def _admin_tasks() -> Response:
            state = {"pending": self.pending(), "completed": self.completed}
            return _json({**state, "attempts": self.attempts})

        @app.post(common.ADMIN_PREFIX + "<any(pause, resume, reset):verb>")
        def _admin_verb(verb: str) -> Response:
            getattr(self, verb)()
            return _json({})

    def _route(self, method: str, rest: str, ints: bool) -> Response:
        if (match := re.fullmatch(rf"({QUEUE})/tasks", rest)) and method in ("POST", "GET"):
            parent = match.group(1)
            if method == "POST":
                return self._create(parent, ints)
            return self._list(self._queue(parent), ints)
        match = re.fullmatch(rf"({QUEUE})/tasks/([^/]+)", rest)
        if match and method in ("GET", "DELETE"):
            queue = self._queue(match.group(1))
            task = queue.tasks.get(rest)
            if task is None:
                raise ApiError(404, "NOT_FOUND", f"Requested entity was not found: {rest}")
            if method == "DELETE":  # DeleteTask: a scheduled or dispatched task may go
                self._remove(queue, task, time.time())
                return _json({})
            return _json(self._task_json(task, self._view(request.args.get("responseView")), ints))
        if QUEUE_RE.match(rest) and method == "GET":
            return _json(self._queue_json(self._queue(rest), ints))
        raise ApiError(404, "NOT_FOUND", f"Method {method} /v2/{rest} is not found.")

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            raise ApiError(404, "NOT_FOUND", f"Queue {name} does not exist.")
        return queue

    @staticmethod
    def _view(value: Any) -> str:
        return "FULL" if value in (2, "2", "FULL") else "BASIC"  # View: unspecified = BASIC

    def _create(self, parent: str, ints: bool) -> Response:
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise _invalid("Invalid JSON payload received.") from None
        body = _fields(body, {"task", "responseView"}, "")
        spec = _fields(body.get("task") or {}, TASK_FIELDS, "task")
        queue = self._queues.get(parent)
        if queue is None:  # what the service answers (see the module docstring)
            raise ApiError(400, "FAILED_PRECONDITION", "Queue does not exist.")
        now = time.time()
        task = self._parse_task(parent, spec, now)
        if task.name in queue.tasks or self._tombstones.get(task.name, 0.0) > now:
            # CreateTaskRequest.task, de-duplication; over REST the client raises Conflict.
            raise ApiError(
                409,
                "ALREADY_EXISTS",
                "The task cannot be created because a task with this name existed too recently.",
            )
        queue.tasks[task.name] = task
        self._cond.notify_all()
        return _json(self._task_json(task, self._view(body.get("responseView")), ints))

    def _parse_task(self, parent: str, spec: dict[str, Any], now: float) -> _Task:
        # CreateTaskRequest.task: a name is optional; without one the service makes an id.
        name = spec.get("name") or f"{parent}/tasks/{uuid.uuid4().int % 10**20:020d}"
        prefix = parent + "/tasks/"
        if not isinstance(name, str) or not (
            name.startswith(prefix) and TASK_ID_RE.match(name[len(prefix) :])
        ):
            raise _invalid(f"Task name must be {prefix}TASK_ID ([A-Za-z0-9_-], 1-500): {name!r}")
        http = _fields(spec.get("httpRequest"), HTTP_FIELDS, "task.httpRequest")
        url = http.get("url")
        if not isinstance(url, str) or not URL_RE.match(url) or len(url) > MAX_URL_CHARS:
            raise _invalid("HttpRequest.url must be an absolute http(s) url (at most 2083 chars).")
        given = http.get("httpMethod", 0)
        method = METHODS[given] if isinstance(given, int) and 0 <= given < len(METHODS) else given
        if method not in METHODS:
            raise _invalid(f"Invalid value at 'task.http_request.http_method': {given!r}")
        headers = http.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _invalid("HttpRequest.headers must map names to strings.")
        header_bytes = sum(len(k) + len(v) for k, v in headers.items())
        if header_bytes >= MAX_HEADER_BYTES:
            raise _invalid("HttpRequest.headers must be less than 80KB.")
        data = _decode_body(http.get("body") or "")
        if data and method not in BODY_METHODS:
            raise _invalid(f"HttpRequest.body is allowed only with POST, PUT or PATCH: {method}.")
        size = len(data) + len(url) + len(name) + header_bytes
        if size > self.max_task_bytes:
            raise _invalid(
                f"Task size too large: {size} bytes, the limit is {self.max_task_bytes}."
            )
        deadline = DEFAULT_DEADLINE
        if "dispatchDeadline" in spec:
            deadline = _parse_duration(spec["dispatchDeadline"], "task.dispatch_deadline")
        if not MIN_DEADLINE <= deadline <= MAX_DEADLINE:
            raise _invalid("Task.dispatch_deadline must be in [15 seconds, 30 minutes].")
        schedule = now
        if "scheduleTime" in spec:
            schedule = _parse_time(spec["scheduleTime"], "task.schedule_time")
        if schedule > now + MAX_SCHEDULE_AHEAD:
            raise _invalid("Task.schedule_time must be at most 30 days ahead.")
        schedule = max(schedule, now)  # CreateTaskRequest: unset or past means now
        return _Task(
            name=name,
            url=url,
            method=method,
            headers=dict(headers),
            body=data,
            auth={k: v for k in AUTH_FIELDS if isinstance(v := http.get(k), dict)},
            create_time=float(int(now)),  # Task.create_time: truncated to the second
            schedule_time=schedule,
            due=now + (schedule - now) * self.time_scale,
            deadline=deadline,
        )

    def _list(self, queue: _Queue, ints: bool) -> Response:
        size_text = request.args.get("pageSize", "0") or "0"
        if not size_text.isdigit():
            raise _invalid(f"Invalid value for pageSize: {size_text!r}")
        size = min(int(size_text) or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        token, offset = request.args.get("pageToken", ""), 0
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                offset = int(decoded["o"]) if decoded["q"] == queue.config.name else -1
            except (ValueError, KeyError, TypeError, binascii.Error):
                offset = -1
            if offset < 0:
                raise _invalid("Invalid page token.")
        tasks = list(queue.tasks.values())
        view = self._view(request.args.get("responseView"))
        answer: dict[str, Any] = {
            "tasks": [self._task_json(t, view, ints) for t in tasks[offset : offset + size]]
        }
        if offset + size < len(tasks):
            raw = json.dumps({"o": offset + size, "q": queue.config.name}).encode()
            answer["nextPageToken"] = base64.urlsafe_b64encode(raw).decode()
        return _json(answer)

    def _task_json(self, task: _Task, view: str, ints: bool) -> dict[str, Any]:
        http: dict[str, Any] = {
            "url": task.url,
            "httpMethod": METHODS.index(task.method, 1) if ints else task.method,
        }
        if view == "FULL" or not self.basic_view_hides_headers:
            http["headers"] = dict(task.headers)
        if view == "FULL" and task.body:  # View.BASIC omits the body
            http["body"] = base64.b64encode(task.body).decode()
        http.update(task.auth)
        body: dict[str, Any] = {
            "name": task.name,
            "httpRequest": http,
            "scheduleTime": _rfc3339(task.schedule_time),
            "createTime": _rfc3339(task.create_time),
            "dispatchDeadline": _duration(task.deadline),
            "dispatchCount": task.dispatch_count,
            "responseCount": task.response_count,
            "view": {"BASIC": 1, "FULL": 2}[view] if ints else view,
        }
        if task.first_dispatch is not None:  # Task.first_attempt: only dispatch_time is kept
            body["firstAttempt"] = {"dispatchTime": _rfc3339(task.first_dispatch)}
        if task.last_attempt is not None:
            body["lastAttempt"] = dict(task.last_attempt)
        return body

    def _queue_json(self, queue: _Queue, ints: bool) -> dict[str, Any]:
        config = queue.config
        return {
            "name": config.name,
            "rateLimits": {
                "maxDispatchesPerSecond": config.max_dispatches_per_second,
                "maxBurstSize": config.burst,
                "maxConcurrentDispatches": config.max_concurrent_dispatches,
            },
            "retryConfig": {
                "maxAttempts": config.max_attempts,
                "maxRetryDuration": _duration(config.max_retry_duration),
                "minBackoff": _duration(config.min_backoff),
                "maxBackoff": _duration(config.max_backoff),
                "maxDoublings": config.max_doublings,
            },
            "state": [("RUNNING", 1), ("PAUSED", 2)][self._paused][ints],
        }


def serve(port: int = 0, **kwargs: Any) -> tuple[CloudTasksStandIn, common.ServerThread]:
    """Starts a stand-in on 127.0.0.1:`port` (0 = any free port); kwargs go to the stand-in."""
    stand_in = CloudTasksStandIn(**kwargs)
    return stand_in, common.ServerThread(stand_in.app, port).start()
