"""Bpium REST adapter: Basic auth up front, then the session cookie; retries 429 and 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import requests

from .domain import EmployeeRef, emails_in
from .errors import NotFound, UpstreamError, UpstreamUnavailable
from .retry import remaining, with_retries

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
PAGE_SIZE = 100


class BpiumClient:
    """Talks to `{BPIUM_URL}/api/v1` as the API user; safe to share between threads."""

    def __init__(
        self,
        api_url: str,
        credentials: Callable[[], tuple[str, str]],
        session: requests.Session | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._credentials = credentials
        self._session = session or requests.Session()

    # -- the HTTP edge -------------------------------------------------------------------

    def _send(self, method: str, path: str, *, basic: bool, **kwargs: Any) -> requests.Response:
        auth = self._credentials() if basic else None
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
            return response.json() if response.content else None
        what = f"Bpium {method} {path} answered {status}"
        if status == 401:
            raise UpstreamError(what + ": check bpium-credentials", code="bpium_unauthorized")
        if status == 404:
            raise NotFound(what)
        if status == 429:
            raise UpstreamUnavailable(
                what, code="bpium_rate_limited", retry_after=_retry_after(response)
            )
        if status >= 500:
            raise UpstreamUnavailable(what)
        raise UpstreamError(f"{what}: {response.text[:300]}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return with_retries(lambda: self._attempt(method, path, **kwargs), what=f"bpium.{method}")

    # -- the operations the use cases need ------------------------------------------------

    def get_catalog(self, catalog_id: str) -> dict[str, Any]:
        data = self._call("GET", f"/catalogs/{catalog_id}")
        if not isinstance(data, dict):
            raise UpstreamError(f"Bpium catalog {catalog_id}: unexpected answer")
        return data

    def get_record(self, catalog_id: str, record_id: str) -> dict[str, Any]:
        data = self._call("GET", f"/catalogs/{catalog_id}/records/{record_id}")
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
            page = self._call("GET", f"/catalogs/{catalog_id}/records", params=params)
            if not isinstance(page, list):
                raise UpstreamError(f"Bpium records of {catalog_id}: unexpected answer")
            records += page
            if len(page) < PAGE_SIZE:
                return records

    def patch_record(self, catalog_id: str, record_id: str, values: dict[str, Any]) -> None:
        """Changes only the given fields."""
        self._call("PATCH", f"/catalogs/{catalog_id}/records/{record_id}", json={"values": values})

    def employee_emails(self, refs: Sequence[EmployeeRef], email_field: str) -> list[str]:
        """E-mails of the referenced records: one request per catalog (usually one in all)."""
        by_catalog: dict[str, list[str]] = {}
        for ref in refs:
            by_catalog.setdefault(ref.catalog_id, []).append(ref.record_id)
        found: dict[EmployeeRef, tuple[str, ...]] = {}
        for catalog_id, ids in by_catalog.items():
            for record in self.list_records(catalog_id, ids=ids, fields=[email_field]):
                values = record.get("values") or {}
                ref = EmployeeRef(catalog_id, str(record.get("id")))
                found[ref] = emails_in(values.get(email_field))
        return [email for ref in refs for email in found.get(ref, ())]


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
