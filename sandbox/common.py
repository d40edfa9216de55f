"""What every stand-in shares: a threaded server, a call log and fault injection.

Each stand-in is a Flask app; `install_sandbox_routes` adds the `/_sandbox/...` admin
routes every stand-in answers:

- `GET  /_sandbox/calls`        -> {"calls": [{"method", "path", "query", "status"}],
                                    "parts": [...]} (the parts of batch requests, same shape)
- `POST /_sandbox/calls/reset`  -> forget the calls (and batch parts) so far
- `POST /_sandbox/faults`       body {"path": regex, "method": "GET"|null, "status": int|null,
                                 "count": int (default 1), "delay": seconds (default 0),
                                 "body": json|null, "headers": {..}|null, "rate": 0..1,
                                 "drop": bool, "drop_after": bool, "part": bool}
  The next `count` matching requests wait `delay` seconds and then, when `status` is set,
  answer it (with `body`, default a Google-style error whose reason fits the status)
  instead of being handled. With `"rate": 0.2` only a seeded-random fifth of the matching
  requests is hit; with `"drop": true` the connection is closed with no answer at all; with
  `"drop_after": true` the request is handled (its effect stays) and then the connection
  is closed with no answer: the lost answer after a committed write. With `"part": true`
  the fault matches the parts of a batch request (their method and path), never a whole
  HTTP request; a stand-in with a batch endpoint asks `take_fault(..., part=True)` for each
  part. Whole-request faults never match parts. A bad spec answers 400.
- `DELETE /_sandbox/faults`     -> clear faults

Admin routes are neither logged nor subject to faults.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, abort, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

ADMIN_PREFIX = "/_sandbox/"


@dataclass
class Call:
    method: str
    path: str
    query: str
    status: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
        }


@dataclass
class Fault:
    path: re.Pattern[str]
    method: str | None
    status: int | None
    count: int
    delay: float
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # A share of matching requests (0 < rate <= 1) is hit, drawn from a seeded generator.
    rate: float = 1.0
    # Close the connection without any answer (a dropped connection), instead of `status`.
    drop: bool = False
    # Match the parts of a batch request (method and path of each part), not whole requests.
    part: bool = False
    # Handle the request, then close the connection with no answer: the write is committed
    # and its answer lost (httplib2 then sends the request once more, even a POST).
    drop_after: bool = False

    def __post_init__(self) -> None:
        if self.drop_after and (self.drop or self.status):
            raise ValueError("drop_after handles the request: give it no status and no drop")
        if self.part and (self.drop or self.drop_after):
            raise ValueError("a batch part has no connection of its own to drop")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be in [0, 1]")


class Recorder:
    """Call log and fault queue of one stand-in; thread-safe."""

    def __init__(self, seed: int = 20261130) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.part_calls: list[Call] = []  # the parts of batch requests, in order
        self.faults: list[Fault] = []
        self._random = random.Random(seed)

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def record_part(self, call: Call) -> None:
        with self._lock:
            self.part_calls.append(call)

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def parts_snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.part_calls)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.part_calls.clear()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str, *, part: bool = False) -> Fault | None:
        """The fault hitting this request (a batch part when `part`), counted; or None."""
        with self._lock:
            for fault in self.faults:
                if fault.part != part:
                    continue
                if fault.method not in (None, method) or not fault.path.search(path):
                    continue
                if fault.rate < 1.0 and self._random.random() >= fault.rate:
                    continue  # this one spares the request; a later one may not
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def count(self, method: str | None = None, path_regex: str = "") -> int:
        """Number of logged calls matching `method` (any if None) and `path_regex`."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for c in self.snapshot()
            if (method is None or c.method == method) and pattern.search(c.path)
        )


