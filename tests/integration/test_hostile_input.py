"""Hostile requests at every entry point: malformed, oversized, wrongly typed, wrongly signed.

DESIGN §3: every answer is JSON, never 5xx for a bad request and never 410 (Bpium deletes a
webhook that answers 410); bodies over 1 MiB are refused unread; a rejected request (4xx)
costs no call to Google, Bpium or Secret Manager once the instance is warm.

The edge cases these properties found are pinned one by one at the end of this file.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bpium_calendar import services
from sandbox.stack import API_KEY, WEBHOOK_SECRET
from tests.conftest import hook_body, sign
from tests.integration.conftest import Delivery, Functions

WEBHOOKS = {
    "on_meeting_created": "record.created",
    "on_meeting_updated": "record.updated",
    "on_meeting_deleted": "record.deleted",
}
SCENARIOS = ("list_events", "create_calendar")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
LIMIT = 1024 * 1024
NO_CALLS = {"google": 0, "bpium": 0, "secrets": 0}
START, END = "2026-12-01T07:00:00.000Z", "2026-12-01T08:00:00.000Z"
# The Meetings catalog of the Bpium stand-in: 2 title, 3 start, 4 end, 5 agenda,
# 6 employees (user), 7 guests (contact), 8 event id, 9 location.
VALID_VALUES = {"2": "Планёрка", "3": START, "4": END, "5": "Повестка"}


def hostile(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def warm(fns: Functions, monkeypatch: pytest.MonkeyPatch) -> Functions:
    """Every entry point answered one valid request: secrets, the catalog schema, the Bpium
    session and the Google token are cached, so a rejected request must cost no call."""
    # Hundreds of deliveries in seconds: the instance's Bpium budget (BPIUM_RATE_LIMIT, 90
    # requests per 30 s) and Bpium's own (100, answered 429 with Retry-After) would make
    # them wait, and waiting is not what is tested here.
    stack = fns.stack
    monkeypatch.setenv("BPIUM_RATE_LIMIT", "0")
    monkeypatch.setattr(stack.bpium, "rate_limit", 1_000_000)
    services.reset()
    record = stack.bpium.put_record(stack.meetings, dict(VALID_VALUES), fire=False)
    assert fns.created(record).status_code == 200
    full = stack.bpium.record(stack.meetings, record)["values"]
    assert fns.updated(record, {"2": "Новое"}, {**full, "2": "Старое"}).status_code == 200
    assert fns.deleted(record).status_code == 200
    assert fns.scenario("list_events", {}).status_code == 200
    assert fns.scenario("create_calendar", {"summary": "warm-up"}).status_code == 200
    assert fns.clients["refresh_tokens"].post("/").status_code == 200
    fns.reset_calls()
    return fns


# ---------------------------------------------------------------------------- checks


def answered(fns: Functions, name: str, answer: Any, sent: object = "") -> dict[str, Any]:
    """The answer is a JSON object, 2xx or 4xx, never 410; a rejection made no call."""
    status = answer.status_code
    calls = fns.calls()
    fns.reset_calls()
    where = f"{name} answered {status} {answer.data[:300]!r} (calls {calls}) to {sent!r:.300}"
    assert status != 410, where
    assert 200 <= status < 500, where
    assert answer.mimetype == "application/json", where
    body = json.loads(answer.data)
    assert isinstance(body, dict), where
    if status >= 400:
        assert isinstance(body.get("error"), dict), where
        # Google's own word, the 4xx that must ask Google: a sync token (409), a calendar it
        # does not know (404), an updatedMin older than it keeps (its horizon is unwritten).
        error = body["error"]
        asks_google = status in (404, 409) or error.get("field") == "updatedMin"
        if asks_google:
            assert calls["bpium"] == 0, where
            assert calls["google"] <= 1, where
        else:
            assert calls == NO_CALLS, where
    return body


def ascii_hook(event: str, record_id: str, values: dict[str, Any]) -> bytes:
    """`hook_body`, with every non-ASCII character escaped (lone surrogates included)."""
    body = json.loads(hook_body(event, "0"))
    body["payload"].update(recordId=record_id, values=values)
    return json.dumps(body).encode()


def post_webhook(fns: Functions, name: str, body: bytes, **headers: str) -> Any:
    """The webhook's answer; when it queued a task, the worker's too, once the queue settles
    (a hostile value must neither loop in the queue nor fail anything but its own task)."""
    answer = fns.clients[name].post(
        "/", data=body, headers=headers, content_type="application/json"
    )
    sent = answer.get_json(silent=True) or {}
    if answer.status_code != 200 or sent.get("status") != "queued":
        return answer
    fns.settle()
    delivery = Delivery(answer, fns.worker.answers_to(sent["task"]))
    assert len(delivery.worker) == 1, delivery.worker  # answered once: no retry
    return delivery


# ---------------------------------------------------------------------------- strategies

# Lone surrogates are valid in JSON (as \ud800 escapes) but not in UTF-8.
surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
text = st.text(max_size=20) | surrogates
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
huge_strings = st.integers(1_000, 40_000).map(lambda n: "Ж" * n)
json_values = st.recursive(
    scalars | huge_strings,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
    max_leaves=10,
)
garbage = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3),
    max_leaves=5,
)
# Header values a server can hand over: no control characters (a newline cannot arrive).
header_text = st.text(
    st.characters(exclude_categories=("Cc", "Cs")), min_size=0, max_size=60
) | st.integers(1_000, 100_000).map(lambda n: "Ä" * n)
# UTF-8 read as Latin-1, as a WSGI server hands non-ASCII header bytes over.
mojibake = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30).map(
    lambda s: s.encode("utf-8").decode("latin-1")
)
wrong_signatures = (
    header_text
    | mojibake
    | st.binary(min_size=16, max_size=16).map(sign)  # well-formed, other body
    | st.binary(max_size=64).map(lambda b: sign(b, "another-secret"))
)


# Ids of records that do not exist (updates then read nothing), and ids that are not
# Bpium's at all: URL-active characters, path traversal, non-ASCII, lone surrogates.
record_ids = st.one_of(
    st.integers(10**6, 10**9).map(str),
    st.integers(10**6, 10**9),
    st.text(string.ascii_letters + "-_$", min_size=1, max_size=12),
    st.sampled_from(["../../8/records/1", "1?x=1", "1#x", "%2e%2e", "..", "a/b", " 1", "ж"]),
    st.text(max_size=12),
    surrogates,
)
zones = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(-timedelta(hours=11)),
        ZoneInfo("Europe/Moscow"),
        ZoneInfo("America/New_York"),
        ZoneInfo("Asia/Kathmandu"),
    ]
)
# Years 1 to 9999: next to datetime's limits a zone conversion overflows, and before 1919
# Europe/Moscow's offset has seconds (both pinned at the end of this file).
instants = st.datetimes(timezones=zones)


def bpium_date(moment: datetime, minutes: int = 0) -> str:
    """As Bpium writes dates (UTC), `minutes` later; as is where UTC has no such year."""
    try:
        return (
            (moment + timedelta(minutes=minutes)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        )
    except OverflowError:
        return moment.isoformat()


bad_dates = st.one_of(
    instants.map(lambda d: d.replace(tzinfo=None).isoformat()),  # no zone: 422
    instants.map(lambda d: d.date().isoformat()),
    st.sampled_from(["", "2026-13-01T00:00:00Z", "tomorrow", "2026-12-01T25:00Z", "NaN"]),
    st.text(max_size=30),
    garbage,
)
date_values = instants.map(bpium_date) | instants.map(lambda d: d.isoformat()) | bad_dates


def share(percent: int) -> st.SearchStrategy[bool]:
    """True in about `percent` % of the draws (Hypothesis' one_of favours no branch)."""
    return st.integers(0, 99).map(lambda n: n < percent)


@st.composite
def meeting_dates(draw: st.DrawFn) -> dict[str, Any]:
    """Start and end: mostly a plausible meeting, sometimes anything at all."""
    start = draw(instants)
    shown = draw(st.sampled_from([bpium_date, datetime.isoformat]))(start)
    end: Any
    if draw(share(60)):
        end = bpium_date(start, draw(st.integers(0, 24 * 60)))
    elif draw(share(30)):
        end = bpium_date(start, -draw(st.integers(1, 48 * 60)))
    else:
        end = draw(st.none() | date_values)
    return {"3": shown if draw(share(80)) else draw(date_values), "4": end}


employee_items = st.one_of(
    st.fixed_dictionaries({"id": record_ids}, optional={"title": text}),
    st.fixed_dictionaries(
        {"catalogId": st.just("8") | record_ids | garbage, "recordId": record_ids | garbage}
    ),
    st.fixed_dictionaries({"id": garbage}, optional={"title": garbage, "x": garbage}),
    garbage,
)
guest_items = st.one_of(
    st.fixed_dictionaries({"contact": st.emails() | text}, optional={"comment": text}),
    st.fixed_dictionaries({"contact": garbage}, optional={"comment": garbage}),
    st.emails(),
    garbage,
)
# Plausible values of the Meetings catalog (each field may be absent or null).
meeting_values = st.tuples(
    meeting_dates(),
    st.fixed_dictionaries(
        {},
        optional={
            "2": text | st.none(),
            "5": text | huge_strings,
            "6": st.lists(employee_items, max_size=4),
            "7": st.lists(guest_items, max_size=4) | st.emails(),
            "8": st.text("abcdefghijklmnopqrstuv0123456789", max_size=30) | st.none(),
            "9": text | st.none(),
        },
    ),
).map(lambda pair: {**pair[0], **pair[1]})
MISSING = object()
_records = itertools.count(2_000_000)
# Where a body can be broken: a key replaced by a value of another type, or removed.
BREAKABLE = [
    ("timestamp",),
    ("hook",),
    ("hook", "id"),
    ("hook", "event"),
    ("hook", "sequenceId"),
    ("payload",),
    ("payload", "catalogId"),
    ("payload", "recordId"),
    ("payload", "values"),
    ("payload", "prevValues"),
    ("user",),
    ("user", "id"),
    *(("payload", "values", field) for field in "23456789"),
    *(("payload", "prevValues", field) for field in "23456789"),
]
wrong_types = st.one_of(
    st.just(MISSING),
    st.sampled_from(["", " ", "7", 7, 7.5, True, False, None, [], {}, ["7"], {"id": "7"}]),
    st.sampled_from(["record.restored", "RECORD.CREATED", "record.*", "0"]),
    garbage,
)


def webhook_shaped(event: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies shaped like Bpium's webhook: plausible values, one to three of them broken."""
    events = st.sampled_from([event, event, event, *WEBHOOKS.values()])
    body = st.fixed_dictionaries(
        {
            "timestamp": st.just("2026-11-30T10:00:00.000Z"),
            "hook": st.fixed_dictionaries(
                {"id": st.just("1"), "event": events, "sequenceId": st.integers(0, 10**6)}
            ),
            "payload": st.fixed_dictionaries(
                {
                    "catalogId": st.sampled_from(["7", 7]),
                    "recordId": record_ids,
                    "values": meeting_values,
                    "prevValues": meeting_values,
                }
            ),
            "user": st.just({"id": "1"}),
        }
    )
    breaks = st.lists(st.tuples(st.sampled_from(BREAKABLE), wrong_types), min_size=0, max_size=3)
    return st.tuples(body, breaks).map(lambda pair: _broken(*pair))


def _broken(body: dict[str, Any], breaks: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    for path, value in breaks:
        parent: Any = body
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue  # an outer key is already broken
        if value is MISSING:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
    return body


# ---------------------------------------------------------------------------- webhooks


@hostile(150)
@given(
    name=st.sampled_from(list(WEBHOOKS)),
    body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()),
    signing=st.sampled_from(["none", "wrong", "right"]),
    wrong=wrong_signatures,
)
def test_random_bodies_at_webhooks(
    warm: Functions, name: str, body: bytes, signing: str, wrong: str
) -> None:
    assume(wrong.strip() != sign(body))  # the "other body" may be this one
    headers = {"right": {"X-Hook-Signature": sign(body)}, "wrong": {"X-Hook-Signature": wrong}}
    answer = post_webhook(warm, name, body, **headers.get(signing, {}))
    result = answered(warm, name, answer, body)
    if len(body) > LIMIT:  # the size is checked first, signed or not
        assert answer.status_code == 413, result
    elif signing != "right":
        assert answer.status_code == 401, result
        assert result["error"]["code"] in ("signature_missing", "signature_invalid")
    else:
        # Random JSON is never a webhook of ours: refused for its shape, or ignored.
        assert answer.status_code in (200, 400, 422), result
        if answer.status_code == 200:
            assert result["status"] == "ignored", result


def _outcome(name: str, answer: Any, result: dict[str, Any]) -> None:
    """Checks a signed, webhook-shaped delivery's answer; tells Hypothesis what it was."""
    error = result.get("error") or {}
    event(f"{name} {answer.status_code} {result.get('reason') or result.get('status') or ''}")
    event(f"{name} {answer.status_code} {error.get('code', '')} {error.get('field', '')}")
    assert answer.status_code in (200, 400, 422), result
    if answer.status_code == 200:
        statuses = ("created", "updated", "cancelled", "ignored", "refused")
        assert result["status"] in statuses, result
    if answer.status_code == 422:
        assert error["code"] == "invalid_meeting", result
    if result.get("status") == "refused":  # the worker's: a value of the wrong type, or no event
        assert error["code"] in ("invalid_meeting", "bad_request"), result
    if answer.status_code == 422 or result.get("status") == "refused":
        assert error["field"] in {"2", "3", "4", "5", "6", "7", "8", "9"}, result


@hostile(200)
@given(data=st.data(), name=st.sampled_from(list(WEBHOOKS)))
def test_signed_webhook_shaped_bodies_with_wrong_types(
    warm: Functions, data: st.DataObject, name: str
) -> None:
    shaped = data.draw(webhook_shaped(WEBHOOKS[name]))
    body = json.dumps(shaped).encode()
    answer = post_webhook(warm, name, body, **{"X-Hook-Signature": sign(body)})
    _outcome(name, answer, answered(warm, name, answer, shaped))


values_with_wrong_types = st.tuples(
    meeting_values,
    st.lists(st.tuples(st.sampled_from("23456789"), wrong_types), max_size=2),
).map(lambda pair: _broken({"v": pair[0]}, [(("v", k), v) for k, v in pair[1]])["v"])


@hostile(150)
@given(values=values_with_wrong_types)
def test_signed_meetings_with_odd_values_at_created(
    warm: Functions, values: dict[str, Any]
) -> None:
    """A well-formed `record.created` of a new record: only the meeting's values are odd."""
    record = f"{next(_records)}"
    body = ascii_hook("record.created", record, values)
    answer = post_webhook(warm, "on_meeting_created", body, **{"X-Hook-Signature": sign(body)})
    result = answered(warm, "on_meeting_created", answer, values)
    _outcome("on_meeting_created", answer, result)
    if answer.status_code == 200 and result["status"] != "refused":
        # The record lives only in this webhook, not in Bpium: the write-back's 404 cancels
        # the event that was just made.
        assert (result["status"], result.get("reason")) == ("ignored", "record_gone"), result


@hostile(60)
@given(
    name=st.sampled_from(list(WEBHOOKS)),
    method=st.sampled_from([m for m in METHODS if m != "POST"]),
    signature=header_text,
    trace=header_text,
    parent=header_text,
    execution=header_text,
)
def test_header_garbage_and_wrong_methods_at_webhooks(
    warm: Functions,
    *,
    name: str,
    method: str,
    signature: str,
    trace: str,
    parent: str,
    execution: str,
) -> None:
    body = hook_body(WEBHOOKS[name], "1000001", dict(VALID_VALUES))
    context = {
        "X-Cloud-Trace-Context": trace,
        "traceparent": parent,
        "Function-Execution-Id": execution,
    }
    garbled = post_webhook(warm, name, body, **{"X-Hook-Signature": signature}, **context)
    assert answered(warm, name, garbled, signature)["error"]["code"].startswith("signature")
    assert garbled.status_code == 401
    # A signed body under another method: still refused, before anything is read.
    other = warm.clients[name].open(
        "/", method=method, data=body, headers={"X-Hook-Signature": sign(body), **context}
    )
    assert answered(warm, name, other, method)["error"]["code"] == "method_not_allowed"


# ---------------------------------------------------------------------------- oversized


def _oversized(
    fns: Functions, name: str, body: bytes, *, chunked: bool, headers: dict[str, str]
) -> Any:
    client = fns.clients[name]
    if not chunked:
        return client.post("/", data=body, headers=headers, content_type="application/json")
    # No Content-Length: a chunked body, as a server that terminates the stream hands it on.
    return client.open(
        "/",
        method="POST",
        input_stream=io.BytesIO(body),
        headers={**headers, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def _big_body(kind: str, size: int) -> bytes:
    if kind == "not-json":
        return b"\xff<not json at all>" * (size // 18 + 1)
    # A valid, signed webhook that is merely too big.
    padding = "x" * size
    return hook_body("record.created", "1000002", {**VALID_VALUES, "5": padding})


@hostile(20)
@given(
    name=st.sampled_from([*WEBHOOKS, *SCENARIOS]),
    kind=st.sampled_from(["not-json", "signed-webhook"]),
    extra=st.integers(1, LIMIT // 2),
    chunked=st.booleans(),
)
def test_oversized_bodies_are_refused_unread(
    warm: Functions, name: str, kind: str, extra: int, chunked: bool
) -> None:
    body = _big_body(kind, LIMIT + extra)
    assert len(body) > LIMIT
    headers = {"X-Hook-Signature": sign(body), "X-Api-Key": API_KEY}
    answer = _oversized(warm, name, body, chunked=chunked, headers=headers)
    result = answered(warm, name, answer, f"{kind} of {len(body)} bytes, chunked={chunked}")
    # 413 even for a body that is not JSON: the size is checked before anything else.
    assert answer.status_code == 413, result
    assert result["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("name", [*WEBHOOKS, *SCENARIOS])
def test_oversized_body_on_a_cold_instance_reads_no_secret(
    fns: Functions, name: str, chunked: bool
) -> None:
    """Refused before the instance even reads a secret: nothing but the size was looked at."""
    services.reset()
    body = _big_body("not-json", LIMIT + 1)
    answer = _oversized(fns, name, body, chunked=chunked, headers={"X-Api-Key": API_KEY})
    assert answer.status_code == 413
    assert answered(fns, name, answer, "cold")["error"]["code"] == "payload_too_large"


def test_a_body_of_exactly_one_mebibyte_is_read(warm: Functions) -> None:
    body = b"{" + b" " * (LIMIT - 2) + b"}"
    answer = post_webhook(warm, "on_meeting_created", body, **{"X-Hook-Signature": sign(body)})
    assert answer.status_code == 400  # read and parsed: an object without `hook`
    assert answered(warm, "on_meeting_created", answer)["error"]["field"] == "hook"


# ---------------------------------------------------------------------------- scenarios


def _params(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    values = st.one_of(
        text,
        garbage,
        instants.map(lambda d: d.isoformat()),
        instants.map(lambda d: d.date().isoformat()),
        st.sampled_from(["true", "false", "1", "0", "yes", "maybe", "", "-1", "100001"]),
        st.integers(-5, 200_000),
    )
    return st.dictionaries(st.sampled_from(names) | text, values, max_size=6)


def _send(
    fns: Functions,
    name: str,
    *,
    method: str,
    params: dict[str, Any],
    delivery: str,
    headers: dict[str, str],
) -> tuple[Any, object]:
    client = fns.clients[name]
    if delivery != "json":
        # Query strings and form bodies are UTF-8 bytes: lone surrogates cannot travel there.
        params = {k: v for k, v in params.items() if _utf8(k) and _utf8(v)}
    if delivery == "query":
        query = {str(k): json.dumps(v) if not isinstance(v, str) else v for k, v in params.items()}
        return client.open("/", method=method, query_string=query, headers=headers), query
    if delivery == "form":
        form = urlencode({str(k): str(v) for k, v in params.items()})
        answer = client.open(
            "/",
            method=method,
            data=form,
            headers=headers,
            content_type="application/x-www-form-urlencoded",
        )
        return answer, form
    body = json.dumps(params)
    answer = client.open(
        "/", method=method, data=body, headers=headers, content_type="application/json"
    )
    return answer, body


def _utf8(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _key_headers(form: str, key: str) -> dict[str, str]:
    if form == "none":
        return {}
    if form == "x-api-key":
        return {"X-Api-Key": key}
    if form == "bearer":
        return {"Authorization": f"Bearer {key}"}
    return {"Authorization": f"Basic {key}"}  # the wrong scheme: as good as no key


@hostile(100)
@given(
    name=st.sampled_from(SCENARIOS),
    method=st.sampled_from(METHODS),
    params=_params(["calendarId", "timeMin", "timeMax", "summary", "shareWith", "syncToken"]),
    delivery=st.sampled_from(["json", "form", "query"]),
    form=st.sampled_from(["none", "x-api-key", "bearer", "basic"]),
    key=header_text | mojibake | st.just(API_KEY[:-1]) | st.just(API_KEY + "x"),
)
def test_scenarios_without_the_right_key_are_401_and_call_nothing(
    warm: Functions,
    *,
    name: str,
    method: str,
    params: dict[str, Any],
    delivery: str,
    form: str,
    key: str,
) -> None:
    assume(key.strip() != API_KEY)
    headers = _key_headers(form, key)
    answer, sent = _send(
        warm, name, method=method, params=params, delivery=delivery, headers=headers
    )
    result = answered(warm, name, answer, (headers, sent))
    assert answer.status_code == 401, result
    assert result["error"]["code"] in ("api_key_missing", "api_key_invalid")


# calendarId and syncToken are not drawn by name: their documented refusals are not 400s.
LIST_PARAMS = ["timeMin", "timeMax", "q", "updatedMin", "limit", "sync"]
CREATE_PARAMS = ["summary", "description", "timeZone", "shareWith", "ifNotExists"]


share_with = st.lists(
    st.fixed_dictionaries(
        {"email": st.emails() | text | garbage},
        optional={"role": st.sampled_from(["reader", "writer", "owner", "boss"]) | garbage},
    )
    | garbage,
    max_size=3,
)


@hostile(120)
@given(
    data=st.data(),
    name=st.sampled_from(SCENARIOS),
    method=st.sampled_from(METHODS),
    delivery=st.sampled_from(["json", "form", "query"]),
    form=st.sampled_from(["x-api-key", "bearer"]),
)
def test_scenarios_with_the_key_and_random_parameters_answer_2xx_or_4xx(
    warm: Functions,
    *,
    data: st.DataObject,
    name: str,
    method: str,
    delivery: str,
    form: str,
) -> None:
    if name == "list_events":
        # A long q makes googleapiclient send the GET as a POST with a form body: Google
        # (and the stand-in) take it.
        params = data.draw(_params(LIST_PARAMS))
    else:
        params = data.draw(_params(CREATE_PARAMS))
        params["shareWith"] = data.draw(st.just(params.get("shareWith")) | share_with)
    if delivery != "json":
        # Query and form fields are strings: structured values do not travel that way.
        params = {k: v for k, v in params.items() if not isinstance(v, list | dict)}
    answer, sent = _send(
        warm,
        name,
        method=method,
        params=params,
        delivery=delivery,
        headers=_key_headers(form, API_KEY),
    )
    result = answered(warm, name, answer, sent)
    event(f"{name} {answer.status_code}")
    # Hypothesis also draws the names it finds in our code as keys. A calendarId that names
    # no calendar of ours is a 404 naming it; a syncToken Google does not know is a 409, or
    # a 502 when Google refuses it outright (README, «Errors of both»).
    if answer.status_code == 404:
        error = result["error"]
        assert (error["code"], error["field"]) == ("calendar_not_found", "calendarId"), result
        return
    if answer.status_code in (409, 502) and name == "list_events" and "syncToken" in params:
        assert result["error"]["code"], result
        return
    assert answer.status_code in (200, 400), result
    if answer.status_code == 400:
        # The README promises a 400 naming the parameter (or saying the body is not JSON).
        error = result["error"]
        assert error.get("field") or error["code"] == "invalid_json"


@hostile(60)
@given(
    name=st.sampled_from(SCENARIOS),
    method=st.sampled_from(METHODS),
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "a/b"]
    ),
)
def test_scenarios_with_the_key_and_random_bodies(
    warm: Functions, name: str, method: str, body: bytes, content_type: str
) -> None:
    """Only the shape of the body is at stake: a valid key and any bytes."""
    answer = warm.clients[name].open(
        "/",
        method=method,
        data=body,
        headers={"X-Api-Key": API_KEY, "Content-Type": content_type},
    )
    result = answered(warm, name, answer, body)
    assert answer.status_code in (200, 400, 413), result


# ---------------------------------------------------------------------------- refresh_tokens


@hostile(30)
@given(
    method=st.sampled_from(METHODS),
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
    headers=st.dictionaries(
        st.sampled_from(["X-Hook-Signature", "X-Api-Key", "Authorization", "traceparent"]),
        header_text,
    ),
)
def test_refresh_tokens_ignores_garbage_bodies_and_methods(
    warm: Functions, method: str, body: bytes, headers: dict[str, str]
) -> None:
    answer = warm.clients["refresh_tokens"].open("/", method=method, data=body, headers=headers)
    warm.reset_calls()  # it reads the token afresh on every run, by design
    assert answer.status_code == 200, answer.data[:300]
    assert answer.mimetype == "application/json"
    assert answer.get_json()["status"] in ("fresh", "refreshed")


# ---------------------------------------------------------------------------- edge cases
# Each of these once answered 5xx (or reached Bpium) and was found by the properties above.


def _signed(fns: Functions, name: str, body: bytes) -> Any:
    return post_webhook(fns, name, body, **{"X-Hook-Signature": sign(body, WEBHOOK_SECRET)})


@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"3": "9999-12-31T23:59:00+00:00"}, "3", id="start-9999-plus-duration"),
        pytest.param({"3": "0001-01-01T00:00:00+05:00"}, "3", id="start-0001-in-utc"),
        pytest.param({"3": START, "4": "9999-12-31T23:30:00+00:00"}, "3", id="end-9999-local"),
    ],
)
def test_dates_beyond_pythons_calendar_are_refused_naming_the_field(
    warm: Functions, values: dict[str, str], field: str
) -> None:
    """Once OverflowError → 500 internal (start + duration, or conversion to TIME_ZONE)."""
    body = hook_body("record.created", "1000003", {**VALID_VALUES, "4": None, **values})
    answer = _signed(warm, "on_meeting_created", body)
    result = answered(warm, "on_meeting_created", answer, values)
    assert (answer.status_code, result["status"]) == (200, "refused"), result
    assert result["error"]["code"] == "invalid_meeting"
    assert result["error"]["field"] == field


def test_a_meeting_before_1919_is_sent_with_an_rfc3339_offset(warm: Functions) -> None:
    """Once 502 calendar_refused after a Calendar call: Europe/Moscow's local mean time
    (+02:30:17) was written as the event's offset, which RFC 3339 cannot express."""
    values = {**VALID_VALUES, "3": "1900-01-01T00:00:00.000Z", "4": None}
    warm.stack.bpium.put_record(warm.stack.meetings, values, "1000005", fire=False)
    answer = _signed(warm, "on_meeting_created", hook_body("record.created", "1000005", values))
    result = answered(warm, "on_meeting_created", answer, values)
    assert result["status"] == "created", result
    start = warm.stack.google.event("primary", result["eventId"])["start"]
    assert re.fullmatch(r".*(Z|[+-]\d\d:\d\d)", start["dateTime"]), start


def test_employee_link_into_a_missing_catalog_is_not_a_5xx(warm: Functions) -> None:
    """Once 502 not_found: the employees' e-mails were read from a catalog that is not."""
    values = {**VALID_VALUES, "6": [{"catalogId": "no-such", "recordId": "1"}]}
    warm.stack.bpium.put_record(warm.stack.meetings, VALID_VALUES, "1000004", fire=False)
    answer = _signed(warm, "on_meeting_created", hook_body("record.created", "1000004", values))
    assert answered(warm, "on_meeting_created", answer, values)["status"] == "created"


@pytest.mark.parametrize("record_id", ["../../8/records/1", "1?x=1", "1#x", "%2e%2e"])
@pytest.mark.parametrize("name", list(WEBHOOKS))
def test_record_id_cannot_reach_another_bpium_url(
    warm: Functions, name: str, record_id: str
) -> None:
    """Once put into Bpium's URLs as is: `../../8/records/1` read an employee (the 422
    quoted its e-mail) and PATCHed it (502)."""
    changed, before = {"2": "Новое"}, {**VALID_VALUES, "2": "Старое"}
    body = hook_body(WEBHOOKS[name], record_id, {**VALID_VALUES, **changed}, before)
    answer = _signed(warm, name, body)
    result = answered(warm, name, answer, record_id)  # a 4xx: no Bpium call at all
    assert answer.status_code == 400, result
    assert result["error"]["field"] == "payload.recordId"


@pytest.mark.parametrize("name", ["on_meeting_created", "on_meeting_deleted"])
def test_record_id_with_a_lone_surrogate_is_400(warm: Functions, name: str) -> None:
    """Once 500 internal: UnicodeEncodeError deriving the event id from `\\ud800`."""
    body = ascii_hook(WEBHOOKS[name], "\ud800", dict(VALID_VALUES))
    answer = _signed(warm, name, body)
    assert answer.status_code == 400, answered(warm, name, answer, body)


@pytest.mark.parametrize("hook", [{"id": "\ud800"}, {"event": "\ud800"}], ids=["id", "event"])
def test_a_delivery_leaves_its_log_line_whatever_its_hook_holds(
    warm: Functions, capsys: pytest.CaptureFixture[str], hook: dict[str, str]
) -> None:
    """Once lost: a lone surrogate in a logged field made the line unwritable to stdout
    ('--- Logging error ---' on stderr), so the delivery left no trace to replay."""
    body = json.loads(hook_body("record.created", "1000006", {"3": "not a date"}))
    body["hook"].update(hook)
    capsys.readouterr()
    answer = _signed(warm, "on_meeting_created", json.dumps(body).encode())
    answered(warm, "on_meeting_created", answer, body)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    labels = [x.get("logging.googleapis.com/labels", {}).get("function") for x in lines]
    assert "on_meeting_created" in labels, lines


@pytest.mark.parametrize(
    "employee",
    [
        pytest.param({"id": "\ud800"}, id="user-id"),
        pytest.param({"catalogId": "\ud800", "recordId": "1"}, id="link-catalog"),
    ],
)
def test_employee_ref_with_a_lone_surrogate_is_not_a_5xx(
    warm: Functions, employee: dict[str, str]
) -> None:
    """Once 500 internal: the id was UTF-8-encoded into Bpium's URL."""
    values = {**VALID_VALUES, "6": [employee]}
    answer = _signed(warm, "on_meeting_created", ascii_hook("record.created", "1000007", values))
    answered(warm, "on_meeting_created", answer, values)


@pytest.mark.parametrize("param", ["q", "calendarId", "syncToken"])
def test_list_events_parameter_with_a_lone_surrogate_is_400(warm: Functions, param: str) -> None:
    """Once 500 internal: the parameter was UTF-8-encoded into the Calendar URL."""
    answer = warm.scenario("list_events", {param: "\ud800"})
    assert answer.status_code == 400, answered(warm, "list_events", answer, param)


DEEP_BODY = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda fns: _signed(fns, "on_meeting_created", DEEP_BODY), id="webhook"),
        pytest.param(
            lambda fns: fns.clients["list_events"].post(
                "/", data=DEEP_BODY, headers={"X-Api-Key": API_KEY}
            ),
            id="list_events",
        ),
    ],
)
def test_deeply_nested_json_is_400(warm: Functions, send: Callable[[Functions], Any]) -> None:
    """Once 500 internal: json.loads raises RecursionError, not ValueError."""
    answer = send(warm)
    assert answer.status_code == 400, answer.data[:200]
    assert answered(warm, "deep", answer)["error"]["code"] == "invalid_json"


