"""Bpium REST adapter: Basic auth up front, then the session cookie; retries 429 and 5xx."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

import requests

from . import log
from .domain import EmployeeRef, emails_in
from .errors import NotFound, UpstreamError, UpstreamUnavailable
from .retry import remaining, with_retries

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
PAGE_SIZE = 100
IDS_PER_REQUEST = 100  # keeps the query string short
RATE_WINDOW = 30.0  # Bpium counts requests per account per 30 s


class RateLimiter:
    """At most `limit` requests per sliding window in this instance (0: no limit).

    Bpium answers 429 beyond 100 requests per 30 s per account; bulk work (reconcile,
    backfill) waits for a free slot instead of provoking it. A wait that would outlast the
    request's deadline fails at once, retryable.
    """

    def __init__(
        self,
        limit: int,
        window: float = RATE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.limit <= 0:
            return
        while True:
            with self._lock:
                now = self.clock()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self.window - (now - self._sent[0])
            if wait >= remaining() - 1.0:
                raise UpstreamUnavailable(
                    "Bpium's request budget is used up for now", code="bpium_rate_limited"
                )
            self.sleep(wait)


class BpiumClient:
    """Talks to `{BPIUM_URL}/api/v1` as the API user; safe to share between threads."""

    def __init__(
        self,
        api_url: str,
        credentials: Callable[[], tuple[str, str]],
        session: requests.Session | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._credentials = credentials
        self._session = session or requests.Session()
        self._limiter = limiter or RateLimiter(0)

    # -- the HTTP edge -------------------------------------------------------------------

    def _send(self, method: str, path: str, *, basic: bool, **kwargs: Any) -> requests.Response:
        auth = self._credentials() if basic else None
        self._limiter.acquire()
        # Leave time to answer: a read never outlives the request's deadline.
        read_timeout = max(1.0, min(READ_TIMEOUT, remaining() - 2.0))
        try:
            return self._session.request(
                method,
                self.api_url + path,
                auth=auth,
                timeout=(CONNECT_TIMEOUT, read_timeout),
                **kwargs,
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable(f"Bpium unreachable: {type(exc).__name__}") from exc

    def _attempt(self, method: str, path: str, **kwargs: Any) -> Any:
        # Basic auth is slow at Bpium: send it only until the session cookie is there.
        basic = not self._session.cookies
        response = self._send(method, path, basic=basic, **kwargs)
        if response.status_code == 401 and not basic:
            self._session.cookies.clear()  # the session expired: log in again
            response = self._send(method, path, basic=True, **kwargs)
        status = response.status_code
        if status < 300:
            return _answer(method, path, response)
        what = f"Bpium {method} {path} answered {status}"
        if status == 401:
            raise UpstreamError(what + ": check bpium-credentials", code="bpium_unauthorized")
        if status == 404:
            raise NotFound(what)
        if status == 429:
            wait = _retry_after(response)
            # Without Retry-After, the exponential backoff of our retries spaces them out.
            details = {"retry_after": wait} if wait is not None else {}
            raise UpstreamUnavailable(what, code="bpium_rate_limited", **details)
        if status >= 500:
            raise UpstreamUnavailable(what)
        raise UpstreamError(f"{what}: {response.text[:300]}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return with_retries(lambda: self._attempt(method, path, **kwargs), what=f"bpium.{method}")

    # -- the operations the use cases need ------------------------------------------------

    def get_catalog(self, catalog_id: str) -> dict[str, Any]:
        data = self._call("GET", f"/catalogs/{_seg(catalog_id)}")
        if not isinstance(data, dict):
            raise UpstreamError(f"Bpium catalog {catalog_id}: unexpected answer")
        return data

    def get_record(self, catalog_id: str, record_id: str) -> dict[str, Any]:
        data = self._call("GET", f"/catalogs/{_seg(catalog_id)}/records/{_seg(record_id)}")
        if not isinstance(data, dict):
            raise UpstreamError(f"Bpium record {catalog_id}/{record_id}: unexpected answer")
        return data

    def list_records(
        self,
        catalog_id: str,
        *,
        ids: Sequence[str] = (),
        fields: Sequence[str] = (),
        filters: Any = None,
    ) -> list[dict[str, Any]]:
        """Every matching record, page by page until a short page."""
        records: list[dict[str, Any]] = []
        while True:
            params: list[tuple[str, str]] = [
                ("limit", str(PAGE_SIZE)),
                ("offset", str(len(records))),
            ]
            params += [("id", i) for i in ids]
            if fields:
                params.append(("fields", json.dumps(list(fields))))
            if filters is not None:
                params.append(("filters", json.dumps(filters)))
            page = self._call("GET", f"/catalogs/{_seg(catalog_id)}/records", params=params)
            if not isinstance(page, list):
                raise UpstreamError(f"Bpium records of {catalog_id}: unexpected answer")
            records += page
            if len(page) < PAGE_SIZE:
                return records

    def patch_record(self, catalog_id: str, record_id: str, values: dict[str, Any]) -> None:
        """Changes only the given fields."""
        path = f"/catalogs/{_seg(catalog_id)}/records/{_seg(record_id)}"
        self._call("PATCH", path, json={"values": values})

    def employee_emails(self, refs: Sequence[EmployeeRef], email_field: str) -> list[str]:
        """E-mails of the referenced records: one request per catalog (usually one in all)."""
        found = self.emails_by_ref(refs, email_field)
        return [email for ref in refs for email in found.get(ref, ())]

    def emails_by_ref(
        self, refs: Iterable[EmployeeRef], email_field: str
    ) -> dict[EmployeeRef, tuple[str, ...]]:
        """E-mails of many referenced records, a hundred ids a request per catalog."""
        by_catalog: dict[str, list[str]] = {}
        for ref in dict.fromkeys(refs):
            by_catalog.setdefault(ref.catalog_id, []).append(ref.record_id)
        found: dict[EmployeeRef, tuple[str, ...]] = {}
        for catalog_id, ids in by_catalog.items():
            for start in range(0, len(ids), IDS_PER_REQUEST):
                chunk = ids[start : start + IDS_PER_REQUEST]
                try:
                    records = self.list_records(catalog_id, ids=chunk, fields=[email_field])
                except NotFound:
                    # A link into a catalog that is gone (or never was): no e-mails there.
                    log.warning("employees_catalog_missing", catalog_id=catalog_id)
                    break
                for record in records:
                    values = record.get("values") or {}
                    ref = EmployeeRef(catalog_id, str(record.get("id")))
                    found[ref] = emails_in(values.get(email_field))
        return found

    def records_by_id(self, catalog_id: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records that still exist among `ids`, a hundred a request."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), IDS_PER_REQUEST):
            for record in self.list_records(catalog_id, ids=ids[start : start + IDS_PER_REQUEST]):
                found[str(record.get("id"))] = record
        return found


def _seg(value: str) -> str:
    """An id as one URL path segment: nothing in it can reach another path."""
    return quote(str(value), safe="$")


def _answer(method: str, path: str, response: requests.Response) -> Any:
    """The JSON of a 2xx answer. A write's answer may be empty or not JSON at all (Bpium's
    docs do not say what a PATCH returns): it succeeded, and nobody reads it."""
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        if method != "GET":
            return None
        raise UpstreamError(f"Bpium {method} {path}: the answer is not JSON") from None


def _retry_after(response: requests.Response) -> float | None:
    """Seconds Bpium asks us to wait; None when it does not say (then we back off)."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None
