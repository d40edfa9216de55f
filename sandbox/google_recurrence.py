"""Recurring events as Google Calendar stores them: RFC 5545 `RRULE`, `RDATE`, `EXDATE`.

A recurring event is one stored event (the master) whose `recurrence` lines say when its
instances start; `parse_recurrence` checks the lines, `expand` lists the instance starts.

Rule parts understood: FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), INTERVAL, COUNT, UNTIL, WKST,
BYDAY (a filter for DAILY, the week days for WEEKLY, with or without ordinals such as `2MO`
or `-1FR` for MONTHLY) and BYMONTHDAY (MONTHLY). Google accepts more (BYMONTH, BYSETPOS,
...); the stand-in answers those with a 400 naming the part rather than expanding them
wrongly. `EXRULE` (deprecated by RFC 5545) is refused the same way.

Like python-dateutil, only starts the rule matches are instances: a DTSTART the rule does not
match is not added as an extra first instance. COUNT counts instances before EXDATE removes
any, as RFC 5545 says.
"""

from __future__ import annotations

import calendar as _calendar
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sandbox.google_wire import ApiError, bad, find_zone

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
SUPPORTED_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "WKST"})
KNOWN_PARTS = SUPPORTED_PARTS | {
    "BYSECOND", "BYMINUTE", "BYHOUR", "BYWEEKNO", "BYYEARDAY", "BYMONTH", "BYSETPOS",
}  # fmt: skip
MAX_PERIODS = 200_000  # periods walked for one rule before giving up (rules that never match)

_BYDAY_RE = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")
_STAMP_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$")


def invalid_rule(detail: str = "") -> ApiError:
    return bad("Invalid recurrence rule." + (f" {detail}" if detail else ""))


@dataclass(frozen=True)
class Rule:
    """One RRULE line."""

    freq: str
    interval: int
    count: int | None
    until_ts: float | None  # last allowed start, epoch seconds (inclusive)
    byday: tuple[tuple[int | None, int], ...]  # (ordinal or None, weekday 0=MO)
    bymonthday: tuple[int, ...]
    wkst: int

    @property
    def bounded(self) -> bool:
        return self.count is not None or self.until_ts is not None


@dataclass(frozen=True)
class Recurrence:
    """The parsed `recurrence` of a master event, in the zone of its start."""

    rules: tuple[Rule, ...]
    rdates: tuple[datetime, ...]  # local (naive) starts added by RDATE
    ex_instants: frozenset[float]  # starts removed by EXDATE date-times
    ex_dates: frozenset[date]  # days removed by EXDATE dates

    @property
    def bounded(self) -> bool:
        """False when some rule goes on forever (no COUNT, no UNTIL)."""
        return all(rule.bounded for rule in self.rules)


def local_ts(moment: datetime, zone: tzinfo) -> float:
    """Epoch seconds of a naive local time in `zone`."""
    return moment.replace(tzinfo=zone).timestamp()


# ---------------------------------------------------------------------------- parsing


def parse_recurrence(lines: list[str], zone: tzinfo, all_day: bool) -> Recurrence:
    """Checks the `recurrence` lines of an event; raises a 400 `ApiError`."""
    rules: list[Rule] = []
    rdates: list[datetime] = []
    ex_instants: set[float] = set()
    ex_dates: set[date] = set()
    for line in lines:
        name_part, sep, value = line.partition(":")
        if not sep:
            raise invalid_rule()
        name, *params = name_part.strip().split(";")
        name = name.upper()
        if name == "RRULE":
            if params:
                raise invalid_rule()
            rules.append(_parse_rule(value, zone, all_day))
        elif name in ("RDATE", "EXDATE"):
            stamps = _parse_dates(params, value, zone)
            if name == "RDATE":
                rdates += [_as_start(stamp, zone, all_day) for stamp in stamps]
            else:
                for stamp in stamps:
                    if isinstance(stamp, datetime) and not all_day:
                        ex_instants.add(stamp.timestamp())
                    else:
                        ex_dates.add(stamp.date() if isinstance(stamp, datetime) else stamp)
        elif name == "EXRULE":
            raise bad("Recurrence line EXRULE is not supported by this stand-in.")
        else:
            raise invalid_rule()
    return Recurrence(
        tuple(rules), tuple(sorted(rdates)), frozenset(ex_instants), frozenset(ex_dates)
    )


