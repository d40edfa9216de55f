"""The shared fault injection: rates, dropped connections, lost answers, part faults."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from flask import Flask

from sandbox.common import Fault, Recorder, ServerThread, install_sandbox_routes

WRITES: list[str] = []


def write() -> str:
    WRITES.append("done")
    return "written"


@pytest.fixture
def served() -> Iterator[tuple[Recorder, str]]:
    app = Flask("t")
    recorder = Recorder(seed=1)
    install_sandbox_routes(app, recorder)
    app.add_url_rule("/x", "x", lambda: "ok")
    app.add_url_rule("/write", "write", write, methods=["POST"])
    WRITES.clear()
    server = ServerThread(app).start()
    yield recorder, server.url
    server.stop()


def test_rate_hits_about_that_share(served: tuple[Recorder, str]) -> None:
    recorder, url = served
    recorder.add_fault(Fault(re.compile("/x"), None, 503, count=1000, delay=0.0, rate=0.3))
    statuses = [requests.get(f"{url}/x", timeout=5).status_code for _ in range(200)]
    assert 30 <= statuses.count(503) <= 90
    assert statuses.count(200) == 200 - statuses.count(503)


def test_dropped_connection_gives_no_answer(served: tuple[Recorder, str]) -> None:
    recorder, url = served
    recorder.add_fault(Fault(re.compile("/x"), None, None, count=1, delay=0.0, drop=True))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/x", timeout=5)
    assert requests.get(f"{url}/x", timeout=5).text == "ok"


def test_faults_over_http(served: tuple[Recorder, str]) -> None:
    _recorder, url = served
    requests.post(
        f"{url}/_sandbox/faults",
        json={"path": "/x", "status": 429, "count": 2, "rate": 1.0},
        timeout=5,
    )
    assert [requests.get(f"{url}/x", timeout=5).status_code for _ in range(3)] == [429, 429, 200]
    assert [
        c["status"] for c in requests.get(f"{url}/_sandbox/calls", timeout=5).json()["calls"]
    ] == [429, 429, 200]


def test_drop_after_commits_the_write_and_loses_its_answer(served: tuple[Recorder, str]) -> None:
    recorder, url = served
    fault = {"path": "^/write$", "method": "POST", "drop_after": True}
    assert requests.post(f"{url}/_sandbox/faults", json=fault, timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{url}/write", timeout=5)
    assert WRITES == ["done"]
    assert requests.post(f"{url}/write", timeout=5).text == "written"
    assert WRITES == ["done", "done"]
    assert [(c.method, c.status) for c in recorder.snapshot()] == [("POST", 200), ("POST", 200)]


def test_part_faults_never_hit_whole_requests(served: tuple[Recorder, str]) -> None:
    recorder, url = served
    recorder.add_fault(Fault(re.compile("/x"), None, 503, count=5, delay=0.0, part=True))
    assert requests.get(f"{url}/x", timeout=5).status_code == 200
    assert recorder.take_fault("GET", "/x") is None
    hit = recorder.take_fault("GET", "/x", part=True)
    assert hit is not None
    assert hit.status == 503


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "/x", "status": 503, "drop_after": True},
        {"path": "/x", "drop": True, "drop_after": True},
        {"path": "/x", "part": True, "drop": True},
        {"path": "(", "status": 503},
        {"path": "/x", "status": 503, "rate": 2},
    ],
)
def test_a_fault_that_cannot_be_is_refused(served: tuple[Recorder, str], spec: dict) -> None:
    recorder, url = served
    assert requests.post(f"{url}/_sandbox/faults", json=spec, timeout=5).status_code == 400
    assert recorder.faults == []


def test_default_fault_bodies_carry_a_reason_that_fits_the_status(
    served: tuple[Recorder, str],
) -> None:
    _recorder, url = served
    for status, reason in ((429, "rateLimitExceeded"), (500, "backendError"), (409, "conflict")):
        fault = {"path": "/x", "status": status}
        requests.post(f"{url}/_sandbox/faults", json=fault, timeout=5)
        answer = requests.get(f"{url}/x", timeout=5)
        assert answer.status_code == status
        assert answer.json()["error"]["errors"][0]["reason"] == reason
