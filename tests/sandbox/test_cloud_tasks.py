"""The Cloud Tasks stand-in, driven by the real google-cloud-tasks client (REST), delivering
to a small target server on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.credentials
import pytest
import requests
from flask import Flask, Response, request
from google.api_core import exceptions
from google.cloud import tasks_v2

from sandbox.cloud_tasks import CloudTasksStandIn, QueueConfig, retry_delay, serve
from sandbox.common import Fault, Recorder, ServerThread, install_sandbox_routes

PROJECT_QUEUES = "projects/demo-project/locations/europe-west1/queues"
SA = "tasks@demo-project.iam.gserviceaccount.com"
View = tasks_v2.Task.View


class Target:
    """A worker that records each request; faults (503, a dropped connection) come from
    `sandbox.common`, and `/slow` answers after `slow_seconds` while counting concurrency."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.recorder = Recorder()
        self.slow_seconds = 0.0
        self.in_flight = self.max_in_flight = 0
        self.retry_after: str | None = None
        app = Flask("target")

        @app.before_request
        def _record() -> None:  # registered first: faulted requests are recorded too
            with self.lock:
                self.received.append(
                    {
                        "path": request.path,
                        "method": request.method,
                        "headers": dict(request.headers),
                        "body": request.get_data(),
                        "time": time.time(),
                    }
                )

        install_sandbox_routes(app, self.recorder)

        @app.route("/<path:path>", methods=["GET", "POST", "PUT"])
        def _work(path: str) -> Response:
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if path == "slow":
                    time.sleep(self.slow_seconds)
                return Response("ok", status=200)
            finally:
                with self.lock:
                    self.in_flight -= 1

        self.server = ServerThread(app).start()

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.in_flight = self.max_in_flight = 0
        self.slow_seconds = 0.0
        self.recorder.reset_calls()
        self.recorder.clear_faults()

    def fault(self, path: str, count: int, **kwargs: Any) -> None:
        spec = {"status": None, "delay": 0.0, **kwargs}
        self.recorder.add_fault(Fault(path=re.compile(path), method=None, count=count, **spec))

    def hits(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if r["path"] == path]


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[CloudTasksStandIn, ServerThread, Target]]:
    """One stand-in, one server and one target for the module (stopping a server costs half
    a second); each test resets them and adds the queues it needs."""
    stand_in, server = serve()
    target = Target()
    yield stand_in, server, target
    stand_in.stop()
    server.stop()
    target.server.stop()


@pytest.fixture
def stand_in(shared: tuple[CloudTasksStandIn, ServerThread, Target]) -> CloudTasksStandIn:
    stand_in = shared[0]
    stand_in.reset()
    stand_in.time_scale, stand_in.deadline_scale = 0.001, 1.0
    stand_in.tombstone_seconds, stand_in.duplicate_delivery = 3600.0, False
    return stand_in


@pytest.fixture
def target(shared: tuple[CloudTasksStandIn, ServerThread, Target]) -> Target:
    shared[2].reset()
    return shared[2]


@pytest.fixture
def client(
    shared: tuple[CloudTasksStandIn, ServerThread, Target], stand_in: CloudTasksStandIn
) -> tasks_v2.CloudTasksClient:
    return tasks_v2.CloudTasksClient(
        transport="rest",
        credentials=google.auth.credentials.AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": shared[1].url},
    )


def queue(stand_in: CloudTasksStandIn, short: str, **settings: Any) -> str:
    return stand_in.add_queue(f"{PROJECT_QUEUES}/{short}", **settings).name


def create(
    client: tasks_v2.CloudTasksClient,
    parent: str,
    url: str,
    task_id: str | None = None,
    **http: Any,
) -> tasks_v2.Task:
    task: dict[str, Any] = {"http_request": {"url": url, **http}}
    if task_id:
        task["name"] = f"{parent}/tasks/{task_id}"
    return client.create_task(request={"parent": parent, "task": task})


