"""Unit tests of ``core/cron.py``: parsing, and fire times in UTC and across DST changes."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import cron
from core.errors import ValidationError

UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
ALL_DAYS = frozenset(range(1, 32))
ALL_MONTHS = frozenset(range(1, 13))
ALL_WEEKDAYS = frozenset(range(7))


def utc(text: str) -> dt.datetime:
    """``"2026-03-08 07:30"`` as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def fires(expression: str, tz: ZoneInfo, after: str, count: int) -> list[dt.datetime]:
    """The first ``count`` fire instants strictly after ``after`` (UTC), chained."""
    c = cron.parse(expression)
    out: list[dt.datetime] = []
    cursor = utc(after)
    for _ in range(count):
        nxt = c.next_after(cursor, tz)
        assert nxt is not None
        out.append(nxt)
        cursor = nxt
    return out


def fires_until(expression: str, tz: ZoneInfo, after: str, until: str) -> list[dt.datetime]:
    """Every fire instant in ``(after, until]`` (UTC)."""
    c = cron.parse(expression)
    out: list[dt.datetime] = []
    cursor, end = utc(after), utc(until)
    while (nxt := c.next_after(cursor, tz)) is not None and nxt <= end:
        out.append(nxt)
        cursor = nxt
    return out


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "minutes", "hours"),
    [
        ("* * * * *", tuple(range(60)), tuple(range(24))),
        ("0 0 * * *", (0,), (0,)),
        ("5,10,15 1,2 * * *", (5, 10, 15), (1, 2)),
        ("0-4 22-23 * * *", (0, 1, 2, 3, 4), (22, 23)),
        ("*/15 */6 * * *", (0, 15, 30, 45), (0, 6, 12, 18)),
        ("1-10/3 0 * * *", (1, 4, 7, 10), (0,)),
        ("50/5 0 * * *", (50, 55), (0,)),
        ("0,30-32,45 0 * * *", (0, 30, 31, 32, 45), (0,)),
        ("59 23 * * *", (59,), (23,)),
    ],
)
def test_parse_expands_minute_and_hour_lists_ranges_and_steps(
    expression: str, minutes: tuple[int, ...], hours: tuple[int, ...]
) -> None:
    c = cron.parse(expression)
    assert c.minutes == minutes
    assert c.hours == hours
    assert c.expression == expression


@pytest.mark.parametrize(
    ("field", "days", "restricted"),
    [
        ("*", ALL_DAYS, False),
        ("1", frozenset({1}), True),
        ("1,15,31", frozenset({1, 15, 31}), True),
        ("10-12", frozenset({10, 11, 12}), True),
        ("*/10", frozenset({1, 11, 21, 31}), True),
    ],
)
def test_parse_expands_day_of_month(field: str, days: frozenset[int], restricted: bool) -> None:
    c = cron.parse(f"0 0 {field} * *")
    assert c.days == days
    assert c.dom_restricted is restricted
    assert c.dow_restricted is False


@pytest.mark.parametrize(
    ("field", "months"),
    [
        ("*", ALL_MONTHS),
        ("jan", frozenset({1})),
        ("DEC", frozenset({12})),
        ("Feb,aug", frozenset({2, 8})),
        ("mar-may", frozenset({3, 4, 5})),
        ("jan-dec/3", frozenset({1, 4, 7, 10})),
        ("6-8", frozenset({6, 7, 8})),
        ("*/6", frozenset({1, 7})),
    ],
)
def test_parse_accepts_month_numbers_and_names(field: str, months: frozenset[int]) -> None:
    assert cron.parse(f"0 0 * {field} *").months == months


