"""Our own writes never echo: a FROM_GOOGLE write by the API user costs no call (DESIGN §10),
and which Bpium user the integration is."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from bpium_calendar.api_user import RETRY_AFTER, ApiUser
from bpium_calendar.domain import Webhook, parse_webhook
from bpium_calendar.errors import UpstreamUnavailable
from bpium_calendar.intake import Intake
from bpium_calendar.settings import Settings
from bpium_calendar.sync import MeetingSync
from bpium_calendar.tasks import Enqueued
from tests.unit import settings_env

API_USER = "77"
FIELDS = {**settings_env.FIELDS, "responses": "12", "status": "13"}
SETTINGS = Settings.from_env(
    {**settings_env.BASE, "BPIUM_FIELDS": json.dumps(FIELDS), "FROM_GOOGLE": "start,end"}
)
OLD = {"2": "Plan", "3": "2026-12-01T07:00:00.000Z", "4": "2026-12-01T08:00:00.000Z"}
MOVED = {"3": "2026-12-01T09:00:00.000Z", "4": "2026-12-01T10:00:00.000Z"}


def updated(values: dict[str, Any], user_id: str) -> Webhook:
    body = {
        "timestamp": "1764572400",
        "hook": {"id": "1", "event": "record.updated", "sequenceId": 5},
        "payload": {"catalogId": "7", "recordId": "42", "values": values, "prevValues": OLD},
        "user": {"id": user_id},
    }
    return parse_webhook(json.dumps(body).encode())


class RecordingQueue:
    """Our queue port, remembering each task it was handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, dict[str, Any]]] = []

    def enqueue(self, task_id: str | None, body: dict[str, Any]) -> Enqueued:
        self.calls.append((task_id, body))
        return Enqueued(task=task_id or "t", duplicate=False)


class Users:
    """Our Bpium port for `$users`: answers with the given records, or raises."""

    def __init__(self, records: Sequence[dict[str, Any]] = (), error: Exception | None = None):
        self.records = list(records)
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def list_records(
        self,
        catalog_id: str,
        *,
        ids: Sequence[str] = (),
        fields: Sequence[str] = (),
        filters: Any = None,
    ) -> list[dict[str, Any]]:
        self.calls.append({"catalog": catalog_id, "fields": list(fields), "filters": filters})
        if self.error is not None:
            raise self.error
        return self.records


def no_inline() -> MeetingSync:
    raise AssertionError("the webhook must not sync inline")


def intake(queue: RecordingQueue, api_user: ApiUser | None) -> Intake:
    return Intake(
        SETTINGS,
        lambda: queue,
        no_inline,
        (lambda: api_user) if api_user is not None else None,
    )


def known(user_id: str | None = API_USER) -> ApiUser:
    return ApiUser(user_id, lambda: Users(error=AssertionError("no lookup")), lambda: "")


# Intake: our own FROM_GOOGLE write


def test_a_move_written_by_the_api_user_is_its_own_echo() -> None:
    queue = RecordingQueue()
    answer = intake(queue, known()).handle(updated(MOVED, API_USER), "record.updated")
    assert answer == {"status": "ignored", "reason": "own_google_write"}
    assert queue.calls == []


def test_a_move_written_with_the_answers_by_the_api_user_is_its_own_echo() -> None:
    queue = RecordingQueue()
    hook = updated({**MOVED, "12": "ann@acme.example: accepted"}, API_USER)
    answer = intake(queue, known()).handle(hook, "record.updated")
    assert answer == {"status": "ignored", "reason": "own_google_write"}
    assert queue.calls == []


def test_the_same_move_by_another_user_is_queued() -> None:
    queue = RecordingQueue()
    answer = intake(queue, known()).handle(updated(MOVED, "5"), "record.updated")
    assert answer["status"] == "queued"
    assert len(queue.calls) == 1
    task_id, body = queue.calls[0]
    assert answer["task"] == task_id
    assert (body["event"], body["catalogId"], body["recordId"]) == ("record.updated", "7", "42")


