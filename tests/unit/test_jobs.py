"""Sync jobs: the no-ops decided with no call, the task body, and its hashed name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bpium_calendar.domain import parse_webhook
from bpium_calendar.errors import BadRequest
from bpium_calendar.event_ids import event_id_for
from bpium_calendar.jobs import MAX_VALUES_BYTES, SyncJob, job_of, triage
from bpium_calendar.settings import Settings
from tests.conftest import hook_body
from tests.unit import settings_env

FIELDS = {**settings_env.FIELDS, "calendar": "9"}
SETTINGS = Settings.from_env({**settings_env.BASE, "BPIUM_FIELDS": json.dumps(FIELDS)})


def webhook(event: str, values: Any = None, prev: Any = None, **kw: Any) -> Any:
    return parse_webhook(hook_body(event, "42", values, prev, **kw))


def test_only_changes_to_synced_fields_need_a_sync() -> None:
    assert triage(webhook("record.updated", {"8": "x"}, {"8": ""}), "record.updated", SETTINGS)
    assert triage(webhook("record.updated", {"2": "a"}, {"2": "a"}), "record.updated", SETTINGS)
    assert (
        triage(webhook("record.updated", {"2": "b"}, {"2": "a"}), "record.updated", SETTINGS)
        is None
    )
    assert triage(webhook("record.created", {}), "record.created", SETTINGS) is None
    assert triage(webhook("record.created", {}), "record.updated", SETTINGS) == "unexpected_event"
    other = webhook("record.created", {}, catalog_id="8")
    assert triage(other, "record.created", SETTINGS) == "other_catalog"


def test_a_job_survives_its_task_body() -> None:
    ours = event_id_for("7", "42")
    hook = webhook("record.updated", {"2": "b", "9": "team"}, {"2": "a", "9": "old", "8": ours})
    job = job_of(hook, SETTINGS)
    assert (job.previous_calendar, job.calendar, job.event_id) == ("old", "team", ours)
    assert job.values is None  # an update reads the record
    again = SyncJob.from_json(json.loads(json.dumps(job.to_json())))
    assert again == job


def test_a_created_job_carries_its_values_unless_they_are_large() -> None:
    small = job_of(webhook("record.created", {"2": "Plan"}), SETTINGS)
    assert small.values == {"2": "Plan"}
    big = job_of(webhook("record.created", {"5": "x" * (MAX_VALUES_BYTES + 1)}), SETTINGS)
    assert big.values is None


def test_an_event_id_that_is_not_ours_for_the_record_is_not_carried() -> None:
    foreign = event_id_for("7", "43")
    job = job_of(webhook("record.updated", {"2": "b"}, {"2": "a", "8": foreign}), SETTINGS)
    assert job.event_id is None
    typed = job_of(webhook("record.updated", {"2": "b"}, {"2": "a", "8": "anyone's"}), SETTINGS)
    assert typed.event_id is None


def test_a_delete_job_carries_only_the_ids() -> None:
    job = job_of(webhook("record.deleted"), SETTINGS)
    assert (job.event, job.record_id, job.values, job.calendar) == (
        "record.deleted",
        "42",
        None,
        None,
    )


def test_the_task_name_is_the_same_for_one_message_and_differs_between_messages() -> None:
    first = job_of(webhook("record.created", {}, sequence_id=5), SETTINGS)
    again = job_of(webhook("record.created", {"2": "later"}, sequence_id=5), SETTINGS)
    other = job_of(webhook("record.created", {}, sequence_id=6), SETTINGS)
    assert first.task_id() == again.task_id() != other.task_id()
    name = first.task_id() or ""
    assert name.startswith("hook-")
    assert len(name) < 500
    assert all(c.isalnum() or c in "-_" for c in name)
    assert SyncJob("record.created", "7", "42").task_id() is None


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"v": 2, "event": "record.created", "catalogId": "7", "recordId": "1"},
        {"v": 1, "event": "record.moved", "catalogId": "7", "recordId": "1"},
        {"v": 1, "event": "record.created", "catalogId": "", "recordId": "1"},
        {"v": 1, "event": "record.created", "catalogId": "7", "recordId": 1},
        {"v": 1, "event": "record.created", "catalogId": "7", "recordId": "1", "values": []},
        {"v": 1, "event": "record.updated", "catalogId": "7", "recordId": "1", "calendar": 3},
    ],
)
def test_a_malformed_task_body_is_refused_naming_the_problem(body: Any) -> None:
    with pytest.raises(BadRequest):
        SyncJob.from_json(body)
