"""Unit tests of ``core/schedule.py``: parsing request fields, fire times, downtime and JSON."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core import schedule as sched
from core.errors import ValidationError
from core.schedule import Schedule

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def utc(text: str) -> dt.datetime:
    """``"2026-01-01 12:00"`` as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def parse(**fields: Any) -> Schedule:
    return sched.parse(fields, NOW)


# --- kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({}, "now"),
        ({"task_type": "one_time"}, "now"),
        ({"timezone": "Europe/Berlin"}, "now"),
        ({"delay": 10}, "once"),
        ({"run_at": "2026-02-01T00:00:00Z"}, "once"),
        ({"task_type": "one_time", "run_datetime": "2026-02-01T00:00:00Z"}, "once"),
        ({"interval": 60}, "interval"),
        ({"task_type": "periodic", "frequency": 60}, "interval"),
        ({"cron": "*/5 * * * *"}, "cron"),
        ({"task_type": "periodic", "cron": "0 9 * * mon-fri"}, "cron"),
    ],
)
def test_parse_picks_the_kind(fields: dict[str, Any], kind: str) -> None:
    s = sched.parse(fields, NOW)
    assert s.kind == kind
    assert s.periodic is (kind in ("interval", "cron"))


def test_parse_ignores_unknown_fields_and_none_values() -> None:
    assert sched.parse({"payload": {"x": 1}, "run_at": None, "cron": None}, NOW) == Schedule("now")


def test_parse_now_keeps_timezone_and_misfire() -> None:
    s = parse(timezone="Asia/Tokyo", misfire="skip")
    assert s == Schedule("now", timezone="Asia/Tokyo", misfire="skip")
    assert s.first_fire(NOW) == NOW


# --- delay -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("45", 45),
        (" 10 m ", 600),
        ("1.5h", 5400),
        (0, 0),
        (90, 90),
        (2.5, 2.5),
        ("0s", 0),
    ],
)
def test_delay_strings_and_numbers_set_run_at_from_now(delay: Any, seconds: float) -> None:
    assert sched.parse_delay(delay) == seconds
    s = parse(delay=delay)
    assert s.kind == "once"
    assert s.run_at == NOW + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "delay",
    ["5x", "", "m", "-5s", "5 minutes", -1, True, False, None, [30], float("inf"), float("nan"),
     11 * 366 * 86400, "4000d"],
)
def test_bad_delay_is_rejected_naming_delay(delay: Any) -> None:
    with pytest.raises(ValidationError, match="'delay'"):
        sched.parse_delay(delay)
    if delay is not None:  # None means "not given" to parse()
        with pytest.raises(ValidationError, match="'delay'"):
            parse(delay=delay)


# --- run_at ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_at", "timezone", "expected"),
    [
        ("2026-02-01T10:00:00+02:00", "UTC", "2026-02-01 08:00"),
        ("2026-02-01T10:00:00-05:00", "Europe/Berlin", "2026-02-01 15:00"),
        ("2026-02-01T10:00:00Z", "America/New_York", "2026-02-01 10:00"),
        ("2026-02-01T10:00:00z", "UTC", "2026-02-01 10:00"),
        ("2026-02-01T10:00:00.250Z", "UTC", "2026-02-01 10:00:00.250"),
        # naive: read in the task's timezone (default UTC), with that date's offset
        ("2026-02-01T10:00:00", None, "2026-02-01 10:00"),
        ("2026-02-01T10:00:00", "America/New_York", "2026-02-01 15:00"),
        ("2026-07-01T10:00:00", "America/New_York", "2026-07-01 14:00"),
        ("2026-02-01T10:00:00", "Europe/Berlin", "2026-02-01 09:00"),
        ("2026-07-01T10:00:00", "Europe/Berlin", "2026-07-01 08:00"),
        ("2026-02-01 10:00", "Asia/Kolkata", "2026-02-01 04:30"),
        # repeated wall time: the first occurrence
        ("2026-11-01T01:30:00", "America/New_York", "2026-11-01 05:30"),
    ],
)
def test_run_at_with_offset_z_or_naive(run_at: str, timezone: str | None, expected: str) -> None:
    fields: dict[str, Any] = {"run_at": run_at}
    if timezone is not None:
        fields["timezone"] = timezone
    s = sched.parse(fields, NOW)
    assert s.kind == "once"
    assert s.run_at == utc(expected)
    assert s.run_at is not None and s.run_at.utcoffset() == dt.timedelta(0)
    assert s.timezone == (timezone or "UTC")
    assert s.first_fire(NOW) == utc(expected)


