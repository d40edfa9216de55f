"""reconcile and backfill against the stand-ins: heal dropped webhooks, in batches, idempotently."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import functions_framework
import pytest

from bpium_calendar import services
from bpium_calendar.commands.backfill import run as backfill
from bpium_calendar.event_ids import event_id_for
from sandbox.common import Fault
from sandbox.stack import Stack
from tests.conftest import MAIN
from tests.integration.conftest import Functions

SOON = (datetime.now(UTC) + timedelta(days=2)).replace(hour=7, minute=0, second=0, microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def meeting(stack: Stack, start: datetime = SOON, **values: object) -> str:
    base = {
        "2": "Встреча",
        "3": stamp(start),
        "4": stamp(start + timedelta(hours=1)),
        "6": [{"id": "1"}],
        "7": [{"contact": "guest@partner.example"}],
    }
    return stack.bpium.put_record(stack.meetings, {**base, **values}, fire=False)


def reconcile(fns: Functions) -> dict:
    client = functions_framework.create_app(target="reconcile", source=MAIN).test_client()
    answer = client.post("/")
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def ours(stack: Stack) -> list[dict]:
    return [e for e in stack.google.events("primary") if e.get("status") == "confirmed"]


def test_a_meeting_whose_webhook_was_dropped_appears_after_one_reconcile(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    counts = reconcile(fns)
    assert counts["created"] == 1
    assert counts["failed"] == 0
    event = stack.google.event("primary", event_id_for(stack.meetings, record))
    assert event["status"] == "confirmed"
    assert [a["email"] for a in event["attendees"]] == [
        "anna@acme.example",
        "guest@partner.example",
    ]


def test_reconcile_twice_changes_nothing_the_second_time(fns: Functions) -> None:
    stack = fns.stack
    for _ in range(3):
        meeting(stack)
    reconcile(fns)
    stack.google.recorder.reset_calls()
    counts = reconcile(fns)
    assert counts == {
        "checked": 3,
        "created": 0,
        "updated": 0,
        "cancelled": 0,
        "unchanged": 3,
        "invalid": 0,
        "failed": 0,
        "farChecked": 0,
        "farTotal": 0,
        "keptCancelled": 0,
        "healed": 0,
    }
    assert stack.google.recorder.count("POST") == 0


def test_writes_go_through_batch_requests(fns: Functions) -> None:
    stack = fns.stack
    for _ in range(120):
        meeting(stack)
    stack.google.recorder.reset_calls()
    stack.bpium.recorder.reset_calls()
    assert reconcile(fns)["created"] == 120
    posts = [c.path for c in stack.google.recorder.snapshot() if c.method == "POST"]
    assert posts == ["/batch/calendar/v3"] * 3  # 50 + 50 + 20
    lists = [c for c in stack.bpium.recorder.snapshot() if c.path.endswith("/records")]
    assert any("filters" in c.query for c in lists)
    assert len(stack.bpium.recorder.snapshot()) <= 4  # catalog, meetings, e-mails


def test_a_change_missed_by_its_webhook_is_patched(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    reconcile(fns)
    stack.bpium.update_record(stack.meetings, record, {"2": "Перенесена", "7": []}, fire=False)
    counts = reconcile(fns)
    assert counts["updated"] == 1
    event = stack.google.event("primary", event_id_for(stack.meetings, record))
    assert event["summary"] == "Перенесена"
    assert [a["email"] for a in event["attendees"]] == ["anna@acme.example"]


def test_an_event_whose_record_is_gone_is_cancelled(fns: Functions) -> None:
    stack = fns.stack
    keep, gone = meeting(stack), meeting(stack)
    reconcile(fns)
    stack.bpium.delete_record(stack.meetings, gone, fire=False)
    counts = reconcile(fns)
    assert counts["cancelled"] == 1
    assert (
        stack.google.event("primary", event_id_for(stack.meetings, gone))["status"] == "cancelled"
    )
    assert (
        stack.google.event("primary", event_id_for(stack.meetings, keep))["status"] == "confirmed"
    )


def test_a_meeting_moved_out_of_the_window_is_moved_not_cancelled(fns: Functions) -> None:
    stack = fns.stack
    record = meeting(stack)
    reconcile(fns)
    later = SOON + timedelta(days=400)
    stack.bpium.update_record(
        stack.meetings,
        record,
        {"3": stamp(later), "4": stamp(later + timedelta(hours=1))},
        fire=False,
    )
    counts = reconcile(fns)
    assert counts["cancelled"] == 0
    assert counts["updated"] == 1
    event = stack.google.event("primary", event_id_for(stack.meetings, record))
    assert event["status"] == "confirmed"
    assert event["start"]["dateTime"].startswith(later.astimezone().strftime("%Y-"))


def test_a_cancelled_event_of_a_living_record_waits_for_the_records_next_change(
    fns: Functions,
) -> None:
    """Reconcile never revives a cancelled event (issue «two-way»: a person's decision
    stands); the record's next change in Bpium brings it back."""
    stack = fns.stack
    record = meeting(stack)
    fns.created(record)
    fns.deleted(record)  # a stray delete: the record still exists
    event_id = event_id_for(stack.meetings, record)
    counts = reconcile(fns)
    assert (counts["updated"], counts["created"], counts["keptCancelled"]) == (0, 0, 1)
    assert stack.google.event("primary", event_id)["status"] == "cancelled"
    prev = stack.bpium.record(stack.meetings, record)["values"]
    stack.bpium.update_record(stack.meetings, record, {"2": "Снова в силе"}, fire=False)
    assert fns.updated(record, {"2": "Снова в силе"}, prev).get_json()["status"] == "updated"
    assert stack.google.event("primary", event_id)["status"] == "confirmed"
    assert len(stack.google.events("primary")) == 1