OUT_OF_RANGE = [
    pytest.param({"timeMin": "9999-12-31"}, id="timeMin-9999-plus-30-days"),
    pytest.param({"timeMin": "0001-01-01T00:00:00+05:00"}, id="timeMin-0001-in-utc"),
    pytest.param({"updatedMin": "0001-01-01T00:00:00+05:00"}, id="updatedMin-0001-in-utc"),
]


@pytest.mark.parametrize("params", OUT_OF_RANGE)
def test_list_events_dates_beyond_pythons_calendar_are_400(
    warm: Functions, params: dict[str, str]
) -> None:
    """Once 500 internal: OverflowError in parse_list_query."""
    answer = warm.scenario("list_events", params)
    assert answer.status_code == 400
    answered(warm, "list_events", answer, params)


@pytest.mark.parametrize("params", OUT_OF_RANGE)
def test_list_events_out_of_range_date_names_its_parameter(
    warm: Functions, params: dict[str, str]
) -> None:
    answer = warm.scenario("list_events", params)
    assert answered(warm, "list_events", answer, params)["error"].get("field") in params


@pytest.mark.parametrize("zone", ["America", "Europe", "a" * 300], ids=["dir", "dir2", "long"])
def test_create_calendar_time_zone_that_is_a_folder_is_400(warm: Functions, zone: str) -> None:
    """Once 500 internal: ZoneInfo raises IsADirectoryError or OSError(ENAMETOOLONG)."""
    answer = warm.scenario("create_calendar", {"summary": "x", "timeZone": zone})
    assert answer.status_code == 400
    assert answered(warm, "create_calendar", answer, zone)["error"]["field"] == "timeZone"