@pytest.mark.parametrize(
    ("field", "weekdays"),
    [
        ("*", ALL_WEEKDAYS),
        ("0", frozenset({0})),
        ("7", frozenset({0})),
        ("sun", frozenset({0})),
        ("SAT", frozenset({6})),
        ("mon-fri", frozenset({1, 2, 3, 4, 5})),
        ("1-5", frozenset({1, 2, 3, 4, 5})),
        ("sat,sun", frozenset({0, 6})),
        ("0,7", frozenset({0})),
        ("1-7", frozenset({0, 1, 2, 3, 4, 5, 6})),
        ("5-7", frozenset({0, 5, 6})),
        ("sun-sat", ALL_WEEKDAYS),
        ("*/2", frozenset({0, 2, 4, 6})),
    ],
)
def test_parse_accepts_weekday_numbers_and_names_with_seven_as_sunday(
    field: str, weekdays: frozenset[int]
) -> None:
    c = cron.parse(f"0 0 * * {field}")
    assert c.weekdays == weekdays
    assert c.dow_restricted is (field != "*")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        # wrong field count or type: the message names 'cron'
        ("", "'cron' must have 5 fields"),
        ("* * * *", "'cron' must have 5 fields"),
        ("* * * * * *", "'cron' must have 5 fields"),
        (5, "'cron' must be a string"),
        (None, "'cron' must be a string"),
        (["*", "*", "*", "*", "*"], "'cron' must be a string"),
        # out of range
        ("60 * * * *", "cron minute: 60 is outside 0-59"),
        ("* 24 * * *", "cron hour: 24 is outside 0-23"),
        ("* * 0 * *", "cron day of month: 0 is outside 1-31"),
        ("* * 32 * *", "cron day of month: 32 is outside 1-31"),
        ("* * * 0 *", "cron month: 0 is outside 1-12"),
        ("* * * 13 *", "cron month: 13 is outside 1-12"),
        ("* * * * 8", "cron day of week: 8 is outside 0-7"),
        ("0-60 * * * *", "cron minute: 60 is outside 0-59"),
        # backwards ranges
        ("30-10 * * * *", "cron minute: range '30-10' runs backwards"),
        ("* 5-1 * * *", "cron hour: range '5-1' runs backwards"),
        ("* * * dec-jan *", "cron month: range 'dec-jan' runs backwards"),
        ("* * * * fri-mon", "cron day of week: range 'fri-mon' runs backwards"),
        # bad steps
        ("*/0 * * * *", "cron minute: bad step '0'"),
        ("*/x * * * *", "cron minute: bad step 'x'"),
        ("* */ * * *", "cron hour: bad step ''"),
        ("* * 1-10/-2 * *", "cron day of month: bad step '-2'"),
        # not numbers or names
        ("a * * * *", "cron minute: 'a' is not a number"),
        ("* * * foo *", "cron month: 'foo' is not a number or a name"),
        ("* * * * funday", "cron day of week: 'funday' is not a number or a name"),
        ("1,,2 * * * *", "cron minute: '' is not a number"),
        ("-1 * * * *", "cron minute: '' is not a number"),
        ("* * jan * *", "cron day of month: 'jan' is not a number"),
    ],
)
def test_parse_rejects_bad_expressions_naming_the_field(expression: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        cron.parse(expression)
    assert message in str(caught.value)


# --- next_after in UTC -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-01-01 00:00", ["2026-01-01 00:15", "2026-01-01 00:30", "2026-01-01 00:45", "2026-01-01 01:00"]),
        ("*/15 * * * *", "2026-01-01 00:07:59", ["2026-01-01 00:15", "2026-01-01 00:30"]),
        ("* * * * *", "2026-01-01 00:00:00.000001", ["2026-01-01 00:01", "2026-01-01 00:02"]),
        ("0 0 * * *", "2025-12-31 23:59:59", ["2026-01-01 00:00", "2026-01-02 00:00"]),
        ("30 9 * * mon-fri", "2026-01-02 10:00", ["2026-01-05 09:30", "2026-01-06 09:30"]),
        ("0 12 1 * *", "2026-01-15 00:00", ["2026-02-01 12:00", "2026-03-01 12:00"]),
        ("0 0 31 * *", "2026-01-31 00:00", ["2026-03-31 00:00", "2026-05-31 00:00", "2026-07-31 00:00"]),
        ("0 0 1 jan *", "2026-01-01 00:00", ["2027-01-01 00:00"]),
        ("0 0 * * 7", "2026-01-01 00:00", ["2026-01-04 00:00", "2026-01-11 00:00"]),
        ("0 0 * * 0", "2026-01-01 00:00", ["2026-01-04 00:00", "2026-01-11 00:00"]),
    ],
)
def test_next_after_in_utc_is_strictly_after_and_in_order(
    expression: str, after: str, expected: list[str]
) -> None:
    assert fires(expression, UTC_ZONE, after, len(expected)) == [utc(e) for e in expected]