def test_a_move_and_a_new_title_by_the_api_user_is_queued() -> None:
    queue = RecordingQueue()
    hook = updated({"3": MOVED["3"], "2": "Plan B"}, API_USER)
    answer = intake(queue, known()).handle(hook, "record.updated")
    assert answer["status"] == "queued"
    assert len(queue.calls) == 1


def test_a_move_is_queued_while_the_api_user_is_unknown() -> None:
    users = Users([{"id": 77, "values": {"$email": "someone@acme.example"}}])
    unknown = ApiUser(None, lambda: users, lambda: "api@acme.example")
    queue = RecordingQueue()
    answer = intake(queue, unknown).handle(updated(MOVED, API_USER), "record.updated")
    assert answer["status"] == "queued"
    assert len(queue.calls) == 1
    assert len(users.calls) == 1


def test_a_move_is_queued_without_an_api_user_port() -> None:
    queue = RecordingQueue()
    answer = intake(queue, None).handle(updated(MOVED, API_USER), "record.updated")
    assert answer["status"] == "queued"
    assert len(queue.calls) == 1


@pytest.mark.parametrize("user_id", [API_USER, "5", ""])
def test_a_change_of_only_the_answer_fields_is_our_write_back_whoever_made_it(
    user_id: str,
) -> None:
    queue = RecordingQueue()
    hook = updated({"12": "ann@acme.example: declined", "13": "cancelled"}, user_id)
    answer = intake(queue, known()).handle(hook, "record.updated")
    assert answer == {"status": "ignored", "reason": "own_write_back"}
    assert queue.calls == []


# ApiUser


def test_a_configured_api_user_is_returned_without_asking_bpium() -> None:
    asked: list[str] = []

    def bpium() -> Users:
        asked.append("bpium")
        return Users()

    def login() -> str:
        asked.append("login")
        return "api@acme.example"

    user = ApiUser("77", bpium, login)
    assert user.id() == "77"
    assert user.id() == "77"
    assert asked == []


def test_the_api_user_is_learned_by_its_exact_e_mail() -> None:
    users = Users(
        [
            {"id": 5, "values": {"$email": "xapi@acme.example"}},
            {"id": 6, "values": {"$email": "api@acme.example.ru"}},
            {"id": 7, "values": {"$email": None}},
            {"id": 8, "values": {"$email": " API@Acme.example "}},
        ]
    )
    user = ApiUser(None, lambda: users, lambda: " Api@acme.example\n")
    assert user.id() == "8"
    assert users.calls == [
        {"catalog": "$users", "fields": ["$email"], "filters": {"$email": "api@acme.example"}}
    ]
    assert user.id() == "8"
    assert len(users.calls) == 1  # learned once per instance


def test_a_substring_match_is_not_the_api_user() -> None:
    users = Users([{"id": 5, "values": {"$email": "xapi@acme.example"}}])
    user = ApiUser(None, lambda: users, lambda: "api@acme.example")
    assert user.id() is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "users",
    [
        Users(error=UpstreamUnavailable("Bpium is down")),
        Users([{"id": 5, "values": {"$email": "xapi@acme.example"}}]),
    ],
    ids=["failing", "fruitless"],
)
def test_a_failed_lookup_waits_before_it_is_tried_again(users: Users) -> None:
    clock = Clock()
    user = ApiUser(None, lambda: users, lambda: "api@acme.example", clock=clock)
    assert user.id() is None
    clock.now += RETRY_AFTER - 1
    assert user.id() is None
    assert len(users.calls) == 1
    clock.now += 1
    users.error = None
    users.records = [{"id": 9, "values": {"$email": "api@acme.example"}}]
    assert user.id() == "9"
    assert len(users.calls) == 2
    clock.now += RETRY_AFTER * 10
    assert user.id() == "9"
    assert len(users.calls) == 2