def _shut_socket() -> None:
    """Shuts the client's socket: it sees the connection closed, with no answer at all."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _drop_connection() -> None:
    _shut_socket()
    abort(500)  # whatever werkzeug tries to write next goes nowhere


# (domain, reason, message) Google answers for a status; the Calendar errors guide:
# https://developers.google.com/calendar/api/guides/errors
FAULT_REASONS: dict[int, tuple[str, str, str]] = {
    409: ("global", "conflict", "Conflict"),  # "409: Conflict", a batched item's conflict
    429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("global", "backendError", "Backend Error"),
    503: ("global", "backendError", "Backend Error"),
}


def default_fault_body(status: int) -> dict[str, Any]:
    """A Google-style error whose reason fits `status` (backendError when none is known)."""
    domain, reason, message = FAULT_REASONS.get(
        status, ("global", "backendError", f"Injected fault {status}")
    )
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": domain, "reason": reason, "message": message}],
        }
    }


def fault_response(fault: Fault) -> Response:
    """The answer of a fault with a `status`: its body (or the default) and headers."""
    assert fault.status
    body = fault.body if fault.body is not None else default_fault_body(fault.status)
    response = jsonify(body)
    response.status_code = fault.status
    for name, value in fault.headers.items():
        response.headers[name] = value
    return response


def fault_from_spec(spec: Any) -> Fault:
    """A `Fault` from the JSON of `POST /_sandbox/faults`; ValueError when malformed."""
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    try:
        return Fault(
            path=re.compile(spec.get("path", "")),
            method=spec.get("method"),
            status=spec.get("status"),
            count=int(spec.get("count", 1)),
            delay=float(spec.get("delay", 0)),
            body=spec.get("body"),
            headers=dict(spec.get("headers") or {}),
            rate=float(spec.get("rate", 1.0)),
            drop=bool(spec.get("drop", False)),
            part=bool(spec.get("part", False)),
            drop_after=bool(spec.get("drop_after", False)),
        )
    except (re.error, TypeError) as exc:
        raise ValueError(str(exc)) from None


def install_sandbox_routes(app: Flask, recorder: Recorder) -> None:
    """Adds call logging, fault injection and the common admin routes to `app`."""

    @app.before_request
    def _inject_fault() -> Response | None:
        if request.path.startswith(ADMIN_PREFIX):
            return None
        request.environ["sandbox.call"] = call = Call(
            request.method, request.path, request.query_string.decode("latin-1")
        )
        recorder.record(call)
        fault = recorder.take_fault(request.method, request.path)
        if fault is None:
            return None
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            _drop_connection()
        if fault.drop_after:
            request.environ["sandbox.drop_after"] = True
            return None
        if not fault.status:
            return None
        return fault_response(fault)

    @app.after_request
    def _log_status(response: Response) -> Response:
        call = request.environ.get("sandbox.call")
        if isinstance(call, Call):
            call.status = response.status_code
        if request.environ.get("sandbox.drop_after"):
            _shut_socket()  # handled and committed; the answer never reaches the client
        return response

    @app.get(ADMIN_PREFIX + "calls")
    def _calls() -> Response:
        return jsonify(
            {
                "calls": [c.as_dict() for c in recorder.snapshot()],
                "parts": [c.as_dict() for c in recorder.parts_snapshot()],
            }
        )

    @app.post(ADMIN_PREFIX + "calls/reset")
    def _reset_calls() -> Response:
        recorder.reset_calls()
        return jsonify({})

    @app.post(ADMIN_PREFIX + "faults")
    def _add_fault() -> Response:
        try:
            recorder.add_fault(fault_from_spec(request.get_json(force=True, silent=True)))
        except ValueError as exc:
            response = jsonify({"error": str(exc)})
            response.status_code = 400
            return response
        return jsonify({})

    @app.delete(ADMIN_PREFIX + "faults")
    def _clear_faults() -> Response:
        recorder.clear_faults()
        return jsonify({})


class ServerThread:
    """Serves a WSGI app on 127.0.0.1 in a daemon thread (threaded, like the real services)."""

    def __init__(self, app: Any, port: int = 0, host: str = "127.0.0.1") -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