@pytest.mark.parametrize("run_at", ["tomorrow", "2026-13-01T00:00:00", "", 1767225600, ["2026-02-01"]])
def test_bad_run_at_is_rejected_naming_run_at(run_at: Any) -> None:
    with pytest.raises(ValidationError, match="'run_at'"):
        parse(run_at=run_at)


# --- periodic ----------------------------------------------------------------------------


def test_interval_without_start_is_anchored_at_now() -> None:
    s = parse(interval=60)
    assert s == Schedule("interval", interval_s=60.0, start_at=NOW)
    assert s.first_fire(NOW) == NOW
    # a run that happened late does not move later fires
    assert s.next_fire(NOW + dt.timedelta(seconds=7.5), 1) == NOW + dt.timedelta(seconds=60)


def test_cron_keeps_expression_timezone_and_bounds() -> None:
    s = parse(cron="0 9 * * mon-fri", timezone="Europe/Berlin", start_at="2026-01-05T00:00:00",
              end_at="2026-01-31T00:00:00", max_runs=10, misfire="skip")
    assert s == Schedule("cron", cron="0 9 * * mon-fri", timezone="Europe/Berlin",
                         start_at=utc("2026-01-04 23:00"), end_at=utc("2026-01-30 23:00"),
                         max_runs=10, misfire="skip")
    assert s.first_fire(NOW) == utc("2026-01-05 08:00")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"task_type": "periodic", "frequency": 60, "start_datetime": "2026-01-02T00:00:00",
             "end_datetime": "2026-01-03T00:00:00", "timezone": "Europe/Berlin"},
            Schedule("interval", interval_s=60.0, timezone="Europe/Berlin",
                     start_at=utc("2026-01-01 23:00"), end_at=utc("2026-01-02 23:00")),
        ),
        (
            {"task_type": "periodic", "frequency": 3600, "start_datetime": "2026-01-02T00:00:00Z",
             "end_datetime": "2026-01-03T00:00:00+01:00"},
            Schedule("interval", interval_s=3600.0, start_at=utc("2026-01-02 00:00"),
                     end_at=utc("2026-01-02 23:00")),
        ),
        (
            {"task_type": "periodic", "frequency": 1.5},
            Schedule("interval", interval_s=1.5, start_at=NOW),
        ),
        (
            {"task_type": "periodic", "cron": "0 0 * * *", "start_datetime": "2026-02-01T00:00:00Z"},
            Schedule("cron", cron="0 0 * * *", start_at=utc("2026-02-01 00:00")),
        ),
        (
            {"task_type": "one_time", "run_datetime": "2026-01-05T08:00:00",
             "timezone": "America/New_York"},
            Schedule("once", run_at=utc("2026-01-05 13:00"), timezone="America/New_York"),
        ),
        (
            {"task_type": "one_time", "delay": "2h"},
            Schedule("once", run_at=NOW + dt.timedelta(hours=2)),
        ),
    ],
)
def test_seed_aliases_map_to_our_fields(fields: dict[str, Any], expected: Schedule) -> None:
    assert sched.parse(fields, NOW) == expected


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"interval": 60, "cron": "* * * * *"}, "'interval' or 'cron'"),
        ({"frequency": 60, "cron": "* * * * *"}, "'interval' or 'cron'"),
        ({"task_type": "periodic", "frequency": 60, "run_datetime": "2026-02-01T00:00:00Z"}, "'run_at'"),
        ({"task_type": "periodic", "cron": "* * * * *", "delay": "5m"}, "'delay'"),
        ({"interval": 60, "run_at": "2026-02-01T00:00:00Z"}, "'run_at'"),
        ({"task_type": "periodic"}, "'interval'"),
        ({"task_type": "periodic", "run_datetime": "2026-02-01T00:00:00Z"}, "'interval'"),
        ({"task_type": "one_time", "frequency": 60}, "'frequency'"),
        ({"task_type": "one_time", "cron": "* * * * *"}, "'cron'"),
        ({"task_type": "sometimes"}, "'task_type'"),
        ({"run_at": "2026-02-01T00:00:00Z", "delay": 5}, "'run_at' or 'delay'"),
        ({"run_at": "2026-02-01T00:00:00Z", "start_at": "2026-02-01T00:00:00Z"}, "'start_at'"),
        ({"task_type": "one_time", "start_datetime": "2026-02-01T00:00:00Z"}, "'start_at'"),
        ({"delay": 5, "end_at": "2026-02-01T00:00:00Z"}, "'end_at'"),
        ({"max_runs": 3}, "'max_runs'"),
        ({"frequency": 60, "interval": 60}, "'frequency' or 'interval'"),
        ({"run_datetime": "2026-02-01T00:00:00Z", "run_at": "2026-02-01T00:00:00Z"}, "'run_datetime' or 'run_at'"),
        ({"timezone": "Mars/Olympus_Mons"}, "'timezone'"),
        ({"timezone": "", "interval": 60}, "'timezone'"),
        ({"timezone": 5}, "'timezone'"),
        ({"misfire": "later"}, "'misfire'"),
        ({"interval": 60, "misfire": "RUN_ONCE"}, "'misfire'"),
        ({"interval": 0.5}, "'interval' must be at least 1 seconds"),
        ({"interval": 0}, "'interval'"),
        ({"interval": -60}, "'interval'"),
        ({"task_type": "periodic", "frequency": 0.2}, "'interval'"),
        ({"interval": "60"}, "'interval' must be a number"),
        ({"interval": True}, "'interval' must be a number"),
        ({"interval": float("inf")}, "'interval' must be a number"),
        ({"interval": 60, "start_at": "2026-02-02T00:00:00Z", "end_at": "2026-02-01T00:00:00Z"}, "'end_at'"),
        ({"interval": 60, "start_at": "2026-02-01T00:00:00Z", "end_at": "2026-02-01T00:00:00Z"}, "'end_at'"),
        ({"interval": 60, "start_at": "soon"}, "'start_at'"),
        ({"cron": "* * * * *", "end_at": 5}, "'end_at'"),
        ({"interval": 60, "max_runs": 0}, "'max_runs'"),
        ({"interval": 60, "max_runs": -1}, "'max_runs'"),
        ({"interval": 60, "max_runs": 1.5}, "'max_runs'"),
        ({"interval": 60, "max_runs": "3"}, "'max_runs'"),
        ({"interval": 60, "max_runs": True}, "'max_runs'"),
        ({"cron": "0 0 31 2 *"}, "'cron'"),
        ({"cron": "0 0 * * *", "end_at": "2025-12-31T00:00:00Z"}, "'cron'"),
        ({"cron": "0 0 * * *", "start_at": "2026-01-02T00:01:00Z", "end_at": "2026-01-02T23:59:00Z"}, "'cron'"),
        ({"interval": 60, "end_at": "2026-01-01T11:00:00Z"}, "never fires"),
        ({"cron": "61 * * * *"}, "cron minute"),
        ({"cron": "* * * *"}, "'cron' must have 5 fields"),
        ({"cron": 5}, "'cron' must be a string"),
    ],
)
def test_invalid_combinations_are_rejected_naming_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sched.parse(fields, NOW)
    assert named in str(caught.value)


