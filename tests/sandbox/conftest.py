"""The Google stand-in served once per test module; each module resets it per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.common import ServerThread
from sandbox.google_calendar import GoogleStandIn, serve


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[GoogleStandIn, ServerThread]]:
    stand_in, thread = serve()
    yield stand_in, thread
    thread.stop()
