"""Bpium stand-in: the REST API at `/api/v1` and signed webhooks, as Bpium serves them.

What it checks, like the real service: Basic auth (deliberately slow) that sets a
`connect.sid` session cookie, the per-account rate limit (429), field ids and value types on
writes, the `filters`/`fields`/`id`/`limit`/`offset` list params. When a record changes it
POSTs `record.created|updated|deleted` webhooks signed with HMAC-MD5 (base64) of the raw
body, each on its own thread, all at once: no queue, no order, no retries, and a hook that
answers 410 is deleted. Dates are stored as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, the year
zero-padded to four digits (years 1..9999).

Switches (constructor keywords and attributes); the default is the harsher reading where the
docs are silent:

- `delivery_jitter=0.0`: each webhook waits a random 0..jitter s before it is sent, so the
  created/updated/deleted hooks of one record arrive in any order; `delivery_seed=0` seeds
  it (`reset` re-seeds), None for an unseeded draw.
- `retry_after_header=False`: a 429 carries no `Retry-After`; True adds one (whole seconds).
- `patch_answer="empty"`: a PATCH answers 200 with a zero-length body and no Content-Type;
  "text" answers `OK` as text/plain; "record" answers JSON `{"id"}`.
- `timestamp_form="unix-string"`: the webhook `timestamp` is Unix seconds as a string
  (`"1459500623"`); "unix-int" sends a number; "iso" sends `2015-11-06T21:00:00.000Z`.
- `basic_auth_delay=0.0`, `rate_limit=100`, `rate_window=30.0`, `clock=time.time`.

Admin routes (besides the common ones of `sandbox.common`):

- `POST /_sandbox/hooks` {url, event, catalogId, secret, fields?} -> {"id"}
- `GET  /_sandbox/hooks` -> {"items": [...]}; `DELETE /_sandbox/hooks/<id>`
- `GET  /_sandbox/deliveries` -> {"items": [{hookId, event, url, sequenceId, status,
  response, body, delay}]}, in the order the deliveries finished
- `POST /_sandbox/wait-idle` {timeout?} -> {"idle": bool}
- `POST /_sandbox/reset` {seed?: bool} -> drop records, deliveries, calls, faults, sessions;
  with `"seed": true` the demo data is put back
- `POST /_sandbox/sessions/expire`
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox import common

API = "/api/v1"
COOKIE = "connect.sid"
USERS_CATALOG = "$users"
EVENTS = ("record.created", "record.updated", "record.deleted")
MAX_LIMIT = 500
DELIVERY_TIMEOUT = 65.0
TIMESTAMP_FORMS = ("unix-string", "unix-int", "iso")
PATCH_ANSWERS = ("empty", "text", "record")

DEMO_LOGIN = "api@acme.example"
DEMO_PASSWORD = "bpium-demo-password"


class BpiumError(Exception):
    """An API error: HTTP status and the message Bpium would answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Delivery:
    hook_id: str
    event: str
    url: str
    secret: str
    sequence_id: int
    body: dict[str, Any]
    generation: int
    delay: float
    cancelled: threading.Event  # set by reset: a delivery still waiting is dropped


def _iso(instant: datetime) -> str:
    """Bpium's date format: UTC with milliseconds, `2015-11-06T21:00:00.000Z`."""
    u = instant.astimezone(UTC)
    # integracii/api/data/records.md: "2015-11-06T21:00:00.000Z" «дата в 0-м часовом поясе»;
    # the year always four digits, zero-padded (glibc's strftime("%Y") writes 999 as "999")
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def _parse_date(value: Any) -> datetime | None:
    """An ISO 8601 date-time with an offset (or `Z`) as an aware UTC datetime, else None.

    The year has four digits (`0999-05-01T10:00:00.000Z`); one that leaves years 1..9999 when
    moved to UTC (`0001-01-01T00:00:00+03:00`) is no date either.
    """
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return None
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _empty(value: Any) -> bool:
    return value is None or value in ("", [])


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (2, 0.0, "")
    if _is_number(value) or isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, str):
        return (1, 0.0, value)
    return (1, 0.0, json.dumps(value, ensure_ascii=False, sort_keys=True))


def _id_key(record_id: str) -> tuple[int, str]:
    return (int(record_id), "") if record_id.isdigit() else (1 << 62, record_id)