def status_of(error: exceptions.GoogleAPICallError) -> str:
    assert error.response is not None
    return str(error.response.json()["error"]["status"])


def claims(authorization: str) -> dict[str, Any]:
    scheme, token = authorization.split(" ", 1)
    assert scheme == "Bearer"
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


# ------------------------------------------------------------------ create and deliver


def test_task_is_delivered_once_with_oidc_token_and_cloud_tasks_headers(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "sync")
    url = target.server.url + "/work"
    before = time.time()
    task = create(
        client,
        parent,
        url,
        "hook-abc_1",
        body=b'{"recordId": "7"}',
        headers={"Content-Type": "application/json", "X-Google-Secret": "dropped"},
        oidc_token={"service_account_email": SA},
    )
    assert task.name == f"{parent}/tasks/hook-abc_1"
    assert task.view == View.BASIC
    assert task.http_request.body == b""  # BASIC omits the body
    assert task.dispatch_deadline.total_seconds() == 600  # the reference's default
    assert stand_in.wait_idle(5)

    (hit,) = target.hits("/work")
    headers = hit["headers"]
    assert hit["method"] == "POST"
    assert json.loads(hit["body"]) == {"recordId": "7"}
    assert headers["Content-Type"] == "application/json"
    assert "X-Google-Secret" not in headers
    assert headers["User-Agent"] == "Google-Cloud-Tasks"
    assert headers["X-Cloudtasks-Queuename"] == "sync"
    assert headers["X-Cloudtasks-Taskname"] == "hook-abc_1"
    assert headers["X-Cloudtasks-Taskretrycount"] == "0"
    assert headers["X-Cloudtasks-Taskexecutioncount"] == "0"
    assert before - 1 <= float(headers["X-Cloudtasks-Tasketa"]) <= time.time()
    token = claims(headers["Authorization"])
    assert token["aud"] == url  # no audience given: the target's url
    assert token["email"] == SA
    assert token["iss"] == "https://accounts.google.com"
    assert token["exp"] > time.time()
    assert stand_in.completed[parent] == 1
    assert stand_in.pending() == []


def test_generated_names_views_audience_and_http_method(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "views")
    stand_in.pause()
    full = client.create_task(
        request={
            "parent": parent,
            "task": {
                "http_request": {
                    "url": target.server.url + "/work",
                    "http_method": tasks_v2.HttpMethod.PUT,
                    "body": b"payload",
                    "headers": {"X-Custom": "1"},
                    "oidc_token": {"service_account_email": SA, "audience": "https://worker"},
                }
            },
            "response_view": View.FULL,
        }
    )
    assert re.fullmatch(rf"{parent}/tasks/\d{{20}}", full.name)
    assert full.view == View.FULL
    assert full.http_request.body == b"payload"
    assert full.http_request.headers == {"X-Custom": "1"}
    basic = client.get_task(name=full.name)
    assert basic.http_request.body == b""
    assert dict(basic.http_request.headers) == {}  # the harsher reading: BASIC hides headers
    assert basic.http_request.http_method == tasks_v2.HttpMethod.PUT
    stand_in.resume()
    assert stand_in.wait_idle(5)
    (hit,) = target.hits("/work")
    assert (hit["method"], hit["body"]) == ("PUT", b"payload")
    assert claims(hit["headers"]["Authorization"])["aud"] == "https://worker"


