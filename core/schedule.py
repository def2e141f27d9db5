"""When a task runs: now, once later, or periodically (interval or cron), as pure functions.

Accepts our field names and the seeds' aliases (``task_type`` one_time/periodic, ``frequency``,
``run_datetime``, ``start_datetime``, ``end_datetime``). Times are ISO 8601; a time without an
offset is read in the task's ``timezone`` (default UTC). Interval fires are anchored to the
start (``start + k * interval``) so they never drift. After downtime a periodic task fires
once for the missed window (``misfire: run_once``, the default) or not at all (``skip``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import cron as cronlib
from core.errors import ValidationError

FIELDS = ("run_at", "delay", "interval", "cron", "timezone", "start_at", "end_at", "max_runs",
          "misfire", "task_type", "frequency", "run_datetime", "start_datetime", "end_datetime")
ALIASES = {"run_datetime": "run_at", "frequency": "interval", "start_datetime": "start_at",
           "end_datetime": "end_at"}
MISFIRE = ("run_once", "skip")
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass(frozen=True)
class Schedule:
    #: 'now', 'once', 'interval' or 'cron'
    kind: str
    run_at: dt.datetime | None = None
    interval_s: float | None = None
    cron: str | None = None
    timezone: str = "UTC"
    start_at: dt.datetime | None = None
    end_at: dt.datetime | None = None
    max_runs: int | None = None
    misfire: str = "run_once"

    @property
    def periodic(self) -> bool:
        return self.kind in ("interval", "cron")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def first_fire(self, now: dt.datetime) -> dt.datetime | None:
        """The first due time of a new task (None: it never fires)."""
        if self.kind == "now":
            return now
        if self.kind == "once":
            return self.run_at
        start = self.start_at or now
        if self.kind == "interval":
            first = start
        else:
            first = self._cron().next_after(start - dt.timedelta(microseconds=1), self.tz)  # type: ignore[assignment]
        return self._within_end(first)

    def next_fire(self, after: dt.datetime, fired: int) -> dt.datetime | None:
        """The periodic due time strictly after ``after``, given ``fired`` runs so far."""
        if not self.periodic or (self.max_runs is not None and fired >= self.max_runs):
            return None
        if self.kind == "interval":
            assert self.interval_s is not None
            anchor = self.start_at or after
            # whole microseconds: float division can land just below k and repeat ``after``
            step = dt.timedelta(microseconds=round(self.interval_s * 1_000_000))
            k = (after - anchor) // step + 1
            nxt: dt.datetime | None = anchor + max(k, 1) * step
        else:
            nxt = self._cron().next_after(after, self.tz)
        return self._within_end(nxt)

    def after_downtime(self, due: dt.datetime, now: dt.datetime, grace_s: float, fired: int) -> dt.datetime | None:
        """What to do with a due time that passed while nothing ran: fire once now, or skip to
        the next regular time (``misfire``). Due times within ``grace_s`` are simply late."""
        if (now - due).total_seconds() <= grace_s:
            return due
        if self.misfire == "run_once":
            return now
        if not self.periodic:
            return None
        return self.next_fire(now, fired)

    def _cron(self) -> cronlib.Cron:
        assert self.cron is not None
        return cronlib.parse(self.cron)

    def _within_end(self, when: dt.datetime | None) -> dt.datetime | None:
        if when is None or (self.end_at is not None and when > self.end_at):
            return None
        return when

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "timezone": self.timezone, "misfire": self.misfire}
        for name in ("run_at", "start_at", "end_at"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.astimezone(dt.UTC).isoformat()
        for name in ("interval_s", "cron", "max_runs"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Schedule:
        if not data:
            return cls("now")
        times = {k: dt.datetime.fromisoformat(data[k]) for k in ("run_at", "start_at", "end_at") if data.get(k)}
        return cls(
            kind=data["kind"], interval_s=data.get("interval_s"), cron=data.get("cron"),
            timezone=data.get("timezone", "UTC"), max_runs=data.get("max_runs"),
            misfire=data.get("misfire", "run_once"), **times,
        )


def parse_delay(value: Any, name: str = "delay") -> float:
    """``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` or a number of seconds (``name``: the field, for
    the message)."""
    if isinstance(value, bool):
        raise ValidationError(f"'{name}' must be a number of seconds or a string like '30s', '5m', '2h', '1d'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DELAY.match(value) if isinstance(value, str) else None
        if not match:
            raise ValidationError(f"'{name}' must be a number of seconds or a string like '30s', '5m', '2h', '1d'")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 <= seconds <= 10 * 366 * 86400 or not math.isfinite(seconds):
        raise ValidationError(f"'{name}' must be between 0 seconds and 10 years")
    return seconds


def parse_time(name: str, value: Any, tz: ZoneInfo) -> dt.datetime:
    """ISO 8601; without an offset it is a wall time in ``tz``."""
    if not isinstance(value, str):
        raise ValidationError(f"'{name}' must be an ISO 8601 date-time string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"'{name}' is not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(dt.UTC)


def parse(fields: dict[str, Any], now: dt.datetime, min_interval_s: float = 1.0) -> Schedule:
    """Build a Schedule from request fields (ours or the seeds'); raise ValidationError naming
    the field to fix."""
    f = {ALIASES.get(k, k): v for k, v in fields.items() if k in FIELDS and v is not None}
    for alias, name in ALIASES.items():
        if alias in fields and name in fields:
            raise ValidationError(f"give either '{alias}' or '{name}', not both")
    tz_name = f.get("timezone", "UTC")
    try:
        if not isinstance(tz_name, str):
            raise ValueError
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"'timezone' must be an IANA time zone name such as 'Europe/Paris', got {tz_name!r}") from None
    misfire = f.get("misfire", "run_once")
    if misfire not in MISFIRE:
        raise ValidationError("'misfire' must be 'run_once' or 'skip'")
    declared = f.get("task_type")
    if declared is not None and declared not in ("one_time", "periodic"):
        raise ValidationError("'task_type' must be 'one_time' or 'periodic'")
    periodic = "interval" in f or "cron" in f
    if declared == "periodic" and not periodic:
        raise ValidationError("a periodic task needs 'interval' (or 'frequency') seconds or a 'cron' expression")
    if declared == "one_time" and periodic:
        raise ValidationError("a one_time task cannot have 'interval', 'frequency' or 'cron'")
    if "interval" in f and "cron" in f:
        raise ValidationError("give either 'interval' or 'cron', not both")
    if periodic and ("run_at" in f or "delay" in f):
        raise ValidationError("a periodic task starts at 'start_at'; 'run_at' and 'delay' are for one-time tasks")
    if not periodic:
        for name in ("start_at", "end_at", "max_runs"):
            if name in f:
                raise ValidationError(f"'{name}' applies to periodic tasks only")
        if "run_at" in f and "delay" in f:
            raise ValidationError("give either 'run_at' or 'delay', not both")
        if "run_at" in f:
            return Schedule("once", run_at=parse_time("run_at", f["run_at"], tz), timezone=tz_name, misfire=misfire)
        if "delay" in f:
            return Schedule("once", run_at=now + dt.timedelta(seconds=parse_delay(f["delay"])),
                            timezone=tz_name, misfire=misfire)
        return Schedule("now", timezone=tz_name, misfire=misfire)
    start = parse_time("start_at", f["start_at"], tz) if "start_at" in f else None
    end = parse_time("end_at", f["end_at"], tz) if "end_at" in f else None
    if start and end and end <= start:
        raise ValidationError("'end_at' must be after 'start_at'")
    max_runs = f.get("max_runs")
    if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1):
        raise ValidationError("'max_runs' must be a positive integer")
    if "interval" in f:
        interval = f["interval"]
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not math.isfinite(interval):
            raise ValidationError("'interval' must be a number of seconds")
        if interval < min_interval_s:
            raise ValidationError(f"'interval' must be at least {min_interval_s:g} seconds")
        # no start_at: anchor to now, or next_fire would anchor to each late ``after`` and drift
        schedule = Schedule("interval", interval_s=float(interval), timezone=tz_name, start_at=start or now,
                            end_at=end, max_runs=max_runs, misfire=misfire)
    else:
        cronlib.parse(f["cron"])
        schedule = Schedule("cron", cron=f["cron"], timezone=tz_name, start_at=start, end_at=end,
                            max_runs=max_runs, misfire=misfire)
    if schedule.first_fire(now) is None:
        raise ValidationError("this schedule never fires (check 'cron', 'start_at' and 'end_at')")
    return schedule
