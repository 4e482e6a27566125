"""Report requests: every bad field named, canonical parameters, schedule periods."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from indelible.reports import schedule
from indelible.reports.request import InvalidReportError, parse_request

Q4 = {"from": "2026-10-01", "to": "2027-01-01"}


def _fields(body) -> dict[str, str]:
    with pytest.raises(InvalidReportError) as refused:
        parse_request(body)
    return dict(refused.value.errors)


def test_a_quarter_is_parsed_into_canonical_parameters():
    r = parse_request(Q4 | {"formats": "json,pdf", "filters": {"status": ["resolved", "open",
                                                                          "open"]}})
    assert r.to_json() == {"from": "2026-10-01T00:00:00Z", "to": "2027-01-01T00:00:00Z",
                           "formats": ["pdf", "json"],
                           "filters": {"status": ["open", "resolved"], "severity": [],
                                       "source": [], "currency": [], "discrepancy_ids": []}}
    assert r.label == "2026-10-01 to 2026-12-31"
    assert parse_request(r.to_json()) == r  # the recorded parameters parse back to the same


def test_times_with_offsets_are_taken_in_utc():
    r = parse_request({"from": "2026-10-01T02:00:00+02:00", "to": "2026-10-02T00:00:00Z"})
    assert r.period_from == datetime(2026, 10, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("body, field, words", [
    ({"from": "2026-10-01", "to": "2026-10-01"}, "to", "must be after from"),
    ({"from": "2016-01-01", "to": "2026-01-01"}, "to", "at most 366 days"),
    ({"to": "2026-01-01"}, "from", "is required"),
    ({"from": "2026-13-01", "to": "2027-01-01"}, "from", "not a date"),
    ({"from": "2026-10-01T00:00:00", "to": "2027-01-01"}, "from", "no UTC offset"),
    (Q4 | {"formats": []}, "formats", "non-empty"),
    (Q4 | {"formats": ["pdf", "docx"]}, "formats", "'docx'"),
    (Q4 | {"filters": {"status": ["closed"]}}, "filters.status", "unknown value 'closed'"),
    (Q4 | {"filters": {"severity": "urgent"}}, "filters.severity", "'urgent'"),
    (Q4 | {"filters": {"currency": ["EURO"]}}, "filters.currency", "'EURO'"),
    (Q4 | {"filters": {"source": ["a\x00b"]}}, "filters.source", "source name"),
    (Q4 | {"filters": {"discrepancy_ids": ["42"]}}, "filters.discrepancy_ids", "UUID"),
    (Q4 | {"filters": {"colour": ["red"]}}, "filters.colour", "unknown filter"),
    (Q4 | {"period": "Q4"}, "period", "unknown field"),
])
def test_each_bad_field_is_named_with_its_rule(body, field, words):
    fields = _fields(body)
    assert field in fields and words in fields[field], fields


def test_every_bad_field_is_named_at_once():
    assert set(_fields({"from": "x", "to": "y", "formats": ["z"]})) == {"from", "to", "formats"}


@pytest.mark.parametrize("every, run_at, period", [
    ("monthly", "2026-12-01", ("2026-11-01", "2026-12-01")),
    ("monthly", "2027-01-01", ("2026-12-01", "2027-01-01")),
    ("quarterly", "2027-01-01", ("2026-10-01", "2027-01-01")),
    ("quarterly", "2026-04-01", ("2026-01-01", "2026-04-01")),
    ("weekly", "2026-11-30", ("2026-11-23", "2026-11-30")),  # Mondays
])
def test_a_schedule_reports_on_the_period_that_just_ended(every, run_at, period):
    at = datetime.fromisoformat(run_at).replace(tzinfo=timezone.utc)
    start, end = schedule.period_before(every, at)
    assert (start.date().isoformat(), end.date().isoformat()) == period
    assert schedule.next_start(every, end) > end


def test_a_new_schedule_first_runs_when_the_current_period_ends():
    now = datetime(2026, 11, 30, 22, 0, tzinfo=timezone.utc)
    assert schedule.first_run("monthly", now) == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert schedule.first_run("quarterly", now) == datetime(2027, 1, 1, tzinfo=timezone.utc)
