"""Push notifications of the Google stand-in (events.watch, channels.stop), driven by
google-api-python-client, delivered to a small recording receiver on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from googleapiclient.discovery import build

from sandbox.common import ServerThread
from sandbox.google_calendar import GoogleStandIn
from sandbox.google_push import DEFAULT_TTL_SECONDS, MAX_ATTEMPTS, MAX_TTL_SECONDS
from tests.sandbox.conftest import failure

ACCOUNT = "owner@example.com"
OTHER = "team@group.calendar.google.com"
WAIT = 5.0  # every wait is bounded by this


class Receiver:
    """Records every POST to /hook (headers, body, arrival); answers the queued statuses
    first, then `default` (200)."""

    def __init__(self) -> None:
        self.app = Flask("receiver")
        self._cv = threading.Condition()
        self.got: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.default = 200
        self.hold = threading.Event()  # cleared: each message waits here until it is set
        self.hold.set()
        self.app.add_url_rule("/hook", "hook", self._hook, methods=["POST"])

    def _hook(self) -> Response:
        self.hold.wait(WAIT)
        with self._cv:
            status = self.statuses.pop(0) if self.statuses else self.default
            self.got.append(
                {
                    "headers": {k.lower(): v for k, v in request.headers.items()},
                    "body": request.get_data(),
                    "at": time.monotonic(),
                    "status": status,
                }
            )
            self._cv.notify_all()
        return Response(status=status)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        """The first `count` messages; fails when they do not come within `timeout`."""
        with self._cv:
            arrived = self._cv.wait_for(lambda: len(self.got) >= count, timeout)
            assert arrived, f"{len(self.got)} of {count} messages arrived"
            return list(self.got)

    def reset(self) -> None:
        with self._cv:
            self.got.clear()
            self.statuses.clear()
            self.default = 200
        self.hold.set()


@pytest.fixture(scope="module")
def served_receiver() -> Iterator[tuple[Receiver, ServerThread]]:
    receiver = Receiver()
    thread = ServerThread(receiver.app).start()
    yield receiver, thread
    thread.stop()


@pytest.fixture
def receiver(served_receiver: tuple[Receiver, ServerThread]) -> Receiver:
    served_receiver[0].reset()
    return served_receiver[0]


@pytest.fixture
def hook(served_receiver: tuple[Receiver, ServerThread], receiver: Receiver) -> str:
    return served_receiver[1].url + "/hook"


@pytest.fixture
def google(shared: tuple[GoogleStandIn, ServerThread]) -> Iterator[GoogleStandIn]:
    stand_in = shared[0]
    stand_in.reset()
    stand_in.clock = time.time
    stand_in.time_scale = 0.01  # retries after 10 ms, 20 ms, ...
    stand_in.add_client("client-1.apps.googleusercontent.com", "secret-1")
    stand_in.add_calendar(OTHER, summary="Team")
    yield stand_in
    assert stand_in.wait_pushes_idle(WAIT)  # nothing left over for the next test
    stand_in.reset()


def channel_body(hook: str, **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "web_hook", "address": hook, **extra}


def watch(api: Any, hook: str, calendar_id: str = "primary", **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = (
        api.events().watch(calendarId=calendar_id, body=channel_body(hook, **extra)).execute()
    )
    return answer


def timed(summary: str = "Meeting", hour: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": f"2026-12-10T{hour:02d}:00:00Z"},
        "end": {"dateTime": f"2026-12-10T{hour:02d}:30:00Z"},
        **extra,
    }


def states(messages: list[dict[str, Any]]) -> list[str]:
    return [m["headers"]["x-goog-resource-state"] for m in messages]


def numbers(messages: list[dict[str, Any]]) -> list[int]:
    return [int(m["headers"]["x-goog-message-number"]) for m in messages]


def settle(google: GoogleStandIn) -> None:
    assert google.wait_pushes_idle(WAIT)


# ---------------------------------------------------------------------------- watch


def test_watch_answers_the_channel_with_a_week_granted_by_default(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    before = time.time()
    body = channel_body(hook, token="target=bpium")
    answer = api.events().watch(calendarId="primary", body=body).execute()

    assert answer["kind"] == "api#channel"
    assert answer["id"] == body["id"]
    assert answer["token"] == "target=bpium"
    assert answer["resourceId"]
    assert answer["resourceUri"].endswith("/calendar/v3/calendars/primary/events")
    assert isinstance(answer["expiration"], str)
    granted = int(answer["expiration"]) / 1000 - before
    assert DEFAULT_TTL_SECONDS - 5 < granted < DEFAULT_TTL_SECONDS + 5
    assert [c["id"] for c in google.channels()] == [body["id"]]
    assert google.channels()[0]["calendarId"] == ACCOUNT


def test_watch_grants_the_ttl_asked_the_earlier_expiration_and_at_most_thirty_days(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    now = time.time()
    short = watch(api, hook, params={"ttl": "3600"})
    by_date = watch(api, hook, expiration=str(int((now + 600) * 1000)))
    both = watch(api, hook, params={"ttl": "3600"}, expiration=str(int((now + 60) * 1000)))
    long = watch(api, hook, params={"ttl": str(90 * 86_400)})

    def granted(answer: dict[str, Any]) -> float:
        return int(answer["expiration"]) / 1000 - now

    assert 3595 < granted(short) < 3605
    assert 595 < granted(by_date) < 605
    assert 55 < granted(both) < 65
    assert MAX_TTL_SECONDS - 5 < granted(long) < MAX_TTL_SECONDS + 5


def test_channel_ttl_seconds_caps_what_is_granted(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    google.channel_ttl_seconds = 30
    answer = watch(api, hook)
    assert 25 < int(answer["expiration"]) / 1000 - time.time() <= 30


def test_two_channels_on_one_calendar_share_its_resource_id(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    first, second = watch(api, hook), watch(api, hook)
    other = watch(api, hook, OTHER)
    assert first["resourceId"] == second["resourceId"] != other["resourceId"]
    api.events().insert(calendarId="primary", body=timed()).execute()
    got = receiver.wait_for(5)  # 3 sync + 2 exists
    settle(google)
    exists = [m for m in got if states([m]) == ["exists"]]
    assert sorted(m["headers"]["x-goog-channel-id"] for m in exists) == sorted(
        [first["id"], second["id"]]
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "required"),
        ({"id": "x" * 65}, "invalid"),
        ({"id": "has space"}, "invalid"),
        ({"id": "dots.are.not.allowed"}, "invalid"),
        ({"type": "email"}, "push.channelTypeNotSupported"),
        ({"type": None}, "push.channelTypeNotSupported"),
        ({"address": None}, "required"),
        ({"address": "ftp://127.0.0.1/hook"}, "invalid"),
        ({"address": "not a url"}, "invalid"),
        ({"token": "t" * 257}, "invalid"),
        ({"params": {"ttl": "1.5"}}, "invalid"),
        ({"params": {"ttl": "0"}}, "invalid"),
        ({"expiration": "1000"}, "invalid"),
    ],
)
def test_watch_refuses_a_bad_channel_with_400(
    google: GoogleStandIn, api: Any, hook: str, change: dict[str, Any], reason: str
) -> None:
    body = {k: v for k, v in {**channel_body(hook), **change}.items() if v is not None}
    assert failure(api.events().watch(calendarId="primary", body=body)) == (400, reason)
    assert google.channels() == []


def test_watch_takes_the_longest_id_of_every_allowed_character(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    channel_id = ("Az09-_+/=" * 8)[:64]
    body = {"id": channel_id, "type": "webhook", "address": hook}
    assert api.events().watch(calendarId="primary", body=body).execute()["id"] == channel_id


def test_watch_refuses_http_when_https_is_required(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    google.push_require_https = True
    request_ = api.events().watch(calendarId="primary", body=channel_body(hook))
    assert failure(request_) == (400, "push.webhookUrlNotHttps")
    https = channel_body("https://127.0.0.1:9/hook")
    assert api.events().watch(calendarId="primary", body=https).execute()["id"] == https["id"]


def test_a_live_channel_id_taken_again_answers_400_channel_id_not_unique(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    body = channel_body(hook)
    api.events().watch(calendarId="primary", body=body).execute()
    again = api.events().watch(calendarId=OTHER, body=body)
    assert failure(again) == (400, "channelIdNotUnique")


def test_a_stopped_channel_id_is_not_taken_again_unless_ids_are_reusable(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    body = channel_body(hook)
    answer = api.events().watch(calendarId="primary", body=body).execute()
    api.channels().stop(body={"id": body["id"], "resourceId": answer["resourceId"]}).execute()
    again = api.events().watch(calendarId="primary", body=body)
    assert failure(again) == (400, "channelIdNotUnique")
    google.push_reusable_ids = True
    assert api.events().watch(calendarId="primary", body=body).execute()["id"] == body["id"]


def test_watch_and_stop_without_a_token_answer_401(
    google: GoogleStandIn, url: str, hook: str
) -> None:
    anonymous = build(
        "calendar",
        "v3",
        static_discovery=True,
        credentials=None,
        developerKey="none",
        client_options={"api_endpoint": f"{url}/calendar/v3/"},
    )
    assert (
        failure(anonymous.events().watch(calendarId="primary", body=channel_body(hook)))[0] == 401
    )
    stop = anonymous.channels().stop(body={"id": "a", "resourceId": "b"})
    assert failure(stop)[0] == 401
    assert google.channels() == []
    assert google.push_log == []


def test_watch_of_an_unknown_calendar_answers_404(
    google: GoogleStandIn, api: Any, hook: str
) -> None:
    request_ = api.events().watch(calendarId="nobody@example.com", body=channel_body(hook))
    assert failure(request_) == (404, "notFound")


# ---------------------------------------------------------------------------- messages


def test_the_first_message_is_sync_numbered_one_with_every_header_and_no_body(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    answer = watch(api, hook, token="secret-token")
    (message,) = receiver.wait_for(1)
    headers = message["headers"]
    assert headers["x-goog-resource-state"] == "sync"
    assert headers["x-goog-message-number"] == "1"
    assert headers["x-goog-channel-id"] == answer["id"]
    assert headers["x-goog-channel-token"] == "secret-token"
    assert headers["x-goog-resource-id"] == answer["resourceId"]
    assert headers["x-goog-resource-uri"] == answer["resourceUri"]
    expires = parsedate_to_datetime(headers["x-goog-channel-expiration"]).timestamp()
    assert abs(expires - int(answer["expiration"]) / 1000) < 1
    assert headers["x-goog-channel-expiration"].endswith(" GMT")
    assert message["body"] == b""
    assert headers.get("content-length") == "0"
    settle(google)
    assert google.push_log[0] == {
        "channel": answer["id"],
        "state": "sync",
        "number": 1,
        "attempt": 1,
        "status": 200,
        "dropped": False,
        "duplicate": False,
        "error": None,
    }


def test_a_channel_without_token_sends_no_token_header(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    watch(api, hook)
    (message,) = receiver.wait_for(1)
    assert "x-goog-channel-token" not in message["headers"]


def test_every_kind_of_event_change_sends_exists_with_increasing_numbers(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    mine, theirs = watch(api, hook), watch(api, hook, OTHER)
    receiver.wait_for(2)
    events = api.events()
    one = events.insert(calendarId="primary", body=timed()).execute()  # 1
    events.patch(calendarId="primary", eventId=one["id"], body={"summary": "P"}).execute()  # 2
    events.update(calendarId="primary", eventId=one["id"], body=timed("U")).execute()  # 3
    two = events.insert(calendarId="primary", body=timed(hour=12)).execute()  # 4
    events.delete(calendarId="primary", eventId=two["id"]).execute()  # 5
    events.move(calendarId="primary", eventId=one["id"], destination=OTHER).execute()  # 6, in 1
    back = events.insert(calendarId=OTHER, body=timed(hour=14)).execute()  # in 2
    events.move(calendarId=OTHER, eventId=back["id"], destination=ACCOUNT).execute()  # 7, in 3
    google.person_edit(ACCOUNT, back["id"], {"summary": "by a person"})  # 8
    google.person_delete(ACCOUNT, back["id"])  # 9
    google.add_event(ACCOUNT, timed(hour=16))  # 10
    api.calendars().clear(calendarId="primary").execute()  # 11: the one confirmed event

    got = receiver.wait_for(2 + 11 + 3)
    settle(google)
    assert len(receiver.got) == 16
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for message in got:
        by_channel.setdefault(message["headers"]["x-goog-channel-id"], []).append(message)
    for channel, count in ((mine["id"], 11), (theirs["id"], 3)):
        messages = by_channel[channel]
        assert states(messages) == ["sync"] + ["exists"] * count
        assert numbers(messages)[0] == 1
        assert numbers(messages) == sorted(set(numbers(messages)))  # strictly increasing


def test_batch_parts_that_change_events_push_too(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver, url: str
) -> None:
    watch(api, hook)
    receiver.wait_for(1)
    batch = api.new_batch_http_request()
    batch._batch_uri = f"{url}/batch/calendar/v3"
    for hour in (9, 10):
        batch.add(api.events().insert(calendarId="primary", body=timed(hour=hour)))
    batch.execute()
    assert states(receiver.wait_for(3)) == ["sync", "exists", "exists"]


def test_watch_event_types_narrow_what_is_pushed(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    api.events().watch(
        calendarId="primary", eventTypes=["outOfOffice"], body=channel_body(hook)
    ).execute()
    receiver.wait_for(1)
    api.events().insert(calendarId="primary", body=timed()).execute()
    api.events().insert(calendarId="primary", body=timed(eventType="outOfOffice")).execute()
    settle(google)
    assert states(receiver.got) == ["sync", "exists"]


def test_delivery_happens_outside_the_request_that_changed_the_event(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    watch(api, hook)
    receiver.wait_for(1)
    receiver.hold.clear()
    api.events().insert(calendarId="primary", body=timed()).execute()
    assert states(receiver.got) == ["sync"]  # answered while the receiver still holds the push
    receiver.hold.set()
    assert states(receiver.wait_for(2, timeout=WAIT)) == ["sync", "exists"]


def test_an_incremental_list_after_the_push_shows_the_change(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    full = api.events().list(calendarId="primary").execute()
    watch(api, hook)
    receiver.wait_for(1)
    made = api.events().insert(calendarId="primary", body=timed("Pushed")).execute()
    assert states(receiver.wait_for(2)) == ["sync", "exists"]
    changes = api.events().list(calendarId="primary", syncToken=full["nextSyncToken"]).execute()
    assert [e["id"] for e in changes["items"]] == [made["id"]]
    assert changes["items"][0]["summary"] == "Pushed"


# ---------------------------------------------------------------------------- delivery


def test_5xx_answers_are_retried_with_growing_pauses_until_success(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    google.time_scale = 0.1  # pauses of 0.1 s, then 0.2 s
    receiver.statuses = [500, 503]
    answer = watch(api, hook)
    got = receiver.wait_for(3)
    settle(google)
    assert numbers(got) == [1, 1, 1]
    assert states(got) == ["sync"] * 3
    log = google.push_log
    assert [(e["attempt"], e["status"]) for e in log] == [(1, 500), (2, 503), (3, 200)]
    assert {e["channel"] for e in log} == {answer["id"]}
    first, second = got[1]["at"] - got[0]["at"], got[2]["at"] - got[1]["at"]
    assert first >= 0.09
    assert second >= 0.18


@pytest.mark.parametrize("status", [502, 504])
def test_other_retried_statuses(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver, status: int
) -> None:
    receiver.statuses = [status]
    watch(api, hook)
    receiver.wait_for(2)
    settle(google)
    assert [e["status"] for e in google.push_log] == [status, 200]


def test_retries_stop_after_the_last_attempt(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    receiver.default = 500
    watch(api, hook)
    receiver.wait_for(MAX_ATTEMPTS)
    settle(google)
    assert len(receiver.got) == MAX_ATTEMPTS
    assert [e["attempt"] for e in google.push_log] == list(range(1, MAX_ATTEMPTS + 1))


@pytest.mark.parametrize("status", [201, 202, 204])
def test_other_success_statuses_are_not_retried(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver, status: int
) -> None:
    receiver.default = status
    watch(api, hook)
    receiver.wait_for(1)
    settle(google)
    assert [e["status"] for e in google.push_log] == [status]


@pytest.mark.parametrize("status", [400, 404, 410, 429, 501])
def test_any_other_status_is_a_failure_and_not_retried(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver, status: int
) -> None:
    receiver.statuses = [status]
    watch(api, hook)
    receiver.wait_for(1)
    settle(google)
    assert len(receiver.got) == 1
    assert [e["status"] for e in google.push_log] == [status]


def test_an_unreachable_receiver_is_logged_and_not_retried(google: GoogleStandIn, api: Any) -> None:
    watch(api, "http://127.0.0.1:9/hook")  # discard port: nothing listens
    settle(google)
    (entry,) = google.push_log
    assert entry["status"] is None
    assert entry["error"]


def test_stop_answers_204_and_ends_the_messages(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    answer = watch(api, hook)
    receiver.wait_for(1)
    stopped = api.channels().stop(body={"id": answer["id"], "resourceId": answer["resourceId"]})
    assert stopped.execute() == ""
    assert google.channels() == []
    api.events().insert(calendarId="primary", body=timed()).execute()
    settle(google)
    assert states(receiver.got) == ["sync"]
    assert len(google.push_log) == 1


def test_stop_also_ends_retries_already_queued(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    google.time_scale = 1.0  # the retry waits a second
    receiver.statuses = [500]
    answer = watch(api, hook)
    receiver.wait_for(1)
    api.channels().stop(body={"id": answer["id"], "resourceId": answer["resourceId"]}).execute()
    settle(google)
    assert len(receiver.got) == 1


def test_stop_of_an_unknown_pair_answers_404(google: GoogleStandIn, api: Any, hook: str) -> None:
    answer = watch(api, hook)
    wrong_resource = {"id": answer["id"], "resourceId": "someone-else"}
    unknown = {"id": "never-opened", "resourceId": answer["resourceId"]}
    assert failure(api.channels().stop(body=wrong_resource)) == (404, "notFound")
    assert failure(api.channels().stop(body=unknown)) == (404, "notFound")
    both = {"id": answer["id"], "resourceId": answer["resourceId"]}
    api.channels().stop(body=both).execute()
    assert failure(api.channels().stop(body=both)) == (404, "notFound")
    assert failure(api.channels().stop(body={"id": answer["id"]})) == (400, "required")


def test_an_expired_channel_sends_nothing_more(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    answer = watch(api, hook)
    receiver.wait_for(1)
    google.expire_channel(answer["id"])
    assert google.channels() == []
    api.events().insert(calendarId="primary", body=timed()).execute()
    settle(google)
    assert states(receiver.got) == ["sync"]
    stop = api.channels().stop(body={"id": answer["id"], "resourceId": answer["resourceId"]})
    assert failure(stop) == (404, "notFound")


def test_a_channel_expires_by_the_clock_at_the_expiration_granted(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    now = [time.time()]
    google.clock = lambda: now[0]
    google.channel_ttl_seconds = 60
    answer = watch(api, hook)
    receiver.wait_for(1)
    now[0] += 59
    api.events().insert(calendarId="primary", body=timed()).execute()
    receiver.wait_for(2)
    now[0] += 2
    api.events().insert(calendarId="primary", body=timed(hour=11)).execute()
    settle(google)
    assert states(receiver.got) == ["sync", "exists"]
    assert google.channels() == []
    assert answer["id"] not in {e["channel"] for e in google.push_log[2:]}


def test_a_retry_due_after_the_expiration_is_not_sent(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    now = [time.time()]
    google.clock = lambda: now[0]
    google.channel_ttl_seconds = 60
    google.time_scale = 0.2  # the retry waits 0.2 s
    receiver.statuses = [503]
    watch(api, hook)
    receiver.wait_for(1)
    now[0] += 61
    settle(google)
    assert len(receiver.got) == 1


def test_push_duplicate_sends_some_messages_twice_with_the_same_number(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    google.push_duplicate = True
    watch(api, hook)
    for hour in range(8, 16):
        api.events().insert(calendarId="primary", body=timed(hour=hour)).execute()
    settle(google)
    got = numbers(receiver.got)
    twice = {n for n in got if got.count(n) == 2}
    assert twice
    assert len(set(got)) == 9
    assert {e["duplicate"] for e in google.push_log} == {True, False}


def test_push_drop_rate_drops_messages_and_logs_them(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    google.push_drop_rate = 1.0
    watch(api, hook)
    api.events().insert(calendarId="primary", body=timed()).execute()
    settle(google)
    assert receiver.got == []
    assert [(e["state"], e["dropped"], e["status"]) for e in google.push_log] == [
        ("sync", True, None),
        ("exists", True, None),
    ]


def test_a_partial_drop_rate_loses_some_messages_only(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    google.push_drop_rate = 0.5
    watch(api, hook)
    for hour in range(8, 18):
        api.events().insert(calendarId="primary", body=timed(hour=hour)).execute()
    settle(google)
    dropped = sum(e["dropped"] for e in google.push_log)
    assert 0 < dropped < 11
    assert len(receiver.got) == 11 - dropped


def test_push_delay_holds_each_message_back(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    google.push_delay = 0.3
    started = time.monotonic()
    watch(api, hook)
    (message,) = receiver.wait_for(1)
    assert message["at"] - started >= 0.3


def test_reset_drops_channels_log_and_switches(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver
) -> None:
    watch(api, hook)
    receiver.wait_for(1)
    google.push_drop_rate = 1.0
    google.reset()
    assert google.channels() == []
    assert google.push_log == []
    assert google.push_drop_rate == 0.0


def test_constructor_keywords_set_the_push_switches() -> None:
    stand_in = GoogleStandIn(push_require_https=True, push_drop_rate=0.25, time_scale=0.5)
    assert (stand_in.push_require_https, stand_in.push_drop_rate) == (True, 0.25)
    stand_in.push_drop_rate = 0.0
    stand_in.reset()
    assert (stand_in.push_drop_rate, stand_in.time_scale) == (0.25, 0.5)


def test_admin_routes_list_channels_and_the_push_log(
    google: GoogleStandIn, api: Any, hook: str, receiver: Receiver, url: str
) -> None:
    answer = watch(api, hook)
    waited = requests.post(f"{url}/_sandbox/pushes/wait", json={"timeout": WAIT}, timeout=WAIT + 1)
    assert waited.json() == {"idle": True}
    channels = requests.get(f"{url}/_sandbox/channels", timeout=WAIT).json()["items"]
    assert [c["id"] for c in channels] == [answer["id"]]
    log = requests.get(f"{url}/_sandbox/push-log", timeout=WAIT).json()["items"]
    assert [e["state"] for e in log] == ["sync"]
    expire = requests.post(f"{url}/_sandbox/channels/{answer['id']}/expire", timeout=WAIT)
    assert expire.status_code == 200
    assert requests.get(f"{url}/_sandbox/channels", timeout=WAIT).json()["items"] == []
    missing = requests.post(f"{url}/_sandbox/channels/nope/expire", timeout=WAIT)
    assert missing.status_code == 404
