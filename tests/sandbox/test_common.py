"""The shared fault injection: rates, dropped connections."""

from __future__ import annotations

import re

import pytest
import requests
from flask import Flask

from sandbox.common import Fault, Recorder, ServerThread, install_sandbox_routes


@pytest.fixture
def served() -> tuple[Recorder, str]:
    app = Flask("t")
    recorder = Recorder(seed=1)
    install_sandbox_routes(app, recorder)
    app.add_url_rule("/x", "x", lambda: "ok")
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