def test_minimum_interval_is_configurable() -> None:
    assert sched.parse({"interval": 10}, NOW, min_interval_s=10).interval_s == 10.0
    with pytest.raises(ValidationError, match="'interval' must be at least 10 seconds"):
        sched.parse({"interval": 9.9}, NOW, min_interval_s=10)


# --- first_fire / next_fire --------------------------------------------------------------

START = utc("2026-01-01 00:00")
MINUTELY = Schedule("interval", interval_s=60.0, start_at=START)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-01 00:00", "2026-01-01 00:01"),
        # a late ``after`` (by a fraction, or by much more) never shifts the grid
        ("2026-01-01 00:01:00.250", "2026-01-01 00:02"),
        ("2026-01-01 00:01:59.999999", "2026-01-01 00:02"),
        ("2026-01-01 00:10:30", "2026-01-01 00:11"),
        ("2026-01-02 03:04:05", "2026-01-02 03:05"),
        # strictly after: a due time gives the next one
        ("2026-01-01 00:02", "2026-01-01 00:03"),
    ],
)
def test_interval_next_fire_is_anchored_to_start(after: str, expected: str) -> None:
    assert MINUTELY.next_fire(utc(after), 1) == utc(expected)


def test_interval_next_fire_has_no_drift_over_many_late_runs() -> None:
    s = Schedule("interval", interval_s=90.0, start_at=START)
    due = START
    for k in range(1, 1001):
        late_run = due + dt.timedelta(seconds=0.75)
        due_next = s.next_fire(late_run, k)
        assert due_next == START + dt.timedelta(seconds=90 * k)
        assert due_next is not None
        due = due_next


