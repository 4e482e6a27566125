"""Recurring reports: which period a schedule's run covers, and when it runs next. Pure.

A schedule runs at the start of each period (00:00 UTC on a Monday, the 1st of a month,
the 1st of a quarter) and reports on the period that just ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EVERY = ("weekly", "monthly", "quarterly")


def period_start(every: str, at: datetime) -> datetime:
    """The start of the period `at` falls in."""
    at = at.astimezone(timezone.utc)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if every == "weekly":
        return midnight - timedelta(days=midnight.weekday())
    if every == "monthly":
        return midnight.replace(day=1)
    if every == "quarterly":
        return midnight.replace(day=1, month=(at.month - 1) // 3 * 3 + 1)
    raise ValueError(f"unknown schedule {every!r}; allowed: {', '.join(EVERY)}")


def next_start(every: str, start: datetime) -> datetime:
    """The start of the period after the one beginning at `start`."""
    if every == "weekly":
        return start + timedelta(days=7)
    months = 1 if every == "monthly" else 3
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def first_run(every: str, now: datetime) -> datetime:
    """A new schedule first runs when the current period ends."""
    return next_start(every, period_start(every, now))


def period_before(every: str, run_at: datetime) -> tuple[datetime, datetime]:
    """The period a run at `run_at` reports on: the one that ended at the latest boundary."""
    end = period_start(every, run_at)
    start = period_start(every, end - timedelta(microseconds=1))
    return start, end