def test_next_after_accepts_an_aware_time_in_any_offset_and_returns_utc() -> None:
    after = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))  # 00:00Z
    nxt = cron.parse("30 0 * * *").next_after(after, UTC_ZONE)
    assert nxt == utc("2026-01-01 00:30")
    assert nxt is not None and nxt.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # both day fields restricted: a day matches if EITHER does (13th, or any Friday)
        ("0 0 13 * fri", "2026-01-01 00:00",
         ["2026-01-02", "2026-01-09", "2026-01-13", "2026-01-16", "2026-01-23", "2026-01-30",
          "2026-02-06", "2026-02-13", "2026-02-20"]),
        # only day-of-month restricted: the 13th only
        ("0 0 13 * *", "2026-01-01 00:00", ["2026-01-13", "2026-02-13", "2026-03-13"]),
        # only day-of-week restricted: Fridays only
        ("0 0 * * fri", "2026-01-01 00:00", ["2026-01-02", "2026-01-09", "2026-01-16"]),
        # OR still honours the month: June 1st or a Monday in June
        ("0 0 1 6 mon", "2026-01-01 00:00",
         ["2026-06-01", "2026-06-08", "2026-06-15", "2026-06-22", "2026-06-29", "2027-06-01"]),
    ],
)
def test_day_of_month_and_day_of_week_combine_with_or_only_when_both_restricted(
    expression: str, after: str, expected: list[str]
) -> None:
    assert fires(expression, UTC_ZONE, after, len(expected)) == [utc(e) for e in expected]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 12 29 2 *", "2026-01-01 00:00", ["2028-02-29 12:00", "2032-02-29 12:00", "2036-02-29 12:00"]),
        ("0 12 29 2 *", "2028-02-29 12:00", ["2032-02-29 12:00"]),
        ("0 0 29 feb *", "2024-02-29 00:00", ["2028-02-29 00:00"]),
    ],
)
def test_feb_29_fires_only_in_leap_years(expression: str, after: str, expected: list[str]) -> None:
    assert fires(expression, UTC_ZONE, after, len(expected)) == [utc(e) for e in expected]


@pytest.mark.parametrize(
    "expression",
    ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 feb *"],
)
@pytest.mark.parametrize("tz", [UTC_ZONE, NEW_YORK])
def test_impossible_expression_never_fires(expression: str, tz: ZoneInfo) -> None:
    assert cron.parse(expression).next_after(utc("2026-01-01 00:00"), tz) is None


# --- next_after across DST changes -------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "tz", "after", "until", "expected"),
    [
        # New York spring forward, 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z):
        # 02:30 does not exist and fires once at 03:30 EDT = 07:30Z
        ("30 2 * * *", NEW_YORK, "2026-03-06 00:00", "2026-03-10 23:59",
         ["2026-03-06 07:30", "2026-03-07 07:30", "2026-03-08 07:30", "2026-03-09 06:30",
          "2026-03-10 06:30"]),
        # a time before the gap keeps its standard offset that day, after it the summer one
        ("30 1 * * *", NEW_YORK, "2026-03-07 00:00", "2026-03-09 23:59",
         ["2026-03-07 06:30", "2026-03-08 06:30", "2026-03-09 05:30"]),
        ("30 3 * * *", NEW_YORK, "2026-03-07 00:00", "2026-03-09 23:59",
         ["2026-03-07 08:30", "2026-03-08 07:30", "2026-03-09 07:30"]),
        # hourly: 02:30 (gap) and 03:30 EDT are the same instant and fire once
        ("30 * * * *", NEW_YORK, "2026-03-08 04:00", "2026-03-08 09:00",
         ["2026-03-08 04:30", "2026-03-08 05:30", "2026-03-08 06:30", "2026-03-08 07:30",
          "2026-03-08 08:30"]),
        # 02:00/03:00 and 02:30/03:30 collapse on the spring-forward day only
        ("0,30 2-3 * * *", NEW_YORK, "2026-03-07 00:00", "2026-03-09 23:59",
         ["2026-03-07 07:00", "2026-03-07 07:30", "2026-03-07 08:00", "2026-03-07 08:30",
          "2026-03-08 07:00", "2026-03-08 07:30",
          "2026-03-09 06:00", "2026-03-09 06:30", "2026-03-09 07:00", "2026-03-09 07:30"]),
        # New York fall back, 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z):
        # 01:30 happens twice and fires once, at the first occurrence (EDT, 05:30Z)
        ("30 1 * * *", NEW_YORK, "2026-10-30 00:00", "2026-11-03 23:59",
         ["2026-10-30 05:30", "2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30",
          "2026-11-03 06:30"]),
        ("30 2 * * *", NEW_YORK, "2026-10-31 00:00", "2026-11-02 23:59",
         ["2026-10-31 06:30", "2026-11-01 07:30", "2026-11-02 07:30"]),
        # hourly across fall back: the repeated 01:30 EST (06:30Z) does not fire
        ("30 * * * *", NEW_YORK, "2026-11-01 03:00", "2026-11-01 08:59",
         ["2026-11-01 03:30", "2026-11-01 04:30", "2026-11-01 05:30", "2026-11-01 07:30",
          "2026-11-01 08:30"]),
        # Berlin spring forward, 2026-03-29 01:00Z (02:00 CET -> 03:00 CEST)
        ("30 2 * * *", BERLIN, "2026-03-27 00:00", "2026-03-31 23:59",
         ["2026-03-27 01:30", "2026-03-28 01:30", "2026-03-29 01:30", "2026-03-30 00:30",
          "2026-03-31 00:30"]),
        ("30 * * * *", BERLIN, "2026-03-28 23:00", "2026-03-29 03:00",
         ["2026-03-28 23:30", "2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29 02:30"]),
        # Berlin fall back, 2026-10-25 01:00Z (03:00 CEST -> 02:00 CET): 02:30 repeats
        ("30 2 * * *", BERLIN, "2026-10-23 00:00", "2026-10-27 23:59",
         ["2026-10-23 00:30", "2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30",
          "2026-10-27 01:30"]),
        ("30 * * * *", BERLIN, "2026-10-24 22:00", "2026-10-25 03:59",
         ["2026-10-24 22:30", "2026-10-24 23:30", "2026-10-25 00:30", "2026-10-25 02:30",
          "2026-10-25 03:30"]),
        # UTC has no changes: the same wall time every day
        ("30 2 * * *", UTC_ZONE, "2026-03-07 00:00", "2026-03-09 23:59",
         ["2026-03-07 02:30", "2026-03-08 02:30", "2026-03-09 02:30"]),
    ],
)
def test_fire_instants_around_dst_changes(
    expression: str, tz: ZoneInfo, after: str, until: str, expected: list[str]
) -> None:
    assert fires_until(expression, tz, after, until) == [utc(e) for e in expected]


