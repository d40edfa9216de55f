"""The Bpium stand-in, through `requests` over HTTP, with a real webhook receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from sandbox.bpium import API_USER_ID, DEMO_LOGIN, DEMO_PASSWORD, EVENTS, BpiumStandIn, seed
from sandbox.common import ServerThread

AUTH = (DEMO_LOGIN, DEMO_PASSWORD)
SECRET = "секретная строка"
START = "2024-05-20T07:00:00.000Z"
END = "2024-05-20T08:00:00.000Z"


class Receiver:
    """A webhook endpoint that records raw deliveries and answers a chosen status.

    `delay[name]` makes it answer that slowly; `max_in_flight` is the most requests it was
    handling at once.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.status: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        app = Flask("receiver")

        @app.post("/hook/<name>")
        def hook(name: str) -> Response:
            with self.lock:
                self.received.append(
                    {"name": name, "raw": request.get_data(), "headers": dict(request.headers)}
                )
                status = self.status.get(name, 200)
                delay = self.delay.get(name, 0.0)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                time.sleep(delay)
            finally:
                with self.lock:
                    self.in_flight -= 1
            return Response('{"ok": true}', status=status, mimetype="application/json")

        self.server = ServerThread(app).start()

    def url(self, name: str) -> str:
        return f"{self.server.url}/hook/{name}"

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.status.clear()
            self.delay.clear()
            self.max_in_flight = self.in_flight


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.stop()


@pytest.fixture(scope="module")
def shared_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[BpiumStandIn, ServerThread]]:
    standin = BpiumStandIn()
    server = ServerThread(standin.app).start()
    yield standin, server
    standin.wait_idle(5)
    server.stop()


@pytest.fixture
def clock(shared_clock: FakeClock) -> FakeClock:
    shared_clock.now = 1_700_000_000.0
    return shared_clock


@pytest.fixture
def bpium(
    shared: tuple[BpiumStandIn, ServerThread], receiver: Receiver, clock: FakeClock
) -> tuple[BpiumStandIn, str]:
    """The shared stand-in, freshly seeded: one server per module keeps the file fast."""
    standin, server = shared
    assert standin.wait_idle(5)
    standin.clock = clock
    standin.basic_auth_delay = 0.0
    standin.rate_limit, standin.rate_window = 100, 30.0
    standin.delivery_jitter, standin.delivery_seed = 0.0, 0
    standin.retry_after_header = False
    standin.patch_answer = "empty"
    standin.timestamp_form = "unix-string"
    standin.hooks.clear()
    standin.reset()
    seed(standin)
    receiver.clear()
    return standin, f"{server.url}/api/v1"


@pytest.fixture
def api(bpium: tuple[BpiumStandIn, str]) -> Iterator[requests.Session]:
    session = requests.Session()
    session.auth = AUTH
    yield session
    session.close()


def signature(raw: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.md5).digest()).decode()


def meeting(title: str = "Планёрка", **extra: Any) -> dict[str, Any]:
    return {"2": title, "3": START, "4": END, **extra}


def bodies(receiver: Receiver, name: str) -> list[dict[str, Any]]:
    return [json.loads(r["raw"]) for r in receiver.received if r["name"] == name]


# ------------------------------------------------------------------------- auth


def test_basic_auth_sets_http_only_cookie_and_cookie_is_reused(
    bpium: tuple[BpiumStandIn, str],
) -> None:
    standin, base = bpium
    session = requests.Session()
    first = session.get(f"{base}/catalogs/7", auth=AUTH)
    assert first.status_code == 200
    set_cookie = first.headers["Set-Cookie"]
    assert set_cookie.startswith("connect.sid=")
    assert "HttpOnly" in set_cookie
    assert "Path=/" in set_cookie
    for _ in range(3):
        answer = session.get(f"{base}/catalogs/7/records")
        assert answer.status_code == 200
        assert "Authorization" not in answer.request.headers
    assert standin.basic_auth_count == 1


