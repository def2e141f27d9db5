"""Five-field cron expressions evaluated in an IANA timezone, DST-correct.

``minute hour day-of-month month day-of-week`` with ``*``, lists, ranges and steps, month and
weekday names, ``0`` or ``7`` for Sunday, and the usual rule that when both day fields are
restricted a day matches if either does. Fire times are computed on the wall clock of the
timezone and converted to UTC with ``fold=0``:

* a wall time that does not exist (spring forward) fires once, at the same offset past the
  transition (02:30 becomes 03:30);
* a wall time that occurs twice (fall back) fires once, at its first occurrence;
* two wall times that land on the same instant fire once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from core.errors import ValidationError

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
#: how far ahead to look for the next fire time (covers Feb 29 on a given weekday)
HORIZON_DAYS = 366 * 28


@dataclasses.dataclass(frozen=True)
class Cron:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_restricted: bool
    dow_restricted: bool

    def day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, after: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
        """The first fire time strictly after ``after`` (aware), in UTC; None if none exists."""
        after_utc = after.astimezone(dt.UTC)
        wall = after_utc.astimezone(tz).replace(tzinfo=None, fold=0)
        # start one minute early: a later-shifted gap time may still be ahead of ``after``
        day = (wall - dt.timedelta(hours=3)).date()
        for _ in range(HORIZON_DAYS):
            if self.day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz, fold=0)
                        instant = local.astimezone(dt.UTC)
                        if instant > after_utc:
                            return instant
            day += dt.timedelta(days=1)
        return None


def _field(text: str, low: int, high: int, names: dict[str, int] | None, what: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValidationError(f"cron {what}: bad step {step_text!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, low, high, names, what), _value(b, low, high, names, what)
            if start > end:
                raise ValidationError(f"cron {what}: range {part!r} runs backwards")
        else:
            start = _value(part, low, high, names, what)
            end = high if step > 1 else start
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, low: int, high: int, names: dict[str, int] | None, what: str) -> int:
    key = text.lower()
    if names and key in names:
        return names[key]
    if not text.isdigit():
        raise ValidationError(f"cron {what}: {text!r} is not a number{' or a name' if names else ''}")
    value = int(text)
    if not low <= value <= high:
        raise ValidationError(f"cron {what}: {value} is outside {low}-{high}")
    return value


def parse(expression: str) -> Cron:
    if not isinstance(expression, str):
        raise ValidationError("'cron' must be a string of 5 fields")
    fields = expression.split()
    if len(fields) != 5:
        raise ValidationError("'cron' must have 5 fields: minute hour day-of-month month day-of-week")
    minute, hour, dom, month, dow = fields
    weekdays = _field(dow, 0, 7, _DAYS, "day of week")
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    return Cron(
        expression=expression,
        minutes=tuple(sorted(_field(minute, 0, 59, None, "minute"))),
        hours=tuple(sorted(_field(hour, 0, 23, None, "hour"))),
        days=frozenset(_field(dom, 1, 31, None, "day of month")),
        months=frozenset(_field(month, 1, 12, _MONTHS, "month")),
        weekdays=frozenset(weekdays),
        dom_restricted=dom != "*",
        dow_restricted=dow != "*",
    )