def _bracket_params(args: Iterable[tuple[str, str]], name: str) -> Any:
    """Rebuilds `filters[0][value][at]=...` query params into nested lists and dicts."""
    root: dict[str, Any] = {}
    found = False
    for key, value in args:
        if not key.startswith(name + "["):
            continue
        found = True
        parts = re.findall(r"\[([^\]]*)\]", key[len(name) :])
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise BpiumError(400, f"Invalid {name} parameter: {key}")
        node[parts[-1] if parts else ""] = value
    if not found:
        return None

    def listify(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        items = {k: listify(v) for k, v in node.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items

    return listify(root)


class BpiumStandIn:
    """One Bpium company in memory, served by `app`."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        basic_auth_delay: float = 0.0,
        rate_limit: int = 100,
        rate_window: float = 30.0,
        *,
        delivery_jitter: float = 0.0,
        delivery_seed: int | None = 0,
        retry_after_header: bool = False,
        patch_answer: str = "empty",
        timestamp_form: str = "unix-string",
    ) -> None:
        if delivery_jitter < 0:
            raise ValueError("delivery_jitter must be >= 0")
        if patch_answer not in PATCH_ANSWERS:
            raise ValueError(f"patch_answer must be one of {PATCH_ANSWERS}")
        if timestamp_form not in TIMESTAMP_FORMS:
            raise ValueError(f"timestamp_form must be one of {TIMESTAMP_FORMS}")
        self._lock = threading.RLock()
        self.clock = clock
        self.basic_auth_delay = basic_auth_delay
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.delivery_jitter = delivery_jitter
        self.delivery_seed = delivery_seed
        self.retry_after_header = retry_after_header
        self.patch_answer = patch_answer
        self.timestamp_form = timestamp_form
        self.basic_auth_count = 0
        self.hooks: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []

        self._users: dict[str, tuple[str, str]] = {}  # login -> (password, user id)
        self._sessions: dict[str, str] = {}  # connect.sid -> user id
        self._requests: dict[str, deque[float]] = {}  # user id -> request times
        self._catalogs: dict[str, dict[str, Any]] = {}
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self._next_ids: dict[str, int] = {}
        self._next_hook_id = 0
        self._generation = 0

        self._pending = 0  # deliveries started and not yet finished
        self._idle = threading.Condition(self._lock)
        self._cancelled = threading.Event()  # replaced (after being set) by each reset

        self.add_catalog(
            USERS_CATALOG,
            "Сотрудники",
            [
                {"id": "$name", "name": "Имя", "type": "text", "config": {}},
                {"id": "$email", "name": "Email", "type": "text", "config": {}},
            ],
        )
        self.recorder = common.Recorder()
        self.app = self._build_app()

    @property
    def delivery_seed(self) -> int | None:
        """Seed of the delivery jitter; setting it (or `reset`) starts the draws again."""
        return self._delivery_seed

    @delivery_seed.setter
    def delivery_seed(self, seed: int | None) -> None:
        with self._lock:
            self._delivery_seed = seed
            self._rng = random.Random(seed)

    # ----------------------------------------------------------------- setup API

    def add_user(self, login: str, password: str, user_id: str = "1") -> None:
        """Adds an account that may call the API with Basic auth."""
        with self._lock:
            self._users[login] = (password, user_id)

    def add_catalog(self, catalog_id: str, name: str, fields: list[dict[str, Any]]) -> None:
        """Adds (or replaces the structure of) a catalog; fields: {"id","name","type","config"}."""
        normalized = [
            {
                "id": str(f["id"]),
                "name": f.get("name", str(f["id"])),
                "type": f["type"],
                "config": dict(f.get("config") or {}),
            }
            for f in fields
        ]
        with self._lock:
            self._catalogs[catalog_id] = {"id": catalog_id, "name": name, "fields": normalized}
            self._records.setdefault(catalog_id, {})
            self._next_ids.setdefault(catalog_id, 0)

    def put_record(
        self,
        catalog_id: str,
        values: dict[str, Any],
        record_id: str | None = None,
        *,
        fire: bool = True,
        user_id: str = "1",
    ) -> str:
        """Creates a record (or replaces the one with `record_id`); fires record.created."""
        return self._create(catalog_id, values, record_id, fire=fire, user_id=user_id)

    def update_record(
        self,
        catalog_id: str,
        record_id: str,
        values: dict[str, Any],
        *,
        fire: bool = True,
        user_id: str = "1",
    ) -> None:
        """Changes only the fields in `values`; fires record.updated if anything changed."""
        self._update(catalog_id, record_id, values, fire=fire, user_id=user_id)

    def delete_record(self, catalog_id: str, record_id: str, *, fire: bool = True) -> None:
        """Deletes a record; fires record.deleted."""
        self._delete(catalog_id, record_id, fire=fire, user_id="1")

    def record(self, catalog_id: str, record_id: str) -> dict[str, Any] | None:
        """The record as the API returns it, or None."""
        with self._lock:
            values = self._records.get(catalog_id, {}).get(record_id)
            if values is None:
                return None
            return self._render(catalog_id, record_id, values, None)

    def add_hook(
        self,
        url: str,
        event: str,
        catalog_id: str,
        secret: str,
        fields: list[str] | None = None,
    ) -> str:
        """Subscribes `url` to `event` of a catalog; `fields` = «Отслеживать поля»."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; expected one of {EVENTS}")
        with self._lock:
            self._next_hook_id += 1
            hook_id = str(self._next_hook_id)
            self.hooks[hook_id] = {
                "id": hook_id,
                "url": url,
                "event": event,
                "catalogId": str(catalog_id),
                "secret": secret,
                "fields": [str(f) for f in fields] if fields else None,
                "sequenceId": 0,
            }
        return hook_id

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every delivery fired so far has finished or been dropped (else False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def expire_sessions(self) -> None:
        """Forgets every session: the next cookie-only request answers 401."""
        with self._lock:
            self._sessions.clear()

    def reset(self) -> None:
        """Drops records, deliveries (sent and waiting), calls, faults, sessions, rate windows.

        Catalogs, users and hooks stay; record ids, hooks' sequenceIds and the jitter's
        draws start again. A delivery already on the wire finishes but is not logged.
        """
        with self._lock:
            self._generation += 1
            self._cancelled.set()
            self._cancelled = threading.Event()
            self._rng = random.Random(self._delivery_seed)
            for catalog_id in self._records:
                self._records[catalog_id] = {}
                self._next_ids[catalog_id] = 0
            for hook in self.hooks.values():
                hook["sequenceId"] = 0
            self.deliveries.clear()
            self._sessions.clear()
            self._requests.clear()
            self.basic_auth_count = 0
        self.recorder.reset_calls()
        self.recorder.clear_faults()

    # ------------------------------------------------------------------ records

    def _catalog(self, catalog_id: str) -> dict[str, Any]:
        catalog = self._catalogs.get(catalog_id)
        if catalog is None:
            raise BpiumError(404, f"Catalog {catalog_id} not found")
        return catalog

    def _fields(self, catalog_id: str) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for f in self._catalog(catalog_id)["fields"]}

    def _title(self, catalog_id: str, values: dict[str, Any]) -> str:
        for field in self._catalog(catalog_id)["fields"]:
            if field["type"] == "text":
                value = values.get(field["id"])
                return value if isinstance(value, str) else ""
        return ""

    def _render(
        self, catalog_id: str, record_id: str, values: dict[str, Any], only: list[str] | None
    ) -> dict[str, Any]:
        shown = values if only is None else {k: v for k, v in values.items() if k in only}
        return {
            "id": record_id,
            "title": self._title(catalog_id, values),
            "values": copy.deepcopy(shown),
        }

    def _normalize(self, catalog_id: str, values: Any) -> dict[str, Any]:
        """Checks `values` against the catalog's fields; returns them as Bpium stores them."""
        if not isinstance(values, dict):
            raise BpiumError(400, "values must be an object of field id -> value")
        fields = self._fields(catalog_id)
        result: dict[str, Any] = {}
        for raw_id, value in values.items():
            field_id = str(raw_id)
            field = fields.get(field_id)
            if field is None:
                raise BpiumError(400, f"Unknown field {field_id} in catalog {catalog_id}")
            result[field_id] = None if value is None else self._normalize_value(field, value)
        return result

    def _normalize_value(self, field: dict[str, Any], value: Any) -> Any:
        field_id, kind, config = field["id"], field["type"], field["config"]

        def bad(expected: str) -> BpiumError:
            return BpiumError(
                400, f"Field {field_id} ({kind}): expected {expected}, got {json.dumps(value)}"
            )

        if kind == "text":
            if not isinstance(value, str):
                raise bad("a string")
            return value
        if kind == "number":
            if not _is_number(value):
                raise bad("a number")
            return value
        if kind == "date":
            parsed = _parse_date(value)
            if parsed is None:
                raise bad('an ISO 8601 date-time with offset, like "2015-11-06T21:00:00.000Z"')
            return _iso(parsed)
        if kind in ("switch", "boolean"):
            if not isinstance(value, bool):
                raise bad("true or false")
            return value
        if kind in ("dropdown", "checkboxes"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad('a list of item ids as strings, like ["1"]')
            items = config.get("items")
            if items:
                known = {str(i.get("id")) for i in items}
                unknown = [v for v in value if v not in known]
                if unknown:
                    raise bad(f"items among {sorted(known)}")
            return list(value)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise bad("a list of objects")
        if kind == "user":
            users = self._records.get(USERS_CATALOG, {})
            out = []
            for item in value:
                user_id = item.get("id")
                if not isinstance(user_id, str | int) or isinstance(user_id, bool):
                    raise bad('[{"id": "<user id>"}]')
                user = users.get(str(user_id))
                if user is None:
                    raise bad(f"existing user ids (no user {user_id})")
                out.append({"id": str(user_id), "title": self._title(USERS_CATALOG, user)})
            return out
        if kind == "contact":
            out = []
            for item in value:
                contact, comment = item.get("contact"), item.get("comment", "")
                if not isinstance(contact, str) or not isinstance(comment, str | None):
                    raise bad('[{"contact": "<string>", "comment": "<string>"}]')
                out.append({"contact": contact, "comment": comment or ""})
            return out
        if kind == "object":
            allowed = {str(c.get("id")) for c in config.get("catalogs") or []}
            out = []
            for item in value:
                linked_catalog, linked_record = item.get("catalogId"), item.get("recordId")
                if linked_catalog is None or linked_record is None:
                    raise bad('[{"catalogId": "<id>", "recordId": "<id>"}]')
                linked_catalog, linked_record = str(linked_catalog), str(linked_record)
                if allowed and linked_catalog not in allowed:
                    raise bad(f"records of catalogs {sorted(allowed)}")
                linked = self._records.get(linked_catalog, {}).get(linked_record)
                if linked is None:
                    raise bad(f"existing records (no record {linked_catalog}/{linked_record})")
                out.append(
                    {
                        "catalogId": linked_catalog,
                        "catalogTitle": self._catalogs[linked_catalog]["name"],
                        "recordId": linked_record,
                        "recordTitle": self._title(linked_catalog, linked),
                    }
                )
            return out
        return copy.deepcopy(value)  # other field types are stored as given

    def _create(
        self,
        catalog_id: str,
        values: Any,
        record_id: str | None,
        *,
        fire: bool,
        user_id: str,
    ) -> str:
        with self._lock:
            normalized = self._normalize(catalog_id, values)
            full = {f["id"]: None for f in self._catalog(catalog_id)["fields"]}
            full.update(normalized)
            if record_id is None:
                self._next_ids[catalog_id] += 1
                record_id = str(self._next_ids[catalog_id])
            elif record_id.isdigit():
                self._next_ids[catalog_id] = max(self._next_ids[catalog_id], int(record_id))
            self._records[catalog_id][record_id] = full
            if fire:
                payload = {
                    "catalogId": catalog_id,
                    "recordId": record_id,
                    "values": copy.deepcopy(full),
                    "prevValues": {},
                }
                self._fire(catalog_id, "record.created", payload, user_id, None)
            return record_id

    def _update(
        self, catalog_id: str, record_id: str, values: Any, *, fire: bool, user_id: str
    ) -> None:
        with self._lock:
            current = self._records.get(self._catalog(catalog_id)["id"], {}).get(record_id)
            if current is None:
                raise BpiumError(404, f"Record {catalog_id}/{record_id} not found")
            normalized = self._normalize(catalog_id, values)
            changed = {k: v for k, v in normalized.items() if current.get(k) != v}
            if not changed:
                return
            previous = copy.deepcopy(current)
            current.update(changed)
            if fire:
                payload = {
                    "catalogId": catalog_id,
                    "recordId": record_id,
                    "values": copy.deepcopy(changed),
                    "prevValues": previous,
                }
                self._fire(catalog_id, "record.updated", payload, user_id, set(changed))

    def _delete(self, catalog_id: str, record_id: str, *, fire: bool, user_id: str) -> None:
        with self._lock:
            records = self._records.get(self._catalog(catalog_id)["id"], {})
            if records.pop(record_id, None) is None:
                raise BpiumError(404, f"Record {catalog_id}/{record_id} not found")
            if fire:
                payload = {"catalogId": catalog_id, "recordId": record_id}
                self._fire(catalog_id, "record.deleted", payload, user_id, None)

    # ----------------------------------------------------------------- webhooks

    def _fire(
        self,
        catalog_id: str,
        event: str,
        payload: dict[str, Any],
        user_id: str,
        changed: set[str] | None,
    ) -> None:
        timestamp = self._timestamp()
        for hook in self.hooks.values():
            if hook["catalogId"] != catalog_id or hook["event"] != event:
                continue
            if changed is not None and hook["fields"] and not changed & set(hook["fields"]):
                continue
            hook["sequenceId"] += 1
            body = {
                "timestamp": timestamp,
                "hook": {"id": hook["id"], "event": event, "sequenceId": hook["sequenceId"]},
                "payload": copy.deepcopy(payload),
                "user": {"id": user_id},
            }
            jitter = self.delivery_jitter
            delivery = _Delivery(
                hook["id"],
                event,
                hook["url"],
                hook["secret"],
                hook["sequenceId"],
                body,
                self._generation,
                self._rng.uniform(0.0, jitter) if jitter > 0 else 0.0,
                self._cancelled,
            )
            self._pending += 1
            # integracii/webhooks.md «Принцип работы»: «события отправляются параллельно»,
            # «одновременно и не ждет завершения»; «Очередь отправки»: «Бипиум не использует
            # очередь отправки событий»: so one thread per delivery, no order among them
            threading.Thread(
                target=self._run_delivery,
                args=(delivery,),
                name=f"bpium-webhook-{hook['id']}-{hook['sequenceId']}",
                daemon=True,
            ).start()

    def _timestamp(self) -> str | int:
        now = self.clock()
        if self.timestamp_form == "unix-string":  # integracii/webhooks.md: "1459500623"
            return str(int(now))
        if self.timestamp_form == "unix-int":
            return int(now)
        if self.timestamp_form == "iso":
            return _iso(datetime.fromtimestamp(now, UTC))
        raise ValueError(f"timestamp_form must be one of {TIMESTAMP_FORMS}")

    def _run_delivery(self, delivery: _Delivery) -> None:
        try:
            if delivery.cancelled.wait(delivery.delay):
                return  # reset while it waited
            self._deliver(delivery)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _deliver(self, delivery: _Delivery) -> None:
        with self._lock:
            if delivery.generation != self._generation or delivery.hook_id not in self.hooks:
                return  # reset or hook deleted (by a 410 or the admin) meanwhile
        raw = json.dumps(delivery.body, ensure_ascii=False, separators=(",", ":")).encode()
        signature = base64.b64encode(
            hmac.new(delivery.secret.encode(), raw, hashlib.md5).digest()
        ).decode()
        status: int | None
        try:
            answer = requests.post(
                delivery.url,
                data=raw,
                headers={"Content-Type": "application/json", "X-Hook-Signature": signature},
                timeout=DELIVERY_TIMEOUT,
                allow_redirects=False,
            )
            status, text = answer.status_code, answer.text
        except requests.RequestException as exc:
            status, text = None, f"{type(exc).__name__}: {exc}"
        with self._lock:
            if delivery.generation != self._generation:
                return
            self.deliveries.append(
                {
                    "hookId": delivery.hook_id,
                    "event": delivery.event,
                    "url": delivery.url,
                    "sequenceId": delivery.sequence_id,
                    "status": status,
                    "response": text,
                    "body": delivery.body,
                    "delay": delivery.delay,
                }
            )  # in the order deliveries finish, not the order they were fired
            if status == 410:  # integracii/webhooks.md «Коды ответов»: «410, он удалит вебхук»
                self.hooks.pop(delivery.hook_id, None)

    # ------------------------------------------------------------------ filters

    def _match_filters(self, catalog_id: str, values: dict[str, Any], filters: Any) -> bool:
        if isinstance(filters, list):  # array form: [{"fieldId": .., "value": ..}, ...]
            matched = []
            for item in filters:
                if not isinstance(item, dict) or "fieldId" not in item:
                    raise BpiumError(400, "filters: each item needs fieldId and value")
                field_id, condition = str(item["fieldId"]), item.get("value")
                matched.append(self._match_field(catalog_id, values, field_id, condition))
            return all(matched)
        if not isinstance(filters, dict):
            raise BpiumError(400, "filters must be a JSON object or array")
        # every condition is evaluated (no short cut) so that a bad one always answers 400
        matched = []
        for key, condition in filters.items():
            if key in ("$or", "$and"):
                if not isinstance(condition, list):
                    raise BpiumError(400, f"filters: {key} takes a list")
                results = [self._match_filters(catalog_id, values, c) for c in condition]
                matched.append(any(results) if key == "$or" else all(results))
            else:
                matched.append(self._match_field(catalog_id, values, str(key), condition))
        return all(matched)

    def _match_field(
        self, catalog_id: str, values: dict[str, Any], field_id: str, condition: Any
    ) -> bool:
        field = self._fields(catalog_id).get(field_id)
        if field is None:
            raise BpiumError(400, f"filters: unknown field {field_id} in catalog {catalog_id}")
        actual = values.get(field_id)
        kind = field["type"]
        if condition is None:
            return _empty(actual)
        if isinstance(condition, dict) and ("$or" in condition or "$and" in condition):
            op = "$or" if "$or" in condition else "$and"
            options = condition[op]
            if not isinstance(options, list):
                raise BpiumError(400, f"filters: field {field_id}: {op} takes a list")
            results = [self._match_field(catalog_id, values, field_id, o) for o in options]
            return any(results) if op == "$or" else all(results)
        if isinstance(condition, dict) and kind in ("number", "date"):
            return self._match_range(field_id, kind, actual, condition)
        if kind in ("text", "contact"):
            if not isinstance(condition, str | int | float):
                raise BpiumError(400, f"filters: field {field_id} takes text")
            needle = str(condition).lower()
            if kind == "text":  # Bpium: search by occurrence, not equality
                return isinstance(actual, str) and needle in actual.lower()
            return any(needle in c["contact"].lower() for c in actual or [])
        if kind == "number":
            number = self._filter_number(field_id, condition)
            return _is_number(actual) and actual == number
        if kind == "date":
            wanted = self._filter_date(field_id, condition)
            return actual is not None and _parse_date(actual) == wanted
        if kind in ("switch", "boolean"):
            return actual is condition or actual == condition
        options = condition if isinstance(condition, list) else [condition]
        if kind in ("dropdown", "checkboxes"):
            return bool({str(o) for o in options} & set(actual or []))
        if kind == "user":
            ids = set()
            for option in options:
                user_id = option.get("id") if isinstance(option, dict) else option
                ids.add(g.get("user_id", "") if user_id == "CURRENT_USER" else str(user_id))
            return any(u["id"] in ids for u in actual or [])
        if kind == "object":
            # {"catalogId", "recordId"} pairs, or a bare record id ("" = any catalog)
            wanted_links: set[tuple[str, str]] = set()
            for option in options:
                if isinstance(option, dict):
                    wanted_links.add((str(option.get("catalogId")), str(option.get("recordId"))))
                else:
                    wanted_links.add(("", str(option)))
            return any(
                (link["catalogId"], link["recordId"]) in wanted_links
                or ("", link["recordId"]) in wanted_links
                for link in actual or []
            )
        return bool(actual == condition)

    def _match_range(
        self, field_id: str, kind: str, actual: Any, condition: dict[str, Any]
    ) -> bool:
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "at": lambda a, b: a >= b,
            "$gte": lambda a, b: a >= b,
            "to": lambda a, b: a <= b,
            "$lte": lambda a, b: a <= b,
            "$gt": lambda a, b: a > b,
            "$lt": lambda a, b: a < b,
        }
        unknown = set(condition) - set(ops)
        if unknown:
            raise BpiumError(400, f"filters: field {field_id}: unknown operators {sorted(unknown)}")
        bounds = [
            (
                ops[op],
                self._filter_number(field_id, b)
                if kind == "number"
                else self._filter_date(field_id, b),
            )
            for op, b in condition.items()
            if b not in (None, "")
        ]
        if actual is None:
            return False
        current = actual if kind == "number" else _parse_date(actual)
        return all(compare(current, bound) for compare, bound in bounds)

    @staticmethod
    def _filter_number(field_id: str, value: Any) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BpiumError(400, f"filters: field {field_id} takes numbers") from None

    @staticmethod
    def _filter_date(field_id: str, value: Any) -> datetime:
        parsed = _parse_date(value)
        if parsed is None:
            raise BpiumError(400, f"filters: field {field_id} takes ISO dates with offset")
        return parsed

    # ------------------------------------------------------------------ the app

    def _authenticate(self) -> Response | None:
        """Basic auth (slow, sets the session cookie) or the cookie; then the rate limit."""
        if not request.path.startswith(API + "/") and request.path != API:
            return None
        new_sid: str | None = None
        if "Authorization" in request.headers:
            auth = request.authorization
            if self.basic_auth_delay:
                time.sleep(self.basic_auth_delay)  # Bpium hashes slowly on purpose
            with self._lock:
                account = (
                    self._users.get(auth.username or "") if auth and auth.type == "basic" else None
                )
                if (
                    account is None
                    or auth is None
                    or not hmac.compare_digest(account[0].encode(), (auth.password or "").encode())
                ):
                    return _error(401, "Unauthorized")
                user_id = account[1]
                new_sid = secrets.token_urlsafe(24)
                self._sessions[new_sid] = user_id
                self.basic_auth_count += 1
        else:
            with self._lock:
                session_user = self._sessions.get(request.cookies.get(COOKIE, ""))
            if session_user is None:
                return _error(401, "Unauthorized")
            user_id = session_user
        g.user_id = user_id
        g.new_sid = new_sid
        now = self.clock()
        with self._lock:
            times = self._requests.setdefault(user_id, deque())
            while times and times[0] <= now - self.rate_window:
                times.popleft()
            if len(times) >= self.rate_limit:
                wait = max(1, math.ceil(times[0] + self.rate_window - now))
                response = _error(429, "Too Many Requests")
                # integracii/api/README.md «Лимиты»: 429 named, Retry-After never: off by default
                if self.retry_after_header:
                    response.headers["Retry-After"] = str(wait)
                return response
            times.append(now)
        return None

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        common.install_sandbox_routes(app, self.recorder)
        app.before_request(self._authenticate)

        @app.after_request
        def _set_cookie(response: Response) -> Response:
            sid = g.get("new_sid")
            if sid:
                response.set_cookie(COOKIE, sid, path="/", httponly=True)
            return response

        @app.errorhandler(BpiumError)
        def _bpium_error(exc: BpiumError) -> Response:
            return _error(exc.status, exc.message)

        @app.errorhandler(HTTPException)
        def _http_error(exc: HTTPException) -> Response:
            return _error(exc.code or 500, exc.description or exc.name)

        @app.get(API + "/catalogs")
        def list_catalogs() -> Response:
            with self._lock:
                return jsonify(
                    [{"id": c["id"], "name": c["name"]} for c in self._catalogs.values()]
                )

        @app.get(API + "/catalogs/<catalog_id>")
        def get_catalog(catalog_id: str) -> Response:
            with self._lock:
                return jsonify(copy.deepcopy(self._catalog(catalog_id)))

        @app.get(API + "/catalogs/<catalog_id>/records")
        def list_records(catalog_id: str) -> Response:
            limit = min(_int_arg("limit", 100), MAX_LIMIT)
            offset = _int_arg("offset", 0)
            ids = set(request.args.getlist("id"))
            only = _fields_arg()
            filters = _filters_arg()
            search = request.args.get("searchText", "").lower()
            sort_field = request.args.get("sortField")
            descending = request.args.get("sortType", "1") == "-1"
            with self._lock:
                fields = self._fields(catalog_id)
                rows = list(self._records[catalog_id].items())
                if ids:
                    rows = [(rid, v) for rid, v in rows if rid in ids]
                if filters is not None:
                    self._match_filters(catalog_id, {}, filters)  # answers 400 on a bad filter
                    rows = [
                        (rid, v) for rid, v in rows if self._match_filters(catalog_id, v, filters)
                    ]
                if search:
                    rows = [
                        (rid, v)
                        for rid, v in rows
                        if any(isinstance(x, str) and search in x.lower() for x in v.values())
                    ]
                if sort_field:
                    if sort_field not in fields:
                        raise BpiumError(400, f"sortField: unknown field {sort_field}")
                    rows.sort(key=lambda r: _sort_key(r[1].get(sort_field)), reverse=descending)
                else:  # newest first, as Bpium lists by default
                    rows.sort(key=lambda r: _id_key(r[0]), reverse=True)
                page = rows[offset : offset + limit]
                return jsonify([self._render(catalog_id, rid, v, only) for rid, v in page])

        @app.get(API + "/catalogs/<catalog_id>/records/<record_id>")
        def get_record(catalog_id: str, record_id: str) -> Response:
            only = _fields_arg()
            with self._lock:
                self._catalog(catalog_id)
                values = self._records[catalog_id].get(record_id)
                if values is None:
                    raise BpiumError(404, f"Record {catalog_id}/{record_id} not found")
                return jsonify(self._render(catalog_id, record_id, values, only))

        @app.post(API + "/catalogs/<catalog_id>/records")
        def create_record(catalog_id: str) -> Response:
            with self._lock:
                self._catalog(catalog_id)
            record_id = self._create(catalog_id, _values_body(), None, fire=True, user_id=g.user_id)
            return jsonify({"id": record_id})

        @app.patch(API + "/catalogs/<catalog_id>/records/<record_id>")
        def patch_record(catalog_id: str, record_id: str) -> Response:
            with self._lock:
                self._catalog(catalog_id)
            self._update(catalog_id, record_id, _values_body(), fire=True, user_id=g.user_id)
            return self._patch_answer(record_id)

        @app.delete(API + "/catalogs/<catalog_id>/records/<record_id>")
        def delete_record(catalog_id: str, record_id: str) -> Response:
            self._delete(catalog_id, record_id, fire=True, user_id=g.user_id)
            return jsonify({})

        self._install_admin_routes(app)
        return app

    def _patch_answer(self, record_id: str) -> Response:
        # integracii/api/data/records.md «Изменить запись»: «Ответ: 200 OK», no body, no type
        if self.patch_answer == "empty":
            response = Response(b"", status=200)
            del response.headers["Content-Type"]
            return response
        # Bpium runs on Node (deployment/nastroika-i-zapusk/parametry-config.env/bpium.md,
        # NODE_TLS_REJECT_UNAUTHORIZED): "text" is Express's res.sendStatus(200)
        if self.patch_answer == "text":
            return Response("OK", status=200, mimetype="text/plain")
        if self.patch_answer == "record":
            return jsonify({"id": record_id})
        raise ValueError(f"patch_answer must be one of {PATCH_ANSWERS}")

    def _install_admin_routes(self, app: Flask) -> None:
        admin = common.ADMIN_PREFIX

        @app.post(admin + "hooks")
        def add_hook() -> Response:
            spec = request.get_json(force=True)
            try:
                hook_id = self.add_hook(
                    spec["url"],
                    spec["event"],
                    str(spec["catalogId"]),
                    spec["secret"],
                    spec.get("fields"),
                )
            except (KeyError, TypeError, ValueError) as exc:
                return _error(400, f"hook needs url, event, catalogId, secret: {exc}")
            return jsonify({"id": hook_id})

        @app.get(admin + "hooks")
        def list_hooks() -> Response:
            with self._lock:
                return jsonify({"items": copy.deepcopy(list(self.hooks.values()))})

        @app.delete(admin + "hooks/<hook_id>")
        def delete_hook(hook_id: str) -> Response:
            with self._lock:
                self.hooks.pop(hook_id, None)
            return jsonify({})

        @app.get(admin + "deliveries")
        def list_deliveries() -> Response:
            with self._lock:
                return jsonify({"items": copy.deepcopy(self.deliveries)})

        @app.post(admin + "wait-idle")
        def wait_idle() -> Response:
            spec = request.get_json(silent=True) or {}
            return jsonify({"idle": self.wait_idle(float(spec.get("timeout", 10.0)))})

        @app.post(admin + "reset")
        def reset() -> Response:
            spec = request.get_json(silent=True) or {}
            self.reset()
            if spec.get("seed"):
                seed(self)
            return jsonify({})

        @app.post(admin + "sessions/expire")
        def expire() -> Response:
            self.expire_sessions()
            return jsonify({})


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BpiumError(400, f"{name} must be a non-negative integer") from None
    if value < 0:
        raise BpiumError(400, f"{name} must be a non-negative integer")
    return value


def _fields_arg() -> list[str] | None:
    raw = request.args.get("fields")
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise BpiumError(400, "fields must be a JSON array of field ids") from None
    if not isinstance(parsed, list):
        raise BpiumError(400, "fields must be a JSON array of field ids")
    # {"fieldId": 5, "fields": {...}} asks for linked records' fields too: we return field 5
    return [str(f["fieldId"] if isinstance(f, dict) else f) for f in parsed]


def _filters_arg() -> Any:
    raw = request.args.get("filters")
    if raw is None:
        return _bracket_params(request.args.items(multi=True), "filters")
    try:
        return json.loads(raw)
    except ValueError:
        raise BpiumError(400, "filters must be JSON") from None


def _values_body() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("values"), dict):
        raise BpiumError(400, 'Expected a JSON body {"values": {...}}')
    return body["values"]


