"""`make backfill`: reconcile over any window, for the day a team installs the product on a
catalog that already holds meetings. `--dry-run` reports what it would do and writes nothing.
`--adopt` first marks the events Bpium's old BPMN scenario made as their meetings' (see
`adopt`), so that the sync may keep them.

    python -m bpium_calendar.commands.backfill --from 2026-01-01 --to 2027-01-01 \
        [--adopt] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from typing import TextIO
from zoneinfo import ZoneInfo

from ..errors import AppError
from ..reconcile import Plan
from ..services import Services
from ..settings import Settings
from .adopt import adopt

BAR_WIDTH = 30
SHOWN = 20


def progress_bar(stream: TextIO) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        filled = BAR_WIDTH * done // max(total, 1)
        stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} writes")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def _day(value: str, zone: ZoneInfo) -> datetime:
    return datetime.combine(date.fromisoformat(value), time(), zone)


def describe(plan: Plan, limit: int = SHOWN) -> list[str]:
    verbs = {"insert": "create", "patch": "update", "delete": "cancel"}
    lines = []
    for op in plan.ops[:limit]:
        record = plan.records.get((op.calendar_id, op.event_id))
        summary = (op.body or {}).get("summary", "")
        lines.append(f"  {verbs[op.method]:<6} record {record}: event {op.event_id} {summary}")
    if len(plan.ops) > limit:
        lines.append(f"  … and {len(plan.ops) - limit} more")
    return lines


def run(
    argv: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
    stream: TextIO = sys.stderr,
) -> int:
    parser = argparse.ArgumentParser(prog="make backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, help="day after the last, YYYY-MM-DD")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be done")
    parser.add_argument(
        "--adopt", action="store_true", help="only adopt the old BPMN scenario's events"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(environ)
        zone = ZoneInfo(settings.time_zone)
        start, end = _day(args.start, zone), _day(args.end, zone)
    except ValueError as exc:
        say(f"backfill: {exc}")
        return 2
    except AppError as exc:
        say(f"backfill: {exc.message}")
        return 1
    if end <= start:
        say("backfill: --to must be after --from")
        return 2
    try:
        return _execute(Services(settings), args, (start, end), say=say, stream=stream)
    except AppError as exc:
        say(f"backfill failed: {exc.message}")
        return 1


def _execute(
    services: Services,
    args: argparse.Namespace,
    window: tuple[datetime, datetime],
    *,
    say: Callable[[str], None],
    stream: TextIO,
) -> int:
    start, end = window
    if args.adopt:
        return 1 if adopt(services, start, end, dry_run=args.dry_run, say=say) else 0
    reconciler = services.reconciler
    plan = reconciler.plan(start, end)
    say(json.dumps(plan.summary(), ensure_ascii=False))
    if args.dry_run:
        say("dry run: nothing written. It would:")
        for line in describe(plan):
            say(line)
        return 0
    counts = reconciler.apply(plan, progress_bar(stream))
    say(json.dumps(counts, ensure_ascii=False))
    return 1 if counts["failed"] else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