def _parse_rule(text: str, zone: tzinfo, all_day: bool) -> Rule:
    parts: dict[str, str] = {}
    for item in text.strip().split(";"):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep or not value or key in parts:
            raise invalid_rule()
        if key not in KNOWN_PARTS:
            raise invalid_rule()
        if key not in SUPPORTED_PARTS:
            raise bad(f"Recurrence rule part {key} is not supported by this stand-in.")
        parts[key] = value.strip().upper()
    freq = parts.get("FREQ")
    if freq not in (*FREQUENCIES, "SECONDLY", "MINUTELY", "HOURLY"):
        raise invalid_rule()
    if freq not in FREQUENCIES:
        raise bad(f"Recurrence frequency {freq} is not supported by this stand-in.")
    interval = _positive(parts.get("INTERVAL", "1"))
    count = _positive(parts["COUNT"]) if "COUNT" in parts else None
    if count is not None and "UNTIL" in parts:
        raise invalid_rule()
    until_ts = _until(parts["UNTIL"], zone, all_day) if "UNTIL" in parts else None
    byday: list[tuple[int | None, int]] = []
    for item in parts["BYDAY"].split(",") if "BYDAY" in parts else []:
        match = _BYDAY_RE.match(item)
        if not match:
            raise invalid_rule()
        ordinal = int(match.group(1)) if match.group(1) else None
        if ordinal is not None and (ordinal == 0 or abs(ordinal) > 5 or freq != "MONTHLY"):
            raise invalid_rule()
        byday.append((ordinal, WEEKDAYS[match.group(2)]))
    if byday and freq == "YEARLY":
        raise bad("Recurrence rule part BYDAY with FREQ=YEARLY is not supported by this stand-in.")
    bymonthday: list[int] = []
    for item in parts["BYMONTHDAY"].split(",") if "BYMONTHDAY" in parts else []:
        if not re.fullmatch(r"[+-]?\d{1,2}", item) or not 1 <= abs(int(item)) <= 31:
            raise invalid_rule()
        bymonthday.append(int(item))
    if bymonthday and (freq != "MONTHLY" or byday):
        raise bad("Recurrence rule part BYMONTHDAY is supported with FREQ=MONTHLY only.")
    wkst = WEEKDAYS.get(parts.get("WKST", "MO"))
    if wkst is None:
        raise invalid_rule()
    return Rule(freq, interval, count, until_ts, tuple(byday), tuple(bymonthday), wkst)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise invalid_rule()
    return int(text)


def _stamp(text: str, zone: tzinfo) -> date | datetime:
    """`YYYYMMDD` (a date) or `YYYYMMDDTHHMMSS[Z]` (aware: UTC, or local in `zone`)."""
    match = _STAMP_RE.match(text.strip())
    if not match:
        raise invalid_rule()
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        if hour is None:
            return date(int(year), int(month), int(day))
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            tzinfo=UTC if utc else zone,
        )  # fmt: skip
    except ValueError:
        raise invalid_rule() from None


def _until(text: str, zone: tzinfo, all_day: bool) -> float:
    stamp = _stamp(text, zone)
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    midnight = datetime.combine(stamp, time(0))
    if all_day:
        return local_ts(midnight, zone)
    # A date UNTIL keeps that whole (local) day for timed events.
    return local_ts(midnight + timedelta(days=1), zone) - 0.001


def _parse_dates(params: list[str], value: str, zone: tzinfo) -> list[date | datetime]:
    line_zone = zone
    for param in params:
        key, _, setting = param.partition("=")
        key, setting = key.upper(), setting.strip()
        if key == "TZID":
            found = find_zone(setting)
            if found is None:
                raise invalid_rule()
            line_zone = found
        elif key != "VALUE" or setting.upper() not in ("DATE", "DATE-TIME"):
            raise invalid_rule()
    return [_stamp(item, line_zone) for item in value.split(",") if item.strip()]


def _as_start(stamp: date | datetime, zone: tzinfo, all_day: bool) -> datetime:
    """An RDATE as a naive local start in the event's zone."""
    if isinstance(stamp, datetime):
        if all_day:
            return datetime.combine(stamp.date(), time(0))
        return stamp.astimezone(zone).replace(tzinfo=None)
    return datetime.combine(stamp, time(0))


