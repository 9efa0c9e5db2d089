"""CronJob schedules: the standard five-field cron syntax and the ``@hourly``-style macros.

The accepted language is the one Kubernetes' CronJob controller understands:

- five space-separated fields: minute (0-59), hour (0-23), day of month (1-31),
  month (1-12 or JAN-DEC), day of week (0-6 or SUN-SAT, Sunday = 0);
- each field a comma-separated list of ``*`` (or ``?``), ``N``, ``A-B``, each optionally
  followed by ``/STEP`` (``N/STEP`` means ``N-max/STEP``); names are case-insensitive;
- the macros ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily``
  (``@midnight``), ``@hourly`` and ``@every <duration>`` (``@every 1h30m``).

When both day fields are restricted, a day matches when either does (cron's rule);
when one of them is ``*``, only the other one counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["CronError", "CronSchedule", "parse_schedule"]


class CronError(ValueError):
    """A schedule that is not valid cron syntax; the message says what is wrong."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
                            "OCT", "NOV", "DEC")),
    _Field("day of week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}
_SEARCH_DAYS = 366 * 8  # covers every satisfiable day/month combination (Feb 29 included)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the allowed values of each field, or a fixed interval
    (``@every``), in which case the field sets are empty."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    any_day_of_month: bool = False
    any_day_of_week: bool = False
    every: timedelta | None = None

    def _day_matches(self, day: datetime) -> bool:
        dom = day.day in self.days_of_month
        dow = (day.weekday() + 1) % 7 in self.days_of_week
        if self.any_day_of_month or self.any_day_of_week:
            return dom and dow
        return dom or dow

    def next_after(self, moment: datetime) -> datetime | None:
        """The first scheduled time strictly after ``moment`` (to the minute, seconds
        zeroed; ``@every`` adds its interval), in ``moment``'s own clock; None when the
        schedule never fires (``0 0 30 2 *``)."""
        if self.every is not None:
            return moment + self.every
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(_SEARCH_DAYS):
            if day.month in self.months and self._day_matches(day):
                found = self._first_time_on(day, start)
                if found is not None:
                    return found
            day += timedelta(days=1)
        return None

    def _first_time_on(self, day: datetime, start: datetime) -> datetime | None:
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                candidate = day.replace(hour=hour, minute=minute)
                if candidate >= start:
                    return candidate
        return None


def parse_schedule(text: str) -> CronSchedule:
    """Parse a CronJob schedule; raises CronError saying what is wrong."""
    spec = text.strip()
    if not spec:
        raise CronError("empty schedule: give five fields (minute hour day-of-month month "
                        "day-of-week) or a macro such as @hourly")
    if spec.startswith("@"):
        return _parse_macro(spec)
    fields = spec.split()
    if len(fields) != len(_FIELDS):
        raise CronError(f"expected exactly 5 fields (minute hour day-of-month month "
                        f"day-of-week), found {len(fields)}: {spec!r}")
    sets = [_parse_field(value, field) for value, field in zip(fields, _FIELDS, strict=True)]
    return CronSchedule(
        minutes=sets[0], hours=sets[1], days_of_month=sets[2], months=sets[3],
        days_of_week=sets[4], any_day_of_month=_is_star(fields[2]),
        any_day_of_week=_is_star(fields[4]),
    )


def _is_star(value: str) -> bool:
    return value in ("*", "?") or value.startswith(("*/", "?/"))


def _parse_macro(spec: str) -> CronSchedule:
    word, _, rest = spec.partition(" ")
    if word == "@every":
        return CronSchedule(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(),
                            every=_parse_duration(rest.strip()))
    expansion = _MACROS.get(word.lower())
    if expansion is None or rest.strip():
        known = ", ".join([*_MACROS, "@every <duration>"])
        raise CronError(f"unrecognized descriptor {spec!r}: use one of {known}")
    return parse_schedule(expansion)


def _parse_duration(text: str) -> timedelta:
    """A Go-style duration such as ``90s``, ``1h30m``, ``1.5h``; at least one second."""
    seconds, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise CronError(f"@every needs a duration such as 30s, 5m or 1h30m, got {text!r}")
    if seconds < 1:
        raise CronError(f"@every needs a duration of at least 1s, got {text!r}")
    return timedelta(seconds=int(seconds))


def _parse_field(value: str, field: _Field) -> frozenset[int]:
    allowed: set[int] = set()
    for part in value.split(","):
        allowed.update(_parse_range(part, field))
    return frozenset(allowed)


def _parse_range(part: str, field: _Field) -> range:
    where = f"{field.name} field {part!r}"
    body, slash, step_text = part.partition("/")
    step = 1
    if slash:
        step = _number(step_text, field, where, named=False)
        if step < 1:
            raise CronError(f"{where}: the step must be a positive number")
    if body in ("*", "?"):
        low, high = field.low, field.high
    else:
        first, dash, last = body.partition("-")
        low = _number(first, field, where)
        high = _number(last, field, where) if dash else (field.high if slash else low)
    if low < field.low:
        raise CronError(f"{where}: {low} is below the minimum {field.low}")
    if high > field.high:
        raise CronError(f"{where}: {high} is above the maximum {field.high}")
    if low > high:
        raise CronError(f"{where}: the range starts after it ends ({low} > {high})")
    return range(low, high + 1, step)


def _number(text: str, field: _Field, where: str, named: bool = True) -> int:
    if named and text.upper() in field.names:
        return field.names.index(text.upper()) + field.low
    if not text.isdigit():
        names = f" or a name ({field.names[0]}-{field.names[-1]})" if field.names and named else ""
        raise CronError(f"{where}: {text!r} is not a number{names}")
    return int(text)