def test_reused_name_conflicts_while_pending_and_after_completion_until_the_tombstone_ends(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "dedupe")
    url = target.server.url + "/work"
    stand_in.tombstone_seconds = 300.0  # x 0.001: 0.3 s
    stand_in.pause()
    create(client, parent, url, "hook-1")
    with pytest.raises(exceptions.Conflict) as pending:
        create(client, parent, url, "hook-1")
    assert type(pending.value) is exceptions.Conflict  # not its subclass AlreadyExists
    assert status_of(pending.value) == "ALREADY_EXISTS"

    stand_in.resume()
    assert stand_in.wait_idle(5)
    with pytest.raises(exceptions.Conflict):
        create(client, parent, url, "hook-1")  # completed, still within the window
    stand_in.pause()
    created = create(client, parent, url, "hook-2")
    client.delete_task(name=created.name)
    with pytest.raises(exceptions.Conflict):
        create(client, parent, url, "hook-2")  # deleted, still within the window

    time.sleep(0.35)
    create(client, parent, url, "hook-1")
    create(client, parent, url, "hook-2")
    stand_in.resume()
    assert stand_in.wait_idle(5)
    names = sorted(h["headers"]["X-Cloudtasks-Taskname"] for h in target.hits("/work"))
    assert names == ["hook-1", "hook-1", "hook-2"]  # the deleted hook-2 never ran


def test_unknown_queue_fails_create_and_get(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn
) -> None:
    missing = f"{PROJECT_QUEUES}/missing"
    with pytest.raises(exceptions.BadRequest) as created:
        create(client, missing, "http://127.0.0.1:9/work")
    assert status_of(created.value) == "FAILED_PRECONDITION"
    with pytest.raises(exceptions.NotFound):
        client.get_queue(name=missing)
    with pytest.raises(exceptions.NotFound):
        client.get_task(name=f"{missing}/tasks/x")


@pytest.mark.parametrize(
    ("task", "fragment"),
    [
        ({"name": f"{PROJECT_QUEUES}/other/tasks/a"}, "Task name"),
        ({"name": "{parent}/tasks/has.dot"}, "Task name"),
        ({"name": "{parent}/tasks/" + "x" * 501}, "Task name"),
        ({"http_request": {"url": "/relative"}}, "url"),
        ({"http_request": {"url": "ftp://127.0.0.1/x"}}, "url"),
        ({"http_request": {"url": "http://127.0.0.1/x", "body": b"x" * 102_400}}, "size"),
        ({"http_request": {"url": "http://127.0.0.1/x", "http_method": 2, "body": b"x"}}, "body"),
        ({"dispatch_deadline": {"seconds": 5}}, "dispatch_deadline"),
        ({"dispatch_deadline": {"seconds": 1801}}, "dispatch_deadline"),
        ({"schedule_time": datetime.now(UTC) + timedelta(days=31)}, "30 days"),
    ],
)
def test_invalid_tasks_are_refused(
    client: tasks_v2.CloudTasksClient,
    stand_in: CloudTasksStandIn,
    task: dict[str, Any],
    fragment: str,
) -> None:
    parent = queue(stand_in, "strict")
    spec: dict[str, Any] = {"http_request": {"url": "http://127.0.0.1:9/work"}, **task}
    if "name" in spec:
        spec["name"] = spec["name"].format(parent=parent)
    with pytest.raises(exceptions.BadRequest) as refused:
        client.create_task(request={"parent": parent, "task": spec})
    assert status_of(refused.value) == "INVALID_ARGUMENT"
    assert fragment in refused.value.message
    assert stand_in.pending() == []


def test_a_task_just_under_the_size_limit_is_accepted(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn
) -> None:
    parent = queue(stand_in, "sized")
    stand_in.pause()
    create(client, parent, "http://127.0.0.1:9/work", body=b"x" * 100_000)
    assert len(stand_in.pending(parent)) == 1


# ------------------------------------------------------------------ retries