# ---------------------------------------------------------------------- demo data

ROLES = {
    "title": "2",
    "start": "3",
    "end": "4",
    "agenda": "5",
    "employees": "6",
    "guests": "7",
    "event_id": "8",
    "location": "9",
    "responses": "21",
    "status": "22",
}
# The integration's own Bpium user: an employee whose e-mail is the API login, as in a real
# company (its writes' webhooks carry this user id).
API_USER_ID = "20"

_DIRECTORY = {
    "1": ("Анна Смирнова", "anna@acme.example"),
    "2": ("Иван Петров", "ivan@acme.example"),
    "3": ("Ольга Кузнецова", "olga@acme.example"),
    "4": ("Пётр Без Почты", ""),
}


def seed(standin: BpiumStandIn) -> dict[str, Any]:
    """Puts the demo company (shaped like Bpium's Google Calendar help page); idempotent."""
    standin.add_user(DEMO_LOGIN, DEMO_PASSWORD, API_USER_ID)
    for user_id, (name, email) in _DIRECTORY.items():
        standin.put_record(USERS_CATALOG, {"$name": name, "$email": email}, user_id, fire=False)
    standin.put_record(
        USERS_CATALOG,
        {"$name": "Интеграция с календарём", "$email": DEMO_LOGIN},
        API_USER_ID,
        fire=False,
    )
    standin.add_catalog(
        "8",
        "Сотрудники",
        [
            {"id": "2", "name": "ФИО", "type": "text", "config": {}},
            {"id": "3", "name": "Email", "type": "text", "config": {}},
        ],
    )
    for record_id, (name, email) in (
        ("1", ("Анна Смирнова", "anna@acme.example")),
        ("2", ("Иван Петров", "ivan@acme.example")),
        ("3", ("Мария Соколова", "maria@acme.example")),
    ):
        standin.put_record("8", {"2": name, "3": email}, record_id, fire=False)
    standin.add_catalog(
        "7",
        "Встречи",
        [
            {"id": "2", "name": "Название", "type": "text", "config": {}},
            {"id": "3", "name": "Дата начала", "type": "date", "config": {"time": True}},
            {"id": "4", "name": "Дата окончания", "type": "date", "config": {"time": True}},
            {"id": "5", "name": "Повестка", "type": "text", "config": {"type": "multiline"}},
            {"id": "6", "name": "Участники", "type": "user", "config": {"multiselect": True}},
            {
                "id": "7",
                "name": "Дополнительные участники",
                "type": "contact",
                "config": {"type": "email"},
            },
            {"id": "8", "name": "Код события в календаре", "type": "text", "config": {}},
            {"id": "9", "name": "Место", "type": "text", "config": {}},
            {
                "id": "21",
                "name": "Ответы участников",
                "type": "text",
                "config": {"type": "multiline"},
            },
            {"id": "22", "name": "Статус в календаре", "type": "text", "config": {}},
            {
                "id": "10",
                "name": "Сотрудники (каталог)",
                "type": "object",
                "config": {"catalogs": [{"id": "8"}], "multiselect": True},
            },
        ],
    )
    return {
        "meetings": "7",
        "employees": "8",
        "fields": dict(ROLES),
        "users": {
            "api": {"login": DEMO_LOGIN, "password": DEMO_PASSWORD, "id": API_USER_ID},
            "catalog": USERS_CATALOG,
            "email_field": "$email",
            "emails": {user_id: email for user_id, (_, email) in _DIRECTORY.items()},
        },
    }


def serve(port: int = 0, **kwargs: Any) -> tuple[BpiumStandIn, common.ServerThread]:
    """Starts a stand-in (kwargs go to BpiumStandIn) on 127.0.0.1:`port` in a thread."""
    standin = BpiumStandIn(**kwargs)
    server = common.ServerThread(standin.app, port).start()
    return standin, server
