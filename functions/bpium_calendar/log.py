"""Structured logs: one JSON object a line on stdout, in Cloud Logging's shape.

Every line carries the request context (function, execution id, trace). Secret values the
secret store has read are registered here and masked wherever they would appear, and keys
that name credentials are masked whatever their value.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "bpium_calendar"
MASK = "[redacted]"
_SENSITIVE_KEYS = ("password", "secret", "token", "authorization", "cookie", "api_key")
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words
MAX_TEXT = 200  # characters of an echoed value in a log line
MAX_ITEMS = 20  # items of an echoed list
MAX_DEPTH = 4

_context: ContextVar[Mapping[str, str] | None] = ContextVar("log_context", default=None)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_configured = False
_QUIET_LIBRARIES = ("google", "googleapiclient", "google_auth_httplib2", "urllib3", "httplib2")
_project: str | None = None
_configure_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Masks `value` (and each line of it) in every later log line."""
    with _secrets_lock:
        for part in (value, *value.splitlines()):
            if len(part.strip()) >= _MIN_SECRET_LENGTH:
                _secrets.add(part.strip())


def _mask_secrets(text: str) -> str:
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to about `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit} characters)"


def _bounded(value: Any, depth: int = 0) -> Any:
    """Echoed values cut to size: Cloud Logging drops an entry over 256 KB, and a field or a
    header is anyone's to fill. Long texts are clipped, long lists keep their first items
    and say how many there were."""
    if isinstance(value, str):
        return clip(value)
    if depth > MAX_DEPTH:
        return clip(repr(value))
    if isinstance(value, Mapping):
        items = list(value.items())
        kept = {str(k)[:MAX_TEXT]: _bounded(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            kept["…"] = f"{len(items)} keys in all"
        return kept
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        kept_items = [_bounded(v, depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            kept_items.append(f"… {len(items)} items in all")
        return kept_items
    return value


def _mask_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: MASK if any(s in str(k).lower() for s in _SENSITIVE_KEYS) else _mask_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask_keys(v) for v in value]
    return value


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as Cloud Logging's structured JSON."""

    def format(self, record: logging.LogRecord) -> str:
        context = _context.get() or {}
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": clip(record.getMessage(), 1000),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(_mask_keys({k: _bounded(v) for k, v in fields.items()}))
        labels = {k: clip(v, 100) for k, v in context.items() if k in ("function", "execution_id")}
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        if "trace_id" in context:
            trace = context["trace_id"]
            entry["logging.googleapis.com/trace"] = (
                f"projects/{_project}/traces/{trace}" if _project else trace
            )
        if "span_id" in context:
            entry["logging.googleapis.com/spanId"] = context["span_id"]
        if record.exc_info:
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        text = json.dumps(entry, ensure_ascii=False, default=str)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: escape it rather than lose the line
                text = json.dumps(entry, ensure_ascii=True, default=str)
        return _mask_secrets(text)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time (test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str | None = None, project: str | None = None) -> None:
    """Installs the JSON handler on our logger once per process; later calls set the level."""
    global _configured, _project  # noqa: PLW0603 - one handler per process
    logger = logging.getLogger(LOGGER_NAME)
    with _configure_lock:
        if not _configured:
            handler = _StdoutHandler()
            handler.setFormatter(CloudLoggingFormatter())
            logger.addHandler(handler)
            logger.propagate = False
            # Client libraries log request and response bodies at DEBUG (a secret's payload
            # among them): never let them, whatever the root logger is set to.
            for library in _QUIET_LIBRARIES:
                logging.getLogger(library).setLevel(logging.INFO)
            _configured = True
            logger.setLevel("INFO")
        if project:
            _project = project
    if level:
        logger.setLevel(level)


def trace_header() -> str | None:
    """The request's trace as an `X-Cloud-Trace-Context` value, to carry it onward."""
    context = _context.get() or {}
    trace = context.get("trace_id")
    if not trace:
        return None
    span = context.get("span_id", "")
    # The header's span id is decimal; a W3C traceparent's is hex.
    if span and not span.isdigit():
        span = str(int(span, 16)) if all(c in "0123456789abcdef" for c in span) else ""
    return f"{trace}/{span};o=1" if span else trace


@contextmanager
def request_context(**fields: str) -> Iterator[None]:
    """Binds request fields (function, execution_id, trace_id, span_id) to every line inside."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def _emit(level: int, event: str, exc_info: bool, fields: dict[str, Any]) -> None:
    logging.getLogger(LOGGER_NAME).log(
        level, event, exc_info=exc_info, extra={"fields": fields}, stacklevel=3
    )


def debug(event: str, **fields: Any) -> None:
    _emit(logging.DEBUG, event, False, fields)


def info(event: str, **fields: Any) -> None:
    _emit(logging.INFO, event, False, fields)


def warning(event: str, **fields: Any) -> None:
    _emit(logging.WARNING, event, False, fields)


def error(event: str, *, exc_info: bool = False, **fields: Any) -> None:
    _emit(logging.ERROR, event, exc_info, fields)


def critical(event: str, **fields: Any) -> None:
    _emit(logging.CRITICAL, event, False, fields)