# ---------------------------------------------------------------------------- expansion


def expand(
    recurrence: Recurrence,
    dtstart: datetime,
    zone: tzinfo,
    horizon: float,
    limit: int,
) -> Iterator[tuple[datetime, float]]:
    """Instance starts `(local naive start, epoch seconds)` in order, those before `horizon`.

    At most `limit` instances; the caller bounds `horizon` for rules that never end.
    """
    streams: list[Iterator[tuple[float, datetime]]] = [
        _rule_starts(rule, dtstart, zone, horizon) for rule in recurrence.rules
    ]
    extra = [(local_ts(moment, zone), moment) for moment in recurrence.rdates]
    if not recurrence.rules:
        extra.append((local_ts(dtstart, zone), dtstart))
    streams.append(iter(sorted(item for item in extra if item[0] < horizon)))
    last: float | None = None
    produced = 0
    for ts, moment in heapq.merge(*streams):
        if ts == last:
            continue
        last = ts
        if ts in recurrence.ex_instants or moment.date() in recurrence.ex_dates:
            continue
        yield moment, ts
        produced += 1
        if produced >= limit:
            return


def _rule_starts(
    rule: Rule, dtstart: datetime, zone: tzinfo, horizon: float
) -> Iterator[tuple[float, datetime]]:
    emitted = 0
    for period_start, days in _periods(rule, dtstart.date()):
        first_ts = local_ts(datetime.combine(period_start, time(0)), zone)
        if first_ts >= horizon or (rule.until_ts is not None and first_ts > rule.until_ts):
            return
        for day in days:
            moment = datetime.combine(day, dtstart.time())
            if moment < dtstart:
                continue
            ts = local_ts(moment, zone)
            if ts >= horizon or (rule.until_ts is not None and ts > rule.until_ts):
                return
            yield ts, moment
            emitted += 1
            if rule.count is not None and emitted >= rule.count:
                return


def _periods(rule: Rule, first: date) -> Iterator[tuple[date, list[date]]]:
    """(first day of the period, the days the rule picks in it), period after period."""
    weekdays = sorted({weekday for _, weekday in rule.byday})
    for index in range(MAX_PERIODS):
        step = index * rule.interval
        try:
            if rule.freq == "DAILY":
                day = first + timedelta(days=step)
                yield day, [day] if not weekdays or day.weekday() in weekdays else []
            elif rule.freq == "WEEKLY":
                week = first - timedelta(days=(first.weekday() - rule.wkst) % 7)
                week += timedelta(weeks=step)
                picks = weekdays or [first.weekday()]
                yield week, sorted(week + timedelta(days=(wd - rule.wkst) % 7) for wd in picks)
            elif rule.freq == "MONTHLY":
                months = first.year * 12 + first.month - 1 + step
                year, month = divmod(months, 12)
                yield date(year, month + 1, 1), _month_days(rule, year, month + 1, first.day)
            else:
                year = first.year + step
                yield date(year, 1, 1), _valid_days(year, first.month, [first.day])
        except (ValueError, OverflowError):
            return  # past year 9999


def _month_days(rule: Rule, year: int, month: int, default_day: int) -> list[date]:
    length = _calendar.monthrange(year, month)[1]
    if rule.bymonthday:
        days = [d if d > 0 else length + d + 1 for d in rule.bymonthday]
        return _valid_days(year, month, days)
    if not rule.byday:
        return _valid_days(year, month, [default_day])
    picked: set[int] = set()
    for ordinal, weekday in rule.byday:
        first_match = 1 + (weekday - date(year, month, 1).weekday()) % 7
        matches = list(range(first_match, length + 1, 7))
        if ordinal is None:
            picked.update(matches)
        elif ordinal > 0 and ordinal <= len(matches):
            picked.add(matches[ordinal - 1])
        elif ordinal < 0 and -ordinal <= len(matches):
            picked.add(matches[ordinal])
    return _valid_days(year, month, sorted(picked))


def _valid_days(year: int, month: int, days: list[int]) -> list[date]:
    length = _calendar.monthrange(year, month)[1]
    return [date(year, month, d) for d in sorted(set(days)) if 1 <= d <= length]