def test_an_impossible_meeting_is_counted_not_fatal(fns: Functions) -> None:
    stack = fns.stack
    meeting(stack)
    meeting(stack, **{"4": stamp(SOON - timedelta(hours=2))})
    counts = reconcile(fns)
    assert (counts["created"], counts["invalid"], counts["failed"]) == (1, 1, 0)


def test_an_adopted_legacy_event_id_is_kept(fns: Functions) -> None:
    from tests.integration.google_helpers import insert_legacy_event

    stack = fns.stack
    record = meeting(stack, **{"8": "oldbpmnevent00003"})
    insert_legacy_event(stack, "oldbpmnevent00003", SOON.isoformat(), adopted_by=record)
    counts = reconcile(fns)
    assert counts["updated"] == 1
    assert [e["id"] for e in stack.google.events("primary")] == ["oldbpmnevent00003"]


def test_a_transient_batch_failure_is_retried(fns: Functions) -> None:
    import re

    stack = fns.stack
    meeting(stack)
    stack.google.recorder.add_fault(Fault(re.compile("^/batch/"), "POST", 503, count=2, delay=0.0))
    assert reconcile(fns)["created"] == 1


def test_google_down_answers_503(fns: Functions) -> None:
    import re

    stack = fns.stack
    meeting(stack)
    stack.google.recorder.add_fault(Fault(re.compile("/events"), None, 503, count=100, delay=0.0))
    client = functions_framework.create_app(target="reconcile", source=MAIN).test_client()
    answer = client.post("/")
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "calendar_unavailable"


def test_backfill_dry_run_of_1000_meetings_reports_without_writing(env: Stack) -> None:
    stack = env
    for i in range(1000):
        meeting(stack, start=SOON + timedelta(hours=i))
    stack.google.recorder.reset_calls()
    said: list[str] = []
    code = backfill(
        [
            "--from",
            (SOON - timedelta(days=1)).date().isoformat(),
            "--to",
            (SOON + timedelta(days=60)).date().isoformat(),
            "--dry-run",
        ],
        environ=stack.env,
        say=said.append,
    )
    assert code == 0
    summary = json.loads(said[0])
    assert summary["checked"] == 1000
    assert summary["toCreate"] == 1000
    assert "dry run: nothing written" in said[1]
    assert said[2].strip().startswith("create record")
    assert stack.google.recorder.count("POST") == 0
    assert ours(stack) == []


def test_backfill_writes_with_a_progress_bar(env: Stack) -> None:
    stack = env
    for i in range(60):
        meeting(stack, start=SOON + timedelta(days=200, hours=i))
    said: list[str] = []
    bar = io.StringIO()
    code = backfill(
        [
            "--from",
            (SOON + timedelta(days=199)).date().isoformat(),
            "--to",
            (SOON + timedelta(days=210)).date().isoformat(),
        ],
        environ=stack.env,
        say=said.append,
        stream=bar,
    )
    assert code == 0
    assert json.loads(said[-1])["created"] == 60
    assert "60/60 writes" in bar.getvalue()
    assert len(ours(stack)) == 60


@pytest.mark.parametrize(
    "argv",
    [
        ["--from", "2026-13-01", "--to", "2027-01-01"],
        ["--from", "2027-01-01", "--to", "2026-01-01"],
    ],
)
def test_backfill_refuses_bad_windows(env: Stack, argv: list[str]) -> None:
    said: list[str] = []
    assert backfill(argv, environ=env.env, say=said.append) == 2
    assert said[0].startswith("backfill:")


def test_backfill_reports_missing_settings(env: Stack) -> None:
    said: list[str] = []
    assert (
        backfill(["--from", "2026-01-01", "--to", "2026-02-01"], environ={}, say=said.append) == 1
    )
    assert "BPIUM_URL" in said[0]
    services.reset()


