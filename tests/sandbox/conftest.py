"""The Google stand-in served once per test module; each module resets it per test (its
own `google` fixture), and may use `url` and `api` (googleapiclient against it) from here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from sandbox.common import ServerThread
from sandbox.google_calendar import GoogleStandIn, serve

SCOPES = ["https://www.googleapis.com/auth/calendar"]
CLIENT_ID = "client-1.apps.googleusercontent.com"


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[GoogleStandIn, ServerThread]]:
    stand_in, thread = serve()
    yield stand_in, thread
    thread.stop()


@pytest.fixture
def google(shared: tuple[GoogleStandIn, ServerThread]) -> GoogleStandIn:
    """The stand-in as new, on the real clock, with one OAuth client (modules may override)."""
    stand_in = shared[0]
    stand_in.reset()
    stand_in.clock = time.time
    stand_in.add_client(CLIENT_ID, "secret-1")
    return stand_in


@pytest.fixture
def url(shared: tuple[GoogleStandIn, ServerThread], google: GoogleStandIn) -> str:
    return shared[1].url


@pytest.fixture
def token(google: GoogleStandIn) -> str:
    return google.issue_access_token(CLIENT_ID, SCOPES)[0]


@pytest.fixture
def api(url: str, token: str) -> Any:
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        credentials=Credentials(token=token),
        client_options={"api_endpoint": f"{url}/calendar/v3/"},
    )


def failure(request: Any) -> tuple[int, str]:
    """(status, reason) of a request that must fail."""
    with pytest.raises(HttpError) as caught:
        request.execute()
    error = json.loads(caught.value.content)["error"]
    return caught.value.status_code, error["errors"][0]["reason"]
