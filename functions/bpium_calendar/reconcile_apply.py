"""Use case `reconcile`, its second half: send a plan's writes in Calendar batches, count
what they did, and heal the records' answers and status.

An insert that finds its event (409) is looked up first: a cancelled one is a person's
decision and is kept so; the others are patched. A patch that finds the event cancelled,
or that Google refuses (403: perhaps deleted by a person), keeps it cancelled too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import log
from .errors import AppError, Conflict, Forbidden, Gone, NotFound
from .gcalendar import BatchOp, BatchOutcome
from .settings import Settings

if TYPE_CHECKING:
    from .from_google import GoogleToBpium
    from .reconcile import CalendarBulk, Plan, Progress

# Records whose answers or status a run may write (Bpium calls, within the run's budget).
HEAL_LIMIT = 300


class PlanApplier:
    def __init__(
        self, settings: Settings, calendar: CalendarBulk, back: GoogleToBpium | None
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.back = back

    def apply(self, plan: Plan, progress: Progress | None = None) -> dict[str, Any]:
        counts: Counter[str] = Counter()
        total = len(plan.ops)
        done = 0
        retry: list[BatchOp] = []
        single: list[BatchOp] = []
        step = 500  # report progress every few batches
        loud = [op for op in plan.ops if (op.calendar_id, op.event_id) not in plan.quiet]
        quiet = [op for op in plan.ops if (op.calendar_id, op.event_id) in plan.quiet]
        for ops, send_updates in ((loud, self.settings.send_updates), (quiet, "none")):
            for start in range(0, len(ops), step):
                chunk = ops[start : start + step]
                for outcome in self.calendar.batch(chunk, send_updates=send_updates):
                    self._count(outcome, plan, counts, retry, single)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if retry:  # inserts that found their event: a person cancelled it, or it is unlisted
            retry = self._look_up(retry, plan, single)
        if retry:
            for outcome in self.calendar.batch(retry, send_updates=self.settings.send_updates):
                self._count(outcome, plan, counts, [], single)
        for op in single:
            self._kept_cancelled(op, plan)
        return {
            "checked": plan.checked,
            "created": counts["insert"],
            "updated": counts["patch"],
            "cancelled": counts["delete"],
            "unchanged": plan.unchanged,
            "invalid": plan.invalid,
            "failed": counts["failed"],
            "farChecked": plan.far_checked,
            "farTotal": plan.far_total,
            "keptCancelled": plan.kept_cancelled,
            "healed": self._heal(plan),
        }

    def _heal(self, plan: Plan) -> int:
        """Writes each record's answers and status where they lag its event's (at most
        HEAL_LIMIT records a run; the rest in the next)."""
        if self.back is None:
            return 0
        heals: dict[str, tuple[dict[str, Any], Mapping[str, Any]]] = {}
        for record_id, event in sorted(plan.events.items()):
            writes = self.back.heal(record_id, plan.values.get(record_id, {}), event)
            if writes:
                heals[record_id] = (writes, event)
        if len(heals) > HEAL_LIMIT:
            log.warning("reconcile_heals_deferred", due=len(heals), limit=HEAL_LIMIT)
            heals = dict(list(heals.items())[:HEAL_LIMIT])
        return self.back.write_heals(heals)

    def _count(
        self,
        outcome: BatchOutcome,
        plan: Plan,
        counts: Counter[str],
        retry: list[BatchOp],
        single: list[BatchOp],
    ) -> None:
        """Counts one outcome, or queues what comes next for it: a look-up after an insert
        found the event (`retry`), or keeping a cancelled event so (`single`)."""
        op = outcome.op
        if outcome.error is None:
            if op.method == "patch" and (outcome.result or {}).get("status") == "cancelled":
                # Our patches carry no status: cancelled meanwhile, by a person; it stays so.
                single.append(op)
                return
            counts[op.method] += 1
            return
        if op.method == "insert" and isinstance(outcome.error, Conflict):
            retry.append(op)  # looked up, then patched or kept cancelled
            return
        if op.method == "patch" and isinstance(outcome.error, Forbidden):
            single.append(op)  # perhaps an event a person deleted, which Google will not revive
            return
        if op.method == "delete" and isinstance(outcome.error, NotFound | Gone):
            counts["delete"] += 1  # already gone: the goal is reached
            return
        self._failed(op, outcome.error, plan, counts)

    def _failed(self, op: BatchOp, error: AppError, plan: Plan, counts: Counter[str]) -> None:
        counts["failed"] += 1
        log.error(
            "reconcile_item_failed",
            catalog_id=self.settings.meetings_catalog,
            record_id=plan.records.get((op.calendar_id, op.event_id)),
            event_id=op.event_id,
            calendar_id=op.calendar_id,
            operation=op.method,
            error_code=error.code,
            error=error.message,
        )

    def _look_up(
        self, conflicts: Sequence[BatchOp], plan: Plan, kept: list[BatchOp]
    ) -> list[BatchOp]:
        """The events our inserts found, read in batches: a cancelled one is kept so (a
        person's decision), the others are answered as the patches to send."""
        gets = [BatchOp("get", op.calendar_id, op.event_id) for op in conflicts]
        patches = []
        for op, outcome in zip(
            conflicts, self.calendar.batch(gets, send_updates="none"), strict=True
        ):
            if outcome.result is not None and outcome.result.get("status") == "cancelled":
                kept.append(op)
            else:
                patches.append(BatchOp("patch", op.calendar_id, op.event_id, op.body))
        return patches

    def _kept_cancelled(self, op: BatchOp, plan: Plan) -> None:
        """A cancelled event whose meeting lives on: a person cancelled it in Google, and
        only the record's next change in Bpium brings it back (the webhooks' path)."""
        plan.kept_cancelled += 1
        record_id = plan.records.get((op.calendar_id, op.event_id))
        if record_id:
            plan.events[record_id] = {"id": op.event_id, "status": "cancelled"}
        log.info(
            "event_kept_cancelled",
            event_id=op.event_id,
            calendar_id=op.calendar_id,
            catalog_id=self.settings.meetings_catalog,
            record_id=record_id,
        )