@pytest.mark.parametrize(
    ("expression", "tz", "day_start", "day_end", "expected", "local_wall", "offset_h"),
    [
        # spring forward: the missing 02:30 fires once, at 03:30 summer time
        ("30 2 * * *", NEW_YORK, "2026-03-08 05:00", "2026-03-09 03:59", "2026-03-08 07:30", "03:30", -4),
        ("30 2 * * *", BERLIN, "2026-03-28 23:00", "2026-03-29 21:59", "2026-03-29 01:30", "03:30", 2),
        # fall back: the repeated time fires once, at its first (summer time) occurrence
        ("30 1 * * *", NEW_YORK, "2026-11-01 04:00", "2026-11-02 04:59", "2026-11-01 05:30", "01:30", -4),
        ("30 2 * * *", BERLIN, "2026-10-24 22:00", "2026-10-25 22:59", "2026-10-25 00:30", "02:30", 2),
    ],
)
def test_daily_job_fires_exactly_once_on_a_dst_change_day(
    expression: str, tz: ZoneInfo, day_start: str, day_end: str, expected: str, local_wall: str,
    offset_h: int,
) -> None:
    # the whole local day, as a UTC window
    assert fires_until(expression, tz, day_start, day_end) == [utc(expected)]
    local = utc(expected).astimezone(tz)
    assert local.strftime("%H:%M") == local_wall
    assert local.utcoffset() == dt.timedelta(hours=offset_h)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # just after the transition (03:10 EDT): the shifted 02:30 (03:30 EDT) is still ahead
        ("2026-03-08 07:10", "2026-03-08 07:30"),
        # at the fire instant itself: strictly after, so the next day
        ("2026-03-08 07:30", "2026-03-09 06:30"),
        # during the second 01:xx hour of fall back: no second 01:30 fire
        ("2026-11-01 06:10", "2026-11-02 06:30"),
        ("2026-11-01 05:30", "2026-11-02 06:30"),
    ],
)
def test_next_after_from_inside_a_dst_change(after: str, expected: str) -> None:
    expression = "30 2 * * *" if after.startswith("2026-03") else "30 1 * * *"
    assert cron.parse(expression).next_after(utc(after), NEW_YORK) == utc(expected)