@pytest.mark.parametrize("interval_s", [1.1, 1.3, 2.7, 3.3, 0.1 + 0.2 + 1])
def test_fractional_interval_next_fire_always_moves_forward_on_the_grid(interval_s: float) -> None:
    s = Schedule("interval", interval_s=interval_s, start_at=START)
    step = dt.timedelta(microseconds=round(interval_s * 1_000_000))
    due = START
    for k in range(1, 201):
        nxt = s.next_fire(due, k)
        assert nxt == START + k * step
        assert nxt is not None
        due = nxt


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-01 00:03", "2026-01-01 00:04"),
        ("2026-01-01 00:04", "2026-01-01 00:05"),  # end_at itself is still a fire time
        ("2026-01-01 00:04:30", "2026-01-01 00:05"),
        ("2026-01-01 00:05", None),
        ("2026-01-01 01:00", None),
    ],
)
def test_interval_next_fire_stops_at_end_at(after: str, expected: str | None) -> None:
    s = Schedule("interval", interval_s=60.0, start_at=START, end_at=utc("2026-01-01 00:05"))
    assert s.next_fire(utc(after), 1) == (utc(expected) if expected else None)


@pytest.mark.parametrize(
    ("fired", "expected"),
    [(0, "2026-01-01 00:01"), (1, "2026-01-01 00:01"), (2, "2026-01-01 00:01"), (3, None), (4, None)],
)
def test_next_fire_stops_at_max_runs(fired: int, expected: str | None) -> None:
    interval = Schedule("interval", interval_s=60.0, start_at=START, max_runs=3)
    cron = Schedule("cron", cron="* * * * *", start_at=START, max_runs=3)
    want = utc(expected) if expected else None
    assert interval.next_fire(START, fired) == want
    assert cron.next_fire(START, fired) == want


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-01-01 00:00", "2026-01-01 09:00"),
        ("2026-01-01 09:00", "2026-01-02 09:00"),
        ("2026-01-02 09:00", "2026-01-03 09:00"),
        ("2026-01-03 08:59:59", "2026-01-03 09:00"),  # end_at itself is still a fire time
        ("2026-01-03 09:00", None),
    ],
)
def test_cron_next_fire_respects_end_at(after: str, expected: str | None) -> None:
    s = Schedule("cron", cron="0 9 * * *", start_at=START, end_at=utc("2026-01-03 09:00"))
    assert s.next_fire(utc(after), 1) == (utc(expected) if expected else None)


def test_cron_next_fire_uses_the_schedule_timezone() -> None:
    s = Schedule("cron", cron="30 2 * * *", timezone="America/New_York")
    assert s.next_fire(utc("2026-03-08 00:00"), 0) == utc("2026-03-08 07:30")
    assert s.next_fire(utc("2026-03-08 07:30"), 1) == utc("2026-03-09 06:30")


@pytest.mark.parametrize(
    "s",
    [Schedule("now"), Schedule("once", run_at=utc("2026-02-01 00:00"))],
)
def test_one_time_schedules_have_no_next_fire(s: Schedule) -> None:
    assert s.next_fire(NOW, 0) is None
    assert s.periodic is False


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        (Schedule("now"), NOW),
        (Schedule("once", run_at=utc("2026-02-01 00:00")), utc("2026-02-01 00:00")),
        (Schedule("interval", interval_s=60.0), NOW),
        (Schedule("interval", interval_s=60.0, start_at=utc("2026-02-01 00:00")), utc("2026-02-01 00:00")),
        # a start in the past is returned as is (it is due now)
        (Schedule("interval", interval_s=60.0, start_at=utc("2025-12-01 00:00")), utc("2025-12-01 00:00")),
        # cron: a start exactly on a fire time counts
        (Schedule("cron", cron="0 * * * *", start_at=utc("2026-02-01 05:00")), utc("2026-02-01 05:00")),
        (Schedule("cron", cron="0 * * * *", start_at=utc("2026-02-01 05:00:01")), utc("2026-02-01 06:00")),
        (Schedule("cron", cron="0 * * * *"), utc("2026-01-01 12:00")),
        (Schedule("cron", cron="0 0 * * *", timezone="Europe/Berlin"), utc("2026-01-01 23:00")),
        (Schedule("cron", cron="0 0 * * *", end_at=utc("2026-01-01 23:00")), None),
        (Schedule("interval", interval_s=60.0, end_at=utc("2026-01-01 11:00")), None),
    ],
)
def test_first_fire(s: Schedule, expected: dt.datetime | None) -> None:
    assert s.first_fire(NOW) == expected


# --- after_downtime ----------------------------------------------------------------------

HOURLY_SKIP = Schedule("cron", cron="0 * * * *", misfire="skip")
MINUTELY_SKIP = Schedule("interval", interval_s=60.0, start_at=START, misfire="skip")
ONCE = Schedule("once", run_at=utc("2026-01-01 10:00"))
ONCE_SKIP = Schedule("once", run_at=utc("2026-01-01 10:00"), misfire="skip")