def test_a_calendar_the_account_cannot_see_does_not_stop_the_others(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = fns.stack
    stack.bpium.add_catalog(
        stack.meetings,
        "Встречи",
        [
            *[
                {"id": f, "type": t, "config": c}
                for f, t, c in (
                    ("2", "text", {}),
                    ("3", "date", {"time": True}),
                    ("4", "date", {"time": True}),
                    ("5", "text", {}),
                    ("6", "user", {}),
                    ("7", "contact", {}),
                    ("8", "text", {}),
                    ("9", "text", {}),
                    ("13", "text", {}),
                    ("21", "text", {}),
                    ("22", "text", {}),
                )
            ],
        ],
    )
    monkeypatch.setenv("BPIUM_FIELDS", json.dumps({**stack.seed["fields"], "calendar": "13"}))
    services.reset()
    good = meeting(stack)
    meeting(stack, **{"13": "gone@group.calendar.google.com"})
    counts = reconcile(fns)
    assert (counts["created"], counts["failed"]) == (1, 1)
    assert (
        stack.google.event("primary", event_id_for(stack.meetings, good))["status"] == "confirmed"
    )


# -- our events outside the window ------------------------------------------------------


def test_a_far_future_event_whose_record_is_gone_is_cancelled(fns: Functions) -> None:
    """A meeting 200 days ahead, deleted while its webhook was lost: the window never
    reaches it for months, yet the next run finds it by its marks."""
    stack = fns.stack
    far = meeting(stack, start=SOON + timedelta(days=200))
    kept = meeting(stack, start=SOON + timedelta(days=300), **{"2": "Changed but far"})
    for record in (far, kept):
        fns.created(record)
    stack.bpium.update_record(stack.meetings, kept, {"2": "Edited"}, fire=False)
    stack.bpium.delete_record(stack.meetings, far, fire=False)
    counts = reconcile(fns)
    assert (counts["cancelled"], counts["farChecked"], counts["farTotal"]) == (1, 2, 2)
    assert stack.google.event("primary", event_id_for(stack.meetings, far))["status"] == (
        "cancelled"
    )
    # Outside the window only existence is checked: a living far meeting is left as it is.
    assert stack.google.event("primary", event_id_for(stack.meetings, kept))["summary"] == (
        "Changed but far"
    )
    assert counts["updated"] == 0


def test_a_past_event_whose_record_is_gone_is_cancelled_without_mailing_anyone(
    fns: Functions,
) -> None:
    stack = fns.stack
    past = meeting(stack, start=SOON - timedelta(days=40))
    fns.created(past)
    stack.bpium.delete_record(stack.meetings, past, fire=False)
    stack.google.notifications.clear()
    assert reconcile(fns)["cancelled"] == 1
    event_id = event_id_for(stack.meetings, past)
    assert stack.google.event("primary", event_id)["status"] == "cancelled"
    sent = [n for n in stack.google.notifications if n.get("eventId") == event_id]
    assert [n["sendUpdates"] for n in sent] == ["none"]


def test_checks_outside_the_window_are_capped_and_rotate_until_all_are_done(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpium_calendar import reconcile as module

    stack = fns.stack
    monkeypatch.setattr(module, "FAR_CHECK_CALLS", 1)  # a hundred records a run
    start = SOON + timedelta(days=150)
    records = [meeting(stack, start=start + timedelta(hours=i)) for i in range(250)]
    reconciler = services.services().reconciler
    window = (start - timedelta(days=1), start + timedelta(days=30))
    reconciler.apply(reconciler.plan(*window))  # as `make backfill` would make them
    for record in records:
        stack.bpium.delete_record(stack.meetings, record, fire=False)
    hour = datetime(2027, 1, 1, tzinfo=UTC)
    seen: list[int] = []
    for run in range(12):
        # a run an hour later each time; the window (today) stays where it was
        reconciler.clock = lambda run=run: hour + timedelta(hours=run)
        monkeypatch.setattr(reconciler, "default_window", lambda: (SOON, SOON + timedelta(days=1)))
        counts = reconciler.run()
        assert counts["farChecked"] <= 100
        seen.append(counts["cancelled"])
        if not ours(stack):
            break
    assert sum(seen) == 250
    assert len(seen) <= 6  # three shares of about 84: every record within a few runs


def test_reconcile_works_to_its_functions_timeout(
    fns: Functions, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpium_calendar import retry

    seen: list[float] = []

    def run(self: object) -> dict:
        seen.append(retry.remaining())
        return {}

    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "1800")
    monkeypatch.setattr("bpium_calendar.reconcile.Reconciler.run", run)
    services.reset()
    reconcile(fns)
    assert 1760 < seen[0] <= 1770
