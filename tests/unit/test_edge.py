"""The HTTP edge's pure parts, retries, secrets cache and log masking."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging

import pytest

from bpium_calendar import log
from bpium_calendar.errors import AppError, BadRequest, Unauthorized, UpstreamUnavailable
from bpium_calendar.retry import RetryPolicy, deadline_in, with_retries
from bpium_calendar.secret_store import LocalFolderSource, SecretStore, crc32c
from bpium_calendar.web import verify_signature


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.md5).digest()).decode()


def test_signature_of_the_raw_body_is_accepted() -> None:
    verify_signature(b'{"a": 1}', sign(b'{"a": 1}', "s3cret"), "s3cret")


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (None, "signature_missing"),
        ("%%%", "signature_invalid"),
        (sign(b'{"a": 2}', "s3cret"), "signature_invalid"),
        (sign(b'{"a": 1}', "other"), "signature_invalid"),
    ],
)
def test_bad_signatures_are_refused(signature: str | None, code: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        verify_signature(b'{"a": 1}', signature, "s3cret")
    assert caught.value.code == code


def test_crc32c_known_answer() -> None:
    assert crc32c(b"123456789") == 0xE3069283


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_retries_transient_errors_with_growing_backoff() -> None:
    clock = FakeClock()
    attempts = iter([UpstreamUnavailable("a"), UpstreamUnavailable("b"), "ok"])

    def attempt() -> str:
        item = next(attempts)
        if isinstance(item, Exception):
            raise item
        return item

    with deadline_in(50, clock=clock):
        result = with_retries(attempt, what="t", sleep=clock.sleep, clock=clock, rand=lambda: 1.0)
    assert result == "ok"
    assert clock.slept == [0.5, 1.0]


def test_honours_retry_after() -> None:
    clock = FakeClock()
    calls = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise UpstreamUnavailable("429", retry_after=7)
        return "ok"

    with deadline_in(50, clock=clock):
        with_retries(attempt, what="t", sleep=clock.sleep, clock=clock, rand=lambda: 0.0)
    assert clock.slept == [7.0]


def test_does_not_retry_permanent_errors() -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise BadRequest("no")

    with pytest.raises(BadRequest):
        with_retries(attempt, what="t", sleep=lambda s: None)
    assert len(calls) == 1


def test_stops_at_the_deadline_and_at_max_attempts() -> None:
    clock = FakeClock()

    def attempt() -> None:
        raise UpstreamUnavailable("down")

    with deadline_in(5, clock=clock), pytest.raises(UpstreamUnavailable):
        with_retries(
            attempt,
            what="t",
            sleep=clock.sleep,
            clock=clock,
            rand=lambda: 1.0,
            policy=RetryPolicy(max_attempts=50, base_delay=1.0),
        )
    assert sum(clock.slept) < 5
    calls = []

    def counted() -> None:
        calls.append(1)
        raise UpstreamUnavailable("down")

    with pytest.raises(UpstreamUnavailable):
        with_retries(counted, what="t", sleep=lambda s: None, policy=RetryPolicy(max_attempts=3))
    assert len(calls) == 3


def test_secret_store_caches_with_a_time_limit(tmp_path) -> None:
    source = LocalFolderSource(tmp_path)
    source.write("api-key", "first-value")
    clock = FakeClock()
    store = SecretStore(source, max_age=60, clock=clock)
    assert store.get("api-key") == "first-value"
    source.write("api-key", "second-value")
    assert store.get("api-key") == "first-value"
    assert store.get("api-key", fresh=True) == "second-value"
    source.write("api-key", "third-value")
    clock.now += 61
    assert store.get("api-key") == "third-value"


def test_missing_local_secret_is_a_config_error(tmp_path) -> None:
    with pytest.raises(AppError) as caught:
        SecretStore(LocalFolderSource(tmp_path)).get("bpium-credentials")
    assert caught.value.code == "secret_missing"


def test_secret_json_must_be_an_object(tmp_path) -> None:
    LocalFolderSource(tmp_path).write("google-oauth-token", "[1]")
    with pytest.raises(AppError, match="JSON object"):
        SecretStore(LocalFolderSource(tmp_path)).get_json("google-oauth-token")


def test_logs_are_cloud_logging_json_with_context_and_no_secrets() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log.CloudLoggingFormatter())
    logger = logging.getLogger(log.LOGGER_NAME)
    logger.addHandler(handler)
    try:
        log.configure("INFO", "acme")
        log.register_secret("hunter2-password-value")
        with log.request_context(
            function="on_meeting_created",
            execution_id="ex1",
            trace_id="0123456789abcdef0123456789abcdef",
            span_id="7",
        ):
            log.warning(
                "event_upserted",
                note="login with hunter2-password-value",
                password="plain",
                nested={"access_token": "t"},
            )
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["severity"] == "WARNING"
    assert line["message"] == "event_upserted"
    assert line["logging.googleapis.com/labels"] == {
        "function": "on_meeting_created",
        "execution_id": "ex1",
    }
    assert (
        line["logging.googleapis.com/trace"]
        == "projects/acme/traces/0123456789abcdef0123456789abcdef"
    )
    assert line["logging.googleapis.com/spanId"] == "7"
    assert line["note"] == "login with [redacted]"
    assert line["password"] == "[redacted]"
    assert line["nested"] == {"access_token": "[redacted]"}
    assert "hunter2" not in stream.getvalue()