def test_retries_after_503_and_a_dropped_connection_with_doubling_backoff(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "retry", min_backoff=2.0, max_backoff=100.0, max_doublings=4)
    stand_in.time_scale = 0.05  # backoffs 0.1 s, then 0.2 s
    target.fault("^/flaky$", 1, status=503)
    create(client, parent, target.server.url + "/flaky", "flaky-1")
    deadline = time.monotonic() + 2
    while not target.hits("/flaky") and time.monotonic() < deadline:
        time.sleep(0.01)
    target.fault("^/flaky$", 1, drop=True)
    assert stand_in.wait_idle(5)

    attempts = stand_in.attempts
    assert [a["status"] for a in attempts] == [503, None, 200]
    assert "ConnectionError" in attempts[1]["error"]
    assert [a["retry_count"] for a in attempts] == [0, 1, 2]
    hits = target.hits("/flaky")
    assert [h["headers"]["X-Cloudtasks-Taskretrycount"] for h in hits] == ["0", "1", "2"]
    assert [h["headers"]["X-Cloudtasks-Taskexecutioncount"] for h in hits] == ["0", "0", "0"]
    assert hits[1]["headers"]["X-Cloudtasks-Taskpreviousresponse"] == "503"
    first_gap, second_gap = hits[1]["time"] - hits[0]["time"], hits[2]["time"] - hits[1]["time"]
    assert first_gap >= 0.09
    assert second_gap >= 0.19
    assert stand_in.completed[parent] == 1


