"""Edges of what a client may send as a rule threshold or a calendar: each is refused with
an error naming the field, never an unexpected exception (a 500 over HTTP)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from indelible.domain.errors import InvalidCommandError
from indelible.escalation.calendar import NeverDueError, parse_calendar
from indelible.escalation.durations import DurationError, parse_duration


@pytest.mark.parametrize("text", ["PT" + "9" * 5000 + "S", "P" + "9" * 40 + "D",
                                  "PT\u0663H", "P\uff11D"])
def test_odd_durations_are_refused_as_durations(text):
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize("zone", ["a" * 300, "Europe", "America"])
def test_odd_time_zones_are_refused_naming_the_field(zone):
    with pytest.raises(InvalidCommandError) as refused:
        parse_calendar({"time_zone": zone})
    assert refused.value.field == "time_zone"


def test_a_threshold_the_calendar_cannot_reach_is_never_due_not_a_hang():
    calendar = parse_calendar({"time_zone": "Europe/Vienna", "working_days": ["sun"],
                               "working_hours": {"start": "00:00", "end": "00:01"},
                               "holidays": []})
    with pytest.raises(NeverDueError):
        calendar.add_business_seconds(datetime(2026, 11, 30, tzinfo=timezone.utc), 2 * 86_400)
