"""The HTTP edge: body limits, signatures, request context, and errors → JSON answers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import flask

from . import log
from .domain import load_json, parse_webhook
from .errors import AppError, BadRequest, PayloadTooLarge, Unauthorized
from .retry import deadline_in
from .secret_store import API_KEY, BPIUM_WEBHOOK_SECRET

if TYPE_CHECKING:
    from .services import Services

MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_HEADER = "X-Hook-Signature"
# Until the settings are read: Cloud Functions' default timeout is 60 s, and retries stop
# in time to answer by then. Each function then works to its own timeout's deadline.
DEADLINE_SECONDS = 50.0
_EXECUTION_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")

Handler = Callable[[], tuple[int, dict[str, Any]]]


def json_response(status: int, body: dict[str, Any]) -> flask.Response:
    # Bpium deletes a webhook that answers 410, so no path may ever answer it.
    response = flask.jsonify(body)
    response.status_code = 502 if status == 410 else status
    return response


def _trace(request: flask.Request) -> dict[str, str]:
    cloud = _CLOUD_TRACE.match(request.headers.get("X-Cloud-Trace-Context", ""))
    if cloud:
        return {"trace_id": cloud.group(1), "span_id": cloud.group(2) or ""}
    parent = _TRACEPARENT.match(request.headers.get("traceparent", ""))
    if parent:
        return {"trace_id": parent.group(1), "span_id": parent.group(2)}
    return {}


def endpoint(name: str, request: flask.Request, handler: Handler) -> flask.Response:
    """Runs `handler` with request context and a deadline; maps every error to JSON."""
    log.configure()
    execution_id = request.headers.get("Function-Execution-Id", "")
    context = {
        "function": name,
        # The platform's id is short and plain; anything else is a caller's, and not logged.
        "execution_id": execution_id if _EXECUTION_ID.fullmatch(execution_id) else "",
        **_trace(request),
    }
    with log.request_context(**context), deadline_in(DEADLINE_SECONDS):
        try:
            status, body = handler()
        except AppError as exc:
            fields: dict[str, Any] = {
                "status": exc.status,
                "error_code": exc.code,
                "error": exc.message,
                "retryable": exc.retryable,
                **exc.context,
            }
            if exc.status >= 500:
                log.error(f"{name}_failed", **fields)
            else:
                log.warning(f"{name}_rejected", **fields)
            return json_response(exc.status, exc.to_json())
        except Exception:
            log.error(f"{name}_failed", error_code="internal", exc_info=True)
            return json_response(
                500, {"error": {"code": "internal", "message": "internal error; see the logs"}}
            )
    return json_response(status, body)


def read_body(request: flask.Request) -> bytes:
    """The raw body, refused unread when it is larger than MAX_BODY_BYTES."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body larger than {MAX_BODY_BYTES} bytes")
    return body


def verify_signature(body: bytes, signature: str | None, secret: str) -> None:
    """Bpium signs the raw body: base64 of HMAC-MD5 keyed with the hook's secret string."""
    if not signature:
        raise Unauthorized(f"missing {SIGNATURE_HEADER}", code="signature_missing")
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.md5).digest()
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized("malformed signature", code="signature_invalid") from exc
    if not hmac.compare_digest(expected, given):
        raise Unauthorized("signature does not match the body", code="signature_invalid")


def verify_api_key(request: flask.Request, key: str) -> None:
    """The scenario's key, as `X-Api-Key` or `Authorization: Bearer`, compared in constant time."""
    given = request.headers.get("X-Api-Key", "").strip()
    if not given:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else ""
    if not given:
        raise Unauthorized(
            "send the API key as X-Api-Key or Authorization: Bearer", code="api_key_missing"
        )
    if not hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8")):
        raise Unauthorized("the API key is not valid", code="api_key_invalid")


def request_params(request: flask.Request, body: bytes) -> dict[str, Any]:
    """Query-string parameters, overridden by those of the body: a JSON object, or form
    fields (a «Веб-запрос» in «ключ/значение» mode sends those)."""
    params: dict[str, Any] = dict(request.args.items())
    if not body.strip():
        return params
    if request.mimetype == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return params
    data = load_json(body)
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object of parameters", field="body")
    params.update(data)
    return params


Action = Callable[["Services", dict[str, Any]], dict[str, Any]]


def scenario_call(
    name: str, request: flask.Request, services: Callable[[], Services], action: Action
) -> flask.Response:
    """A Bpium scenario's «Веб-запрос»: API key, then parameters, then the use case."""

    def handle() -> tuple[int, dict[str, Any]]:
        body = read_body(request)
        ready = services()
        verify_api_key(request, ready.secrets.get_strong(API_KEY))
        return 200, action(ready, request_params(request, body))

    return endpoint(name, request, handle)


def meeting_webhook(
    name: str, request: flask.Request, event: str, services: Callable[[], Services]
) -> flask.Response:
    """A Bpium webhook: verify, parse, then decide the no-ops or queue the sync."""

    def handle() -> tuple[int, dict[str, Any]]:
        if request.method != "POST":
            raise BadRequest("webhooks are POSTed", code="method_not_allowed")
        body = read_body(request)
        ready = services()
        secret = ready.secrets.get_strong(BPIUM_WEBHOOK_SECRET)
        verify_signature(body, request.headers.get(SIGNATURE_HEADER), secret)
        webhook = parse_webhook(body)
        replayed = ready.replay_guard.check(webhook)
        if replayed:
            log.warning("webhook_ignored", reason="replayed", why=replayed, **webhook.log_fields())
            return 200, {"status": "ignored", "reason": "replayed"}
        try:
            with deadline_in(ready.settings.work_deadline_seconds):
                return 200, ready.intake.handle(webhook, event)
        except AppError as exc:
            exc.context.update(webhook.log_fields())
            raise

    return endpoint(name, request, handle)


def scheduled_job(
    name: str,
    request: flask.Request,
    services: Callable[[], Services],
    job: Callable[[Services], dict[str, Any]],
) -> flask.Response:
    """Cloud Scheduler's call (IAM-authenticated by the platform): run the job, answer counts.
    It may work until shortly before its function's timeout (`FUNCTION_TIMEOUT_SECONDS`)."""

    def handle() -> tuple[int, dict[str, Any]]:
        ready = services()
        with deadline_in(ready.settings.work_deadline_seconds):
            return 200, job(ready)

    return endpoint(name, request, handle)


def calendar_push(
    name: str, request: flask.Request, services: Callable[[], Services]
) -> flask.Response:
    """Google's push notification: the channel token, then our record of the channel."""

    def handle() -> tuple[int, dict[str, Any]]:
        if request.method != "POST":
            raise BadRequest("notifications are POSTed", code="method_not_allowed")
        read_body(request)  # Calendar's notifications have no body; a large one is refused
        ready = services()
        with deadline_in(ready.settings.work_deadline_seconds):
            return 200, ready.push_receiver.handle(dict(request.headers.items()))

    return endpoint(name, request, handle)