def test_backoff_doubles_then_grows_linearly_to_the_cap() -> None:
    # RetryConfig.max_doublings reference: 10s, 20s, 40s, 80s, 160s, 240s, 300s, 300s, ...
    config = QueueConfig(f"{PROJECT_QUEUES}/b", min_backoff=10, max_backoff=300, max_doublings=3)
    assert [retry_delay(config, n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 240, 300, 300]
    defaults = QueueConfig(f"{PROJECT_QUEUES}/d")
    assert retry_delay(defaults, 1) == pytest.approx(0.1)
    assert retry_delay(defaults, 40) == 3600


def test_retry_after_of_a_429_delays_the_retry(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "throttled", min_backoff=0.1)
    stand_in.time_scale = 0.1  # backoff 0.01 s, Retry-After 3 s -> 0.3 s
    target.fault("^/busy$", 1, status=429, headers={"Retry-After": "3"})
    create(client, parent, target.server.url + "/busy")
    assert stand_in.wait_idle(5)
    first, second = target.hits("/busy")
    assert second["time"] - first["time"] >= 0.29
    assert second["headers"]["X-Cloudtasks-Taskexecutioncount"] == "1"  # a 4xx counts


def test_exhausted_max_attempts_drops_the_task_and_keeps_its_name(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "doomed", max_attempts=3, min_backoff=0.1)
    target.fault("^/down$", 10, status=500)
    create(client, parent, target.server.url + "/down", "doomed-1")
    assert stand_in.wait_idle(5)
    assert [a["status"] for a in stand_in.attempts] == [500, 500, 500]
    assert stand_in.pending() == []
    assert stand_in.completed[parent] == 0
    with pytest.raises(exceptions.Conflict):
        create(client, parent, target.server.url + "/down", "doomed-1")


def test_max_retry_duration_keeps_retrying_past_max_attempts(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    # RetryConfig: retries stop only once max_attempts *and* max_retry_duration are spent.
    parent = queue(
        stand_in, "patient", max_attempts=1, max_retry_duration=300.0, min_backoff=10.0
    )  # x 0.001: attempts every 0.01 s for 0.3 s
    target.fault("^/down$", 1000, status=500)
    create(client, parent, target.server.url + "/down")
    assert stand_in.wait_idle(5)
    assert len(stand_in.attempts) >= 5


def test_dispatch_deadline_exceeded_counts_as_a_failure(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "deadline", min_backoff=100.0)  # x 0.001: 0.1 s
    stand_in.deadline_scale = 0.01  # 15 s -> 0.15 s
    target.slow_seconds = 0.4
    slow = {"url": target.server.url + "/slow"}
    task = {"http_request": slow, "dispatch_deadline": {"seconds": 15}}
    client.create_task(request={"parent": parent, "task": task})
    deadline = time.monotonic() + 2
    while not stand_in.attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    target.slow_seconds = 0.0
    assert stand_in.wait_idle(5)
    assert [a["error"] for a in stand_in.attempts] == ["DEADLINE_EXCEEDED", None]
    assert stand_in.attempts[1]["status"] == 200


# ------------------------------------------------------------------ rate, concurrency, schedule


def test_rate_limit_spaces_dispatches_after_the_burst(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "bpium", max_dispatches_per_second=10)
    assert client.get_queue(name=parent).rate_limits.max_burst_size == 10
    stand_in.pause()
    for _ in range(30):
        create(client, parent, target.server.url + "/work")
    resumed = time.time()
    stand_in.resume()
    assert stand_in.wait_idle(6)
    times = sorted(h["time"] for h in target.hits("/work"))
    assert len(times) == 30
    # 10 at once, then 20 at 10/s: the last leaves 2 s after the resume. Measured from the
    # resume, not from the first arrival, which a loaded machine may delay.
    assert times[-1] - resumed >= 1.8
    assert sum(1 for t in times if t - times[0] < 0.5) <= 16


def test_concurrency_never_exceeds_max_concurrent_dispatches(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "narrow", max_concurrent_dispatches=3)
    target.slow_seconds = 0.15
    stand_in.pause()
    for _ in range(12):
        create(client, parent, target.server.url + "/slow")
    stand_in.resume()
    assert stand_in.wait_idle(5)
    assert stand_in.max_in_flight_seen[parent] == 3
    assert target.max_in_flight == 3
    assert len(target.hits("/slow")) == 12


def test_schedule_time_in_the_future_waits_scaled(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "later")
    stand_in.time_scale = 0.005  # 100 s -> 0.5 s
    when = datetime.now(UTC) + timedelta(seconds=100)
    created_at = time.time()
    spec = {"http_request": {"url": target.server.url + "/work"}, "schedule_time": when}
    task = client.create_task(request={"parent": parent, "task": spec})
    assert abs(task.schedule_time.timestamp() - when.timestamp()) < 0.001
    assert stand_in.wait_idle(5)
    (hit,) = target.hits("/work")
    assert hit["time"] - created_at >= 0.45
    assert abs(float(hit["headers"]["X-Cloudtasks-Tasketa"]) - when.timestamp()) < 0.001


def test_pause_accumulates_tasks_and_resume_delivers_them(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "held")
    stand_in.pause()
    for _ in range(5):
        create(client, parent, target.server.url + "/work")
    time.sleep(0.2)
    assert target.hits("/work") == []
    assert len(stand_in.pending(parent)) == 5
    assert not stand_in.wait_idle(0.1)
    assert client.get_queue(name=parent).state == tasks_v2.Queue.State.PAUSED
    stand_in.resume()
    assert stand_in.wait_idle(5)
    assert len(target.hits("/work")) == 5
    assert client.get_queue(name=parent).state == tasks_v2.Queue.State.RUNNING


# ------------------------------------------------------------------ read, list, delete


def test_queue_shows_its_rate_limits_and_retry_config(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn
) -> None:
    default = client.get_queue(name=queue(stand_in, "plain"))
    assert default.rate_limits.max_dispatches_per_second == 500
    assert default.rate_limits.max_concurrent_dispatches == 1000
    assert default.retry_config.max_attempts == 100
    assert default.retry_config.min_backoff.total_seconds() == pytest.approx(0.1)
    assert default.retry_config.max_backoff.total_seconds() == 3600
    assert default.retry_config.max_doublings == 16
    tuned = client.get_queue(
        name=queue(stand_in, "tuned", max_dispatches_per_second=3.3, max_attempts=-1)
    )
    assert tuned.rate_limits.max_burst_size == 4
    assert tuned.retry_config.max_attempts == -1


def test_list_pages_get_and_delete(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "listed")
    stand_in.pause()
    names = [create(client, parent, target.server.url + "/work", f"t{i}").name for i in range(5)]
    pager = client.list_tasks(request={"parent": parent, "page_size": 2})
    assert [t.name for t in pager] == names
    assert client.get_task(name=names[0]).name == names[0]
    client.delete_task(name=names[0])
    with pytest.raises(exceptions.NotFound):
        client.get_task(name=names[0])
    with pytest.raises(exceptions.NotFound):
        client.delete_task(name=names[0])
    stand_in.resume()
    assert stand_in.wait_idle(5)
    got = {h["headers"]["X-Cloudtasks-Taskname"] for h in target.hits("/work")}
    assert got == {"t1", "t2", "t3", "t4"}


# ------------------------------------------------------------------ faults and switches


def test_create_faults_surface_in_the_client(
    shared: tuple[CloudTasksStandIn, ServerThread, Target],
    client: tasks_v2.CloudTasksClient,
    stand_in: CloudTasksStandIn,
) -> None:
    parent = queue(stand_in, "faulty")
    stand_in.pause()
    stand_in.fault_creates(2)
    for _ in range(2):
        with pytest.raises(exceptions.ServiceUnavailable):
            create(client, parent, "http://127.0.0.1:9/work")
    stand_in.fault_creates(1, drop=True)
    with pytest.raises(requests.ConnectionError):
        create(client, parent, "http://127.0.0.1:9/work")
    spec = {"path": "/tasks$", "method": "POST", "status": 503}
    assert requests.post(shared[1].url + "/_sandbox/faults", json=spec, timeout=5).ok
    with pytest.raises(exceptions.ServiceUnavailable):
        create(client, parent, "http://127.0.0.1:9/work")
    create(client, parent, "http://127.0.0.1:9/work")
    assert len(stand_in.pending(parent)) == 1
    assert stand_in.recorder.count("POST", "/tasks$") == 5


def test_duplicate_delivery_redelivers_some_acknowledged_tasks(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "twice")
    stand_in.duplicate_delivery = True
    for i in range(20):
        create(client, parent, target.server.url + "/work", f"d{i}")
    assert stand_in.wait_idle(5)
    names = [h["headers"]["X-Cloudtasks-Taskname"] for h in target.hits("/work")]
    assert set(names) == {f"d{i}" for i in range(20)}
    assert 20 < len(names) <= 40
    assert stand_in.completed[parent] == 20
    assert sum(a["duplicate"] for a in stand_in.attempts) == len(names) - 20


def test_without_the_switch_each_task_is_delivered_exactly_once(
    client: tasks_v2.CloudTasksClient, stand_in: CloudTasksStandIn, target: Target
) -> None:
    parent = queue(stand_in, "once")
    for i in range(20):
        create(client, parent, target.server.url + "/work", f"o{i}")
    assert stand_in.wait_idle(5)
    names = sorted(h["headers"]["X-Cloudtasks-Taskname"] for h in target.hits("/work"))
    assert names == sorted(f"o{i}" for i in range(20))


def test_admin_routes_pause_resume_and_show_tasks(
    shared: tuple[CloudTasksStandIn, ServerThread, Target],
    client: tasks_v2.CloudTasksClient,
    stand_in: CloudTasksStandIn,
    target: Target,
) -> None:
    base = shared[1].url + "/_sandbox/"
    parent = queue(stand_in, "admin")
    assert requests.post(base + "pause", timeout=5).ok
    create(client, parent, target.server.url + "/work", "a1")
    shown = requests.get(base + "tasks", timeout=5).json()
    assert [t["id"] for t in shown["pending"]] == ["a1"]
    assert requests.post(base + "resume", timeout=5).ok
    assert stand_in.wait_idle(5)
    assert requests.get(base + "tasks", timeout=5).json()["completed"][parent] == 1


def test_stop_ends_the_dispatcher() -> None:
    stand_in = CloudTasksStandIn([f"{PROJECT_QUEUES}/q"])
    stand_in.stop()
    assert not stand_in._scheduler.is_alive()
    with pytest.raises(ValueError, match="queue name"):
        stand_in.add_queue("queues/q")
