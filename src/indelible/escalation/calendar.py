"""Business time: a tenant's working days and hours in its IANA time zone, minus holidays.

    {"time_zone": "Europe/Vienna", "working_days": ["mon", "tue", "wed", "thu", "fri"],
     "working_hours": {"start": "08:00", "end": "17:00"}, "holidays": ["2026-12-24"]}

`add_business_seconds` walks working windows in local time and turns each back into UTC
through the zone's rules, so a daylight-saving change moves the UTC hours of a window, never
its local ones: 4 business hours from Friday 16:00 in Vienna (08:00-17:00) are due Monday
11:00 local, whichever side of a clock change Monday falls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from indelible.domain.errors import InvalidCommandError

__all__ = ["BusinessCalendar", "DEFAULT_CALENDAR", "NeverDueError", "parse_calendar"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_HOLIDAYS = 2000
MAX_DAYS_WALKED = 3 * 366 * 10  # a calendar with almost no working time cannot hang a pass


class NeverDueError(ValueError):
    """The calendar holds too little working time to reach a threshold within the walk."""
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_FIELDS = {"time_zone", "working_days", "working_hours", "holidays"}


@dataclass(frozen=True)
class BusinessCalendar:
    time_zone: str = "UTC"
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    start: time = time(8, 0)
    end: time = time(17, 0)
    holidays: frozenset[date] = field(default_factory=frozenset)
    version: int = 0  # stream version of the entry that set it; 0: the built-in default

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def to_dict(self) -> dict:
        return {"time_zone": self.time_zone,
                "working_days": [DAYS[d] for d in self.working_days],
                "working_hours": {"start": self.start.strftime("%H:%M"),
                                  "end": self.end.strftime("%H:%M")},
                "holidays": sorted(d.isoformat() for d in self.holidays)}

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's working window in UTC, or None for a day off."""
        if day.weekday() not in self.working_days or day in self.holidays:
            return None
        zone = self.zone
        start = datetime.combine(day, self.start, zone).astimezone(timezone.utc)
        end = datetime.combine(day, self.end, zone).astimezone(timezone.utc)
        return start, end

    def add_business_seconds(self, start: datetime, seconds: int) -> datetime:
        """The UTC moment at which `seconds` of business time have passed since `start`."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        left = timedelta(seconds=seconds)
        day = start.astimezone(self.zone).date() - timedelta(days=1)  # a window may span UTC days
        for _ in range(MAX_DAYS_WALKED):
            window = self._window(day)
            day += timedelta(days=1)
            if window is None:
                continue
            begin, finish = max(window[0], start), window[1]
            if finish <= begin:
                continue
            if finish - begin >= left:
                return begin + left
            left -= finish - begin
        raise NeverDueError(f"the calendar has less than {seconds} s of working time in the "
                            f"{MAX_DAYS_WALKED} days after {start.isoformat()}")

    def business_seconds_between(self, start: datetime, end: datetime) -> int:
        """Business seconds in [start, end) (for a view: how much of a threshold has run)."""
        total, day = timedelta(), start.astimezone(self.zone).date() - timedelta(days=1)
        while day <= end.astimezone(self.zone).date():
            window = self._window(day)
            day += timedelta(days=1)
            if window is not None:
                lo, hi = max(window[0], start), min(window[1], end)
                if hi > lo:
                    total += hi - lo
        return int(total.total_seconds())


DEFAULT_CALENDAR = BusinessCalendar()


def parse_calendar(document: object) -> BusinessCalendar:
    """Check a calendar document (see the module); errors name the field."""
    if not isinstance(document, Mapping):
        raise InvalidCommandError("calendar", "must be an object")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise InvalidCommandError(unknown[0], f"unknown field; a calendar has {sorted(_FIELDS)}")
    zone = document.get("time_zone")
    try:
        if not isinstance(zone, str) or not zone or len(zone) > 64:
            raise ZoneInfoNotFoundError
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise InvalidCommandError("time_zone", f"{zone!r} is not an IANA time zone such as "
                                  "Europe/Vienna or UTC") from None
    days = document.get("working_days", list(DAYS[:5]))
    if (not isinstance(days, list) or not days
            or not all(isinstance(d, str) and d in DAYS for d in days)):
        raise InvalidCommandError("working_days", f"must be a non-empty list of {', '.join(DAYS)}")
    if len(set(days)) != len(days):
        raise InvalidCommandError("working_days", "lists a day twice")
    hours = document.get("working_hours", {"start": "08:00", "end": "17:00"})
    if not isinstance(hours, Mapping) or set(hours) != {"start", "end"}:
        raise InvalidCommandError("working_hours", "must be {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}")
    start, end = (_hhmm(hours[k], f"working_hours.{k}") for k in ("start", "end"))
    if end <= start:
        raise InvalidCommandError("working_hours.end", "must be after start (one window a day)")
    holidays = document.get("holidays", [])
    if not isinstance(holidays, list) or len(holidays) > MAX_HOLIDAYS:
        raise InvalidCommandError("holidays", f"must be a list of at most {MAX_HOLIDAYS} dates")
    parsed = set()
    for i, text in enumerate(holidays):
        try:
            if not isinstance(text, str) or len(text) != 10:
                raise ValueError
            parsed.add(date.fromisoformat(text))
        except ValueError:
            raise InvalidCommandError(f"holidays[{i}]", f"{text!r} is not a date YYYY-MM-DD") from None
    return BusinessCalendar(zone, tuple(sorted(DAYS.index(d) for d in days)), start, end,
                            frozenset(parsed))


def _hhmm(value: object, where: str) -> time:
    if not isinstance(value, str) or not (m := _HHMM.fullmatch(value)):
        raise InvalidCommandError(where, f"{value!r} is not a time HH:MM (00:00-23:59)")
    return time(int(m[1]), int(m[2]))