@pytest.mark.parametrize(
    ("s", "due", "now", "expected"),
    [
        # within grace: simply late, keep the due time (whatever the misfire policy)
        (MINUTELY, "2026-01-01 00:05", "2026-01-01 00:05:10", "2026-01-01 00:05"),
        (MINUTELY_SKIP, "2026-01-01 00:05", "2026-01-01 00:05:30", "2026-01-01 00:05"),
        (ONCE_SKIP, "2026-01-01 10:00", "2026-01-01 10:00:29", "2026-01-01 10:00"),
        # run_once (the default): fire once, now
        (MINUTELY, "2026-01-01 00:05", "2026-01-01 03:17:45", "2026-01-01 03:17:45"),
        (MINUTELY, "2026-01-01 00:05", "2026-01-01 00:05:30.000001", "2026-01-01 00:05:30.000001"),
        (ONCE, "2026-01-01 10:00", "2026-01-01 12:00", "2026-01-01 12:00"),
        (Schedule("cron", cron="0 * * * *"), "2026-01-01 10:00", "2026-01-01 10:20", "2026-01-01 10:20"),
        # skip: the next regular fire after now for periodic tasks ...
        (MINUTELY_SKIP, "2026-01-01 00:05", "2026-01-01 03:17:45", "2026-01-01 03:18"),
        (MINUTELY_SKIP, "2026-01-01 00:05", "2026-01-01 03:18", "2026-01-01 03:19"),
        (HOURLY_SKIP, "2026-01-01 10:00", "2026-01-01 10:20", "2026-01-01 11:00"),
        # ... and nothing for a one-time task
        (ONCE_SKIP, "2026-01-01 10:00", "2026-01-01 12:00", None),
    ],
)
def test_after_downtime(s: Schedule, due: str, now: str, expected: str | None) -> None:
    got = s.after_downtime(utc(due), utc(now), grace_s=30.0, fired=1)
    assert got == (utc(expected) if expected else None)


def test_after_downtime_skip_respects_end_at_and_max_runs() -> None:
    ending = Schedule("interval", interval_s=60.0, start_at=START, end_at=utc("2026-01-01 01:00"),
                      misfire="skip")
    assert ending.after_downtime(utc("2026-01-01 00:30"), utc("2026-01-01 02:00"), 30.0, 1) is None
    capped = Schedule("interval", interval_s=60.0, start_at=START, max_runs=2, misfire="skip")
    assert capped.after_downtime(utc("2026-01-01 00:01"), utc("2026-01-01 02:00"), 30.0, 2) is None


# --- JSON --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "s",
    [
        Schedule("now"),
        Schedule("now", timezone="Asia/Tokyo", misfire="skip"),
        Schedule("once", run_at=utc("2026-02-01 10:00:00.123456")),
        Schedule("interval", interval_s=60.0, start_at=START),
        Schedule("interval", interval_s=1.5, start_at=START, end_at=utc("2026-02-01 00:00"),
                 max_runs=5, misfire="skip", timezone="Europe/Berlin"),
        Schedule("cron", cron="0 9 * * mon-fri", timezone="America/New_York",
                 start_at=utc("2026-01-05 00:00"), end_at=utc("2026-12-31 00:00"), max_runs=100),
    ],
)
def test_to_json_from_json_round_trip(s: Schedule) -> None:
    data = s.to_json()
    assert Schedule.from_json(data) == s
    assert Schedule.from_json(data).to_json() == data


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"delay": "5m"},
        {"run_at": "2026-02-01T10:00:00", "timezone": "America/New_York"},
        {"task_type": "periodic", "frequency": 60, "start_datetime": "2026-01-02T00:00:00",
         "end_datetime": "2026-01-03T00:00:00", "timezone": "Europe/Berlin", "max_runs": 3},
        {"cron": "*/15 * * * *", "misfire": "skip"},
    ],
)
def test_parsed_schedules_round_trip_through_json(fields: dict[str, Any]) -> None:
    s = sched.parse(fields, NOW)
    assert Schedule.from_json(s.to_json()) == s


def test_to_json_writes_times_in_utc_and_omits_unset_fields() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    s = Schedule("once", run_at=dt.datetime(2026, 2, 1, 11, 0, tzinfo=berlin), timezone="Europe/Berlin")
    assert s.to_json() == {"kind": "once", "timezone": "Europe/Berlin", "misfire": "run_once",
                           "run_at": "2026-02-01T10:00:00+00:00"}


@pytest.mark.parametrize("data", [None, {}])
def test_from_json_of_nothing_is_now(data: dict[str, Any] | None) -> None:
    assert Schedule.from_json(data) == Schedule("now")