def test_basic_auth_on_every_request_is_counted(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    standin, base = bpium
    for _ in range(3):
        assert api.get(f"{base}/catalogs/7").status_code == 200
    assert standin.basic_auth_count == 3


@pytest.mark.parametrize(
    "auth", [None, (DEMO_LOGIN, "wrong"), ("nobody@acme.example", DEMO_PASSWORD)]
)
def test_missing_or_wrong_credentials_answer_401(
    bpium: tuple[BpiumStandIn, str], auth: tuple[str, str] | None
) -> None:
    standin, base = bpium
    answer = requests.get(f"{base}/catalogs/7", auth=auth)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Unauthorized"}
    assert "Set-Cookie" not in answer.headers
    assert standin.basic_auth_count == 0


def test_expired_session_answers_401_and_valid_basic_wins_over_bad_cookie(
    bpium: tuple[BpiumStandIn, str],
) -> None:
    standin, base = bpium
    session = requests.Session()
    assert session.get(f"{base}/catalogs/7", auth=AUTH).status_code == 200
    standin.expire_sessions()
    assert session.get(f"{base}/catalogs/7").status_code == 401
    again = session.get(f"{base}/catalogs/7", auth=AUTH)
    assert again.status_code == 200
    assert "connect.sid=" in again.headers["Set-Cookie"]
    assert session.get(f"{base}/catalogs/7").status_code == 200
    forged = requests.get(f"{base}/catalogs/7", cookies={"connect.sid": "forged"})
    assert forged.status_code == 401


def test_basic_auth_is_slow_by_the_configured_delay(bpium: tuple[BpiumStandIn, str]) -> None:
    standin, base = bpium
    standin.basic_auth_delay = 0.2
    session = requests.Session()
    before = standin.basic_auth_count
    slow = session.get(f"{base}/catalogs/7", auth=AUTH)
    fast = session.get(f"{base}/catalogs/7")  # by the session cookie: no Basic check, no delay
    assert slow.status_code == fast.status_code == 200
    assert slow.elapsed.total_seconds() >= 0.2
    assert standin.basic_auth_count == before + 1


def test_rate_limit_answers_429_without_retry_after_by_default(
    bpium: tuple[BpiumStandIn, str],
) -> None:
    standin, base = bpium
    standin.rate_limit = 1
    session = requests.Session()
    assert session.get(f"{base}/catalogs/7", auth=AUTH).status_code == 200
    limited = session.get(f"{base}/catalogs/7")
    assert limited.status_code == 429
    assert "Retry-After" not in limited.headers
    assert "error" in limited.json()


def test_rate_limit_answers_429_per_account_with_retry_after_when_switched_on(
    bpium: tuple[BpiumStandIn, str], clock: FakeClock
) -> None:
    standin, base = bpium
    standin.rate_limit, standin.rate_window = 3, 30.0
    standin.retry_after_header = True
    standin.add_user("other@acme.example", "pw", "2")
    session = requests.Session()
    assert session.get(f"{base}/catalogs/7", auth=AUTH).status_code == 200
    clock.now += 10
    assert session.get(f"{base}/catalogs/7").status_code == 200
    assert session.get(f"{base}/catalogs/7").status_code == 200
    limited = session.get(f"{base}/catalogs/7")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "20"
    assert "error" in limited.json()
    other = requests.get(f"{base}/catalogs/7", auth=("other@acme.example", "pw"))
    assert other.status_code == 200
    clock.now += 19.5
    assert session.get(f"{base}/catalogs/7").headers["Retry-After"] == "1"
    clock.now += 0.5
    assert session.get(f"{base}/catalogs/7").status_code == 200


# ----------------------------------------------------------------- catalogs, reads


def test_catalog_has_fields_and_unknown_catalog_is_404(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    _, base = bpium
    catalog = api.get(f"{base}/catalogs/7").json()
    assert catalog["id"] == "7"
    assert catalog["name"] == "Встречи"
    fields = {f["id"]: f for f in catalog["fields"]}
    assert fields["3"] == {
        "id": "3",
        "name": "Дата начала",
        "type": "date",
        "config": {"time": True},
    }
    assert fields["6"]["type"] == "user"
    assert fields["10"]["config"]["catalogs"] == [{"id": "8"}]
    assert api.get(f"{base}/catalogs/999").status_code == 404
    assert api.get(f"{base}/catalogs/7/records/999").status_code == 404


def test_users_by_id_with_fields_returns_only_those_values(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    _, base = bpium
    answer = api.get(
        f"{base}/catalogs/$users/records",
        params={"id": ["1", "2", "77"], "fields": json.dumps(["$email"])},
    )
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()}
    assert set(by_id) == {"1", "2"}
    assert by_id["1"] == {
        "id": "1",
        "title": "Анна Смирнова",
        "values": {"$email": "anna@acme.example"},
    }
    assert by_id["2"]["values"] == {"$email": "ivan@acme.example"}


def test_paging_with_limit_and_offset_newest_first(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    standin, base = bpium
    created = [standin.put_record("7", meeting(f"m{i}"), fire=False) for i in range(7)]
    assert created == [str(i) for i in range(1, 8)]
    pages = [
        api.get(f"{base}/catalogs/7/records", params={"limit": 3, "offset": off}).json()
        for off in (0, 3, 6)
    ]
    assert [len(p) for p in pages] == [3, 3, 1]
    ids = [r["id"] for page in pages for r in page]
    assert ids == ["7", "6", "5", "4", "3", "2", "1"]
    assert pages[0][0]["title"] == "m6"
    assert api.get(f"{base}/catalogs/7/records", params={"limit": "x"}).status_code == 400
    capped = api.get(f"{base}/catalogs/8/records", params={"limit": 10_000})
    assert capped.status_code == 200


def test_filters_by_equality_ranges_list_form_and_or(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    standin, base = bpium
    standin.put_record("7", meeting("A", **{"8": "evtaaaa"}), fire=False)
    standin.put_record("7", meeting("B", **{"3": "2024-06-01T07:00:00.000Z"}), fire=False)
    standin.put_record(
        "7", meeting("C", **{"3": "2024-07-01T07:00:00.000Z", "6": [{"id": "2"}]}), fire=False
    )

    def titles(params: dict[str, Any]) -> list[str]:
        answer = api.get(f"{base}/catalogs/7/records", params=params)
        assert answer.status_code == 200, answer.text
        return sorted(r["title"] for r in answer.json())

    assert titles({"filters": json.dumps({"8": "evtaaaa"})}) == ["A"]
    assert titles({"filters": json.dumps({"8": None})}) == ["B", "C"]
    window = {"$gte": "2024-05-31T00:00:00+03:00", "$lt": "2024-07-01T07:00:00Z"}
    assert titles({"filters": json.dumps({"3": window})}) == ["B"]
    inclusive = {"at": "2024-06-01T07:00:00.000Z", "to": "2024-07-01T07:00:00.000Z"}
    assert titles({"filters": json.dumps({"3": inclusive})}) == ["B", "C"]
    assert titles({"filters": json.dumps([{"fieldId": "6", "value": ["2"]}])}) == ["C"]
    assert titles({"filters": json.dumps({"$or": [{"2": "A"}, {"2": "C"}]})}) == ["A", "C"]
    assert titles({"filters": json.dumps({"2": {"$or": ["A", "B"]}})}) == ["A", "B"]
    brackets = {
        "filters[0][fieldId]": "3",
        "filters[0][value][at]": "2024-06-01T00:00:00+03:00",
        "filters[1][fieldId]": "2",
        "filters[1][value]": "C",
    }
    assert titles(brackets) == ["C"]


def test_number_filters_with_comparison_operators(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    standin, base = bpium
    standin.add_catalog(
        "20",
        "Числа",
        [
            {"id": "2", "name": "Имя", "type": "text"},
            {"id": "amount", "name": "Сумма", "type": "number"},
        ],
    )
    for name, amount in (("low", 5), ("mid", 10), ("high", 15.5)):
        standin.put_record("20", {"2": name, "amount": amount}, fire=False)

    def titles(filters: Any) -> list[str]:
        params = {"filters": json.dumps(filters)}
        return sorted(
            r["title"] for r in api.get(f"{base}/catalogs/20/records", params=params).json()
        )

    assert titles({"amount": 10}) == ["mid"]
    assert titles({"amount": {"$gt": 5, "$lte": 15.5}}) == ["high", "mid"]
    assert titles({"amount": {"$lt": 10}}) == ["low"]
    assert titles({"amount": {"$gte": 10}}) == ["high", "mid"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filters": "{not json"}, "filters"),
        ({"fields": "[2,"}, "fields"),
        ({"fields": '{"a": 1}'}, "fields"),
        ({"filters": '{"404": "x"}'}, "404"),
        ({"filters": '{"3": {"$near": 1}}'}, "$near"),
    ],
)
def test_bad_list_params_answer_400(
    bpium: tuple[BpiumStandIn, str], api: requests.Session, params: dict[str, str], message: str
) -> None:
    _, base = bpium
    answer = api.get(f"{base}/catalogs/7/records", params=params)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


# --------------------------------------------------------------------- writes


def test_create_patch_delete_round_trip(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    standin, base = bpium
    values = meeting(
        "Обзор",
        **{
            "3": "2024-05-20T10:00:00+03:00",
            "6": [{"id": "2"}],
            "7": [{"contact": "guest@example.com"}],
            "10": [{"catalogId": "8", "recordId": "3"}],
        },
    )
    created = api.post(f"{base}/catalogs/7/records", json={"values": values})
    assert created.status_code == 200
    record_id = created.json()["id"]
    assert record_id == "1"
    record = api.get(f"{base}/catalogs/7/records/{record_id}").json()
    assert record["title"] == "Обзор"
    assert record["values"]["3"] == "2024-05-20T07:00:00.000Z"
    assert record["values"]["6"] == [{"id": "2", "title": "Иван Петров"}]
    assert record["values"]["7"] == [{"contact": "guest@example.com", "comment": ""}]
    assert record["values"]["10"][0]["recordTitle"] == "Мария Соколова"
    assert record["values"]["8"] is None

    patched = api.patch(
        f"{base}/catalogs/7/records/{record_id}", json={"values": {"8": "evt123", "9": None}}
    )
    assert patched.status_code == 200
    assert patched.content == b""
    after = standin.record("7", record_id)
    assert after is not None
    assert after["values"] == {**record["values"], "8": "evt123", "9": None}

    assert api.delete(f"{base}/catalogs/7/records/{record_id}").status_code == 200
    assert standin.record("7", record_id) is None
    assert api.get(f"{base}/catalogs/7/records/{record_id}").status_code == 404
    assert api.delete(f"{base}/catalogs/7/records/{record_id}").status_code == 404
    assert api.patch(f"{base}/catalogs/7/records/99", json={"values": {}}).status_code == 404
    assert api.post(f"{base}/catalogs/999/records", json={"values": {}}).status_code == 404
    assert api.post(f"{base}/catalogs/7/records", json={"values": {}}).json()["id"] == "2"


@pytest.mark.parametrize(
    ("form", "content_type", "body"),
    [
        ("empty", None, b""),
        ("text", "text/plain; charset=utf-8", b"OK"),
        ("record", "application/json", b'{"id":"1"}'),
    ],
)
def test_patch_answers_200_with_the_chosen_body(
    bpium: tuple[BpiumStandIn, str],
    api: requests.Session,
    form: str,
    content_type: str | None,
    body: bytes,
) -> None:
    standin, base = bpium
    record_id = standin.put_record("7", meeting(), fire=False)
    standin.patch_answer = form
    answer = api.patch(f"{base}/catalogs/7/records/{record_id}", json={"values": {"8": "e"}})
    assert answer.status_code == 200
    assert answer.headers.get("Content-Type") == content_type
    assert answer.content.replace(b" ", b"").strip() == body
    assert standin.record("7", record_id)["values"]["8"] == "e"  # type: ignore[index]
    if form != "record":
        with pytest.raises(requests.JSONDecodeError):
            answer.json()


def test_switches_default_to_the_harsher_readings() -> None:
    standin = BpiumStandIn()
    assert standin.delivery_jitter == 0.0
    assert standin.delivery_seed == 0
    assert standin.retry_after_header is False
    assert standin.patch_answer == "empty"
    assert standin.timestamp_form == "unix-string"
    for bad in ({"patch_answer": "json"}, {"timestamp_form": "ms"}, {"delivery_jitter": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BpiumStandIn(**bad)  # type: ignore[arg-type]


def test_years_below_1000_are_stored_zero_padded_read_sorted_and_filtered(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    standin, base = bpium
    url = f"{base}/catalogs/7/records"
    created = api.post(url, json={"values": meeting("Old", **{"3": "0999-05-01T13:00:00+03:00"})})
    assert created.status_code == 200, created.text
    old_id = created.json()["id"]
    first_id = standin.put_record("7", meeting("First", **{"3": "0001-01-01T00:00:00Z"}))
    standin.put_record("7", meeting("New"), fire=False)
    patched = api.patch(f"{url}/{first_id}", json={"values": {"4": "0001-01-01T05:00:00.000Z"}})
    assert patched.status_code == 200
    assert api.get(f"{url}/{old_id}").json()["values"]["3"] == "0999-05-01T10:00:00.000Z"
    first = standin.record("7", first_id)["values"]  # type: ignore[index]
    assert (first["3"], first["4"]) == ("0001-01-01T00:00:00.000Z", "0001-01-01T05:00:00.000Z")

    def titles(params: dict[str, Any]) -> list[str]:
        answer = api.get(url, params=params)
        assert answer.status_code == 200, answer.text
        return [r["title"] for r in answer.json()]

    year_999 = {"at": "0999-01-01T00:00:00.000Z", "to": "0999-12-31T23:59:59.999Z"}
    assert titles({"filters": json.dumps({"3": year_999})}) == ["Old"]
    before_1000 = {"3": {"$lt": "1000-01-01T00:00:00+03:00"}}
    assert sorted(titles({"filters": json.dumps(before_1000)})) == ["First", "Old"]
    assert titles({"filters": json.dumps({"3": "0999-05-01T10:00:00Z"})}) == ["Old"]
    brackets = {"filters[0][fieldId]": "3", "filters[0][value][to]": "0999-05-01T13:00:00+03:00"}
    assert sorted(titles(brackets)) == ["First", "Old"]
    assert titles({"sortField": "3", "sortType": "1"}) == ["First", "Old", "New"]

    for bad in ("999-05-01T10:00:00.000Z", "0001-01-01T00:00:00+03:00"):  # the last is year 0
        assert api.post(url, json={"values": meeting(**{"3": bad})}).status_code == 400, bad
        filters = json.dumps({"3": {"at": bad}})
        assert api.get(url, params={"filters": filters}).status_code == 400, bad


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"99": "x"}, "99"),
        ({"2": 5}, "2"),
        ({"3": "20 мая"}, "3"),
        ({"3": "2024-05-20T10:00:00"}, "3"),
        ({"6": {"id": "1"}}, "6"),
        ({"6": [{"id": "42"}]}, "6"),
        ({"7": [{"comment": "no contact"}]}, "7"),
        ({"10": [{"catalogId": "7", "recordId": "1"}]}, "10"),
        ({"10": [{"catalogId": "8", "recordId": "404"}]}, "10"),
    ],
)
def test_wrong_values_answer_400_naming_the_field(
    bpium: tuple[BpiumStandIn, str], api: requests.Session, values: dict[str, Any], field: str
) -> None:
    _, base = bpium
    answer = api.post(f"{base}/catalogs/7/records", json={"values": values})
    assert answer.status_code == 400
    assert f"{field}" in answer.json()["error"]
    assert api.get(f"{base}/catalogs/7/records").json() == []


def test_switch_number_and_dropdown_types_are_checked(
    bpium: tuple[BpiumStandIn, str], api: requests.Session
) -> None:
    standin, base = bpium
    standin.add_catalog(
        "21",
        "Типы",
        [
            {"id": "n", "name": "N", "type": "number"},
            {"id": "s", "name": "S", "type": "switch"},
            {"id": "d", "name": "D", "type": "dropdown", "config": {"items": [{"id": "1"}]}},
        ],
    )
    url = f"{base}/catalogs/21/records"
    for bad in ({"n": "5"}, {"n": True}, {"s": "yes"}, {"d": "1"}, {"d": ["2"]}):
        answer = api.post(url, json={"values": bad})
        assert answer.status_code == 400, bad
        assert next(iter(bad)) in answer.json()["error"]
    ok = api.post(url, json={"values": {"n": 1.5, "s": True, "d": ["1"]}})
    assert ok.status_code == 200
    assert api.post(url, data="values=1").status_code == 400


# -------------------------------------------------------------------- webhooks


def test_created_webhook_has_exact_shape_and_valid_signature(
    bpium: tuple[BpiumStandIn, str], api: requests.Session, receiver: Receiver, clock: FakeClock
) -> None:
    standin, base = bpium
    hook_id = standin.add_hook(receiver.url("created"), "record.created", "7", SECRET)
    record_id = api.post(f"{base}/catalogs/7/records", json={"values": meeting()}).json()["id"]
    assert standin.wait_idle(5)
    [delivery] = [r for r in receiver.received if r["name"] == "created"]
    raw = delivery["raw"]
    assert delivery["headers"]["X-Hook-Signature"] == signature(raw)
    assert delivery["headers"]["Content-Type"] == "application/json"
    body = json.loads(raw)
    values = standin.record("7", record_id)["values"]  # type: ignore[index]
    assert body == {
        "timestamp": "1700000000",
        "hook": {"id": hook_id, "event": "record.created", "sequenceId": 1},
        "payload": {"catalogId": "7", "recordId": record_id, "values": values, "prevValues": {}},
        "user": {"id": API_USER_ID},  # the API login's own user
    }
    assert "Планёрка".encode() in raw  # signed bytes are UTF-8, not \u-escaped
    [recorded] = standin.deliveries
    assert recorded == {
        "hookId": hook_id,
        "event": "record.created",
        "url": receiver.url("created"),
        "sequenceId": 1,
        "status": 200,
        "response": '{"ok": true}',
        "body": body,
        "delay": 0.0,
    }


def test_updated_webhook_carries_changed_values_and_all_prev_values(
    bpium: tuple[BpiumStandIn, str], api: requests.Session, receiver: Receiver
) -> None:
    standin, base = bpium
    record_id = standin.put_record("7", meeting(), fire=False)
    before = standin.record("7", record_id)["values"]  # type: ignore[index]
    standin.add_hook(receiver.url("updated"), "record.updated", "7", SECRET)
    standin.add_user("robot@acme.example", "pw", "5")
    patch = {"2": "Планёрка", "4": "2024-05-20T09:00:00.000Z", "9": "Переговорная"}
    answer = api.patch(
        f"{base}/catalogs/7/records/{record_id}",
        json={"values": patch},
        auth=("robot@acme.example", "pw"),
    )
    assert answer.status_code == 200
    assert standin.wait_idle(5)
    [raw] = [r["raw"] for r in receiver.received if r["name"] == "updated"]
    body = json.loads(raw)
    assert body["payload"] == {
        "catalogId": "7",
        "recordId": record_id,
        "values": {"4": "2024-05-20T09:00:00.000Z", "9": "Переговорная"},
        "prevValues": before,
    }
    assert body["user"] == {"id": "5"}
    assert {**body["payload"]["prevValues"], **body["payload"]["values"]} == standin.record(
        "7", record_id
    )["values"]  # type: ignore[index]


def test_update_without_change_fires_no_webhook(
    bpium: tuple[BpiumStandIn, str], api: requests.Session, receiver: Receiver
) -> None:
    standin, base = bpium
    values = {**meeting(), "6": [{"id": "1"}], "8": "evt"}
    record_id = standin.put_record("7", values, fire=False)
    standin.add_hook(receiver.url("updated"), "record.updated", "7", SECRET)
    same = {"2": "Планёрка", "3": "2024-05-20T10:00:00+03:00", "6": [{"id": "1"}], "8": "evt"}
    assert api.patch(f"{base}/catalogs/7/records/{record_id}", json={"values": same}).ok
    standin.update_record("7", record_id, {"8": "evt"})
    assert standin.wait_idle(5)
    assert standin.deliveries == []
    assert receiver.received == []


def test_hook_with_watched_fields_fires_only_when_they_change(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, _ = bpium
    record_id = standin.put_record("7", meeting(), fire=False)
    standin.add_hook(receiver.url("watched"), "record.updated", "7", SECRET, fields=["3", "4"])
    standin.add_hook(receiver.url("all"), "record.updated", "7", SECRET)
    standin.update_record("7", record_id, {"8": "evt"})
    standin.update_record("7", record_id, {"4": "2024-05-20T09:00:00.000Z"}, user_id="3")
    assert standin.wait_idle(5)
    received = sorted(bodies(receiver, "all"), key=lambda b: b["hook"]["sequenceId"])
    assert [b["payload"]["values"] for b in received] == [
        {"8": "evt"},
        {"4": "2024-05-20T09:00:00.000Z"},
    ]
    [watched] = bodies(receiver, "watched")
    assert watched["payload"]["values"] == {"4": "2024-05-20T09:00:00.000Z"}
    assert watched["hook"]["sequenceId"] == 1
    assert watched["user"] == {"id": "3"}


def test_deleted_webhook_carries_only_ids(
    bpium: tuple[BpiumStandIn, str], api: requests.Session, receiver: Receiver
) -> None:
    standin, base = bpium
    record_id = standin.put_record("7", meeting(), fire=False)
    hook_id = standin.add_hook(receiver.url("deleted"), "record.deleted", "7", "s3")
    standin.add_hook(receiver.url("other"), "record.deleted", "8", "s3")
    assert api.delete(f"{base}/catalogs/7/records/{record_id}").ok
    assert standin.wait_idle(5)
    [delivery] = receiver.received
    assert delivery["headers"]["X-Hook-Signature"] == signature(delivery["raw"], "s3")
    body = json.loads(delivery["raw"])
    assert body["hook"] == {"id": hook_id, "event": "record.deleted", "sequenceId": 1}
    assert body["payload"] == {"catalogId": "7", "recordId": record_id}


def test_sequence_id_counts_per_hook_in_firing_order_whatever_the_arrival_order(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, _ = bpium
    standin.delivery_jitter = 0.2
    standin.add_hook(receiver.url("seq"), "record.created", "7", SECRET)
    ids = [standin.put_record("7", meeting(f"m{i}")) for i in range(4)]
    assert standin.wait_idle(5)
    received = sorted(bodies(receiver, "seq"), key=lambda b: b["hook"]["sequenceId"])
    assert [b["hook"]["sequenceId"] for b in received] == [1, 2, 3, 4]
    assert [b["payload"]["recordId"] for b in received] == ids
    assert sorted(d["sequenceId"] for d in standin.deliveries) == [1, 2, 3, 4]
    arrived = [b["hook"]["sequenceId"] for b in bodies(receiver, "seq")]
    assert arrived != [1, 2, 3, 4]  # seed 0 draws 0.17, 0.15, 0.08, 0.05 s


def test_deliveries_to_a_slow_receiver_are_in_flight_at_once(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, _ = bpium
    standin.delivery_jitter = 0.05
    receiver.delay["slow"] = 0.5
    standin.add_hook(receiver.url("slow"), "record.created", "7", SECRET)
    standin.add_hook(receiver.url("slow"), "record.updated", "7", SECRET)
    record_id = standin.put_record("7", meeting())
    standin.update_record("7", record_id, {"8": "evt"})
    assert not standin.wait_idle(0.1)  # the writes did not wait for the receiver
    assert standin.wait_idle(5)
    assert receiver.max_in_flight == 2  # one worker in order would make this 1
    assert sorted(d["event"] for d in standin.deliveries) == ["record.created", "record.updated"]
    assert all(d["status"] == 200 for d in standin.deliveries)


def test_jitter_lets_one_records_created_updated_deleted_arrive_in_any_seeded_order(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, _ = bpium
    for event in EVENTS:
        standin.add_hook(receiver.url(event), event, "7", SECRET)
    standin.delivery_jitter = 1.0

    def arrival_order(delivery_seed: int) -> list[str]:
        standin.reset()
        receiver.clear()
        standin.delivery_seed = delivery_seed
        record_id = standin.put_record("7", meeting())
        standin.update_record("7", record_id, {"8": "evt"})
        standin.delete_record("7", record_id)
        assert standin.wait_idle(5)
        delays = sorted(d["delay"] for d in standin.deliveries)
        assert min(b - a for a, b in pairwise(delays)) > 0.08, delays
        order = [r["name"] for r in receiver.received]
        assert [d["event"] for d in standin.deliveries] == order
        return order

    updated_first = ["record.updated", "record.created", "record.deleted"]  # 0.32, 0.15, 0.65 s
    assert arrival_order(7) == updated_first
    assert arrival_order(7) == updated_first  # the same seed, the same order
    reversed_order = ["record.deleted", "record.updated", "record.created"]  # 0.84, 0.76, 0.42
    assert arrival_order(0) == reversed_order


def test_reset_drops_deliveries_still_waiting_out_their_jitter(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, _ = bpium
    standin.delivery_jitter = 30.0  # seed 0 draws 25 s: far longer than this test
    standin.add_hook(receiver.url("late"), "record.created", "7", SECRET)
    standin.put_record("7", meeting())
    assert not standin.wait_idle(0.2)
    standin.reset()
    assert standin.wait_idle(2)
    assert standin.deliveries == []
    assert receiver.received == []


@pytest.mark.parametrize(
    ("form", "expected"),
    [("unix-string", "1700000000"), ("unix-int", 1700000000), ("iso", "2023-11-14T22:13:20.750Z")],
)
def test_webhook_timestamp_takes_the_chosen_form(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver, clock: FakeClock, form: str, expected: Any
) -> None:
    standin, _ = bpium
    clock.now += 0.75  # the Unix forms drop the fraction
    standin.timestamp_form = form
    standin.add_hook(receiver.url("ts"), "record.created", "7", SECRET)
    standin.put_record("7", meeting())
    assert standin.wait_idle(5)
    [body] = bodies(receiver, "ts")
    assert body["timestamp"] == expected


def test_hook_answering_410_is_deleted_and_gets_nothing_more(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, _ = bpium
    receiver.status["gone"] = 410
    receiver.status["broken"] = 500
    gone = standin.add_hook(receiver.url("gone"), "record.created", "7", SECRET)
    broken = standin.add_hook(receiver.url("broken"), "record.created", "7", SECRET)
    standin.put_record("7", meeting("first"))
    assert standin.wait_idle(5)
    assert gone not in standin.hooks
    assert broken in standin.hooks
    assert {(d["hookId"], d["status"]) for d in standin.deliveries} == {(gone, 410), (broken, 500)}
    standin.put_record("7", meeting("second"))
    assert standin.wait_idle(5)
    assert [b["payload"]["values"]["2"] for b in bodies(receiver, "gone")] == ["first"]
    assert [b["payload"]["values"]["2"] for b in bodies(receiver, "broken")] == ["first", "second"]


def test_unreachable_hook_is_recorded_with_no_status_and_not_retried(
    bpium: tuple[BpiumStandIn, str],
) -> None:
    standin, _ = bpium
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    # the port is closed now: connections are refused
    hook_id = standin.add_hook(url, "record.created", "7", SECRET)
    standin.put_record("7", meeting())
    assert standin.wait_idle(10)
    [delivery] = standin.deliveries
    assert delivery["status"] is None
    assert delivery["response"]
    assert hook_id in standin.hooks


def test_python_writes_without_fire_send_nothing(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, _ = bpium
    for event in ("record.created", "record.updated", "record.deleted"):
        standin.add_hook(receiver.url("any"), event, "7", SECRET)
    record_id = standin.put_record("7", meeting(), fire=False)
    standin.update_record("7", record_id, {"8": "evt"}, fire=False)
    standin.delete_record("7", record_id, fire=False)
    assert standin.wait_idle(5)
    assert receiver.received == []


# ----------------------------------------------------------------- admin routes


def test_admin_routes_manage_hooks_deliveries_sessions_and_reset(
    bpium: tuple[BpiumStandIn, str], receiver: Receiver
) -> None:
    standin, base = bpium
    root = base.removesuffix("/api/v1") + "/_sandbox"
    spec = {
        "url": receiver.url("admin"),
        "event": "record.created",
        "catalogId": "7",
        "secret": SECRET,
        "fields": None,
    }
    hook_id = requests.post(f"{root}/hooks", json=spec).json()["id"]
    assert requests.post(f"{root}/hooks", json={"url": "x"}).status_code == 400
    [hook] = requests.get(f"{root}/hooks").json()["items"]
    assert hook["id"] == hook_id
    assert hook["url"] == receiver.url("admin")

    session = requests.Session()
    assert session.post(f"{base}/catalogs/7/records", json={"values": meeting()}, auth=AUTH).ok
    assert requests.post(f"{root}/wait-idle", json={"timeout": 5}).json() == {"idle": True}
    [delivery] = requests.get(f"{root}/deliveries").json()["items"]
    assert delivery["hookId"] == hook_id
    assert delivery["status"] == 200

    assert requests.post(f"{root}/sessions/expire").ok
    assert session.get(f"{base}/catalogs/7/records").status_code == 401

    assert requests.post(f"{root}/reset").ok
    assert standin.deliveries == []
    assert standin.record("7", "1") is None
    assert standin.record("$users", "1") is None
    assert standin.basic_auth_count == 0
    assert requests.get(f"{root}/calls").json()["calls"] == []
    assert hook_id in standin.hooks

    assert requests.post(f"{root}/reset", json={"seed": True}).ok
    assert standin.record("$users", "1") is not None
    assert requests.delete(f"{root}/hooks/{hook_id}").ok
    assert standin.hooks == {}


def test_seed_returns_the_role_map_and_users(bpium: tuple[BpiumStandIn, str]) -> None:
    standin, _ = bpium
    info = seed(standin)
    assert info["meetings"] == "7"
    assert info["employees"] == "8"
    assert info["fields"] == {
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
    assert standin.record("$users", API_USER_ID)["values"]["$email"] == DEMO_LOGIN  # type: ignore[index]
    assert info["users"]["api"] == {"login": DEMO_LOGIN, "password": DEMO_PASSWORD, "id": "20"}
    assert info["users"]["emails"]["4"] == ""
    assert standin.record("$users", "3")["values"]["$email"] == "olga@acme.example"  # type: ignore[index]
    assert standin.record("8", "1")["title"] == "Анна Смирнова"  # type: ignore[index]
