"""What `indelible verify` expects of an `escalation_watch` row, from the ledger alone:
the latest acceptable next-check bound of a discrepancy's period (pure, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from indelible.escalation.rules import DEFAULT_RULES
from indelible.verifier.watch_check import WatchCheck

STREAM = "disc/0b0e3c3e-0000-4000-8000-000000000001"
START = datetime(2026, 11, 23, 5, 0, tzinfo=timezone.utc)
HIGH_OPEN = SimpleNamespace(status="open", severity="high")


def _entry(check: WatchCheck, seq: int, kind: str, **data) -> None:
    check.entry(STREAM, seq, START + timedelta(minutes=seq), {"type": kind, "data": data})


def _fired(check: WatchCheck, seq: int, rule_id: str) -> None:
    _entry(check, seq, "escalation.fired", rule_id=rule_id,
           rule_version=DEFAULT_RULES.rule_version(rule_id), period_start_seq=0)


def test_the_bound_is_the_earliest_unfired_rule_of_the_period():
    check = WatchCheck()  # the built-in rules: high 4h notify, high 1d escalate
    check.entry(STREAM, 0, START, {"type": "discrepancy.opened", "data": {}})
    period, bound = check.expected(STREAM, HIGH_OPEN)
    assert (period.period_seq, period.period_at, period.status) == (0, START, "open")
    assert bound == START + timedelta(hours=4)
    _fired(check, 1, "high-4h-notify")
    assert check.expected(STREAM, HIGH_OPEN)[1] == START + timedelta(days=1)


def test_a_pause_in_force_holds_the_bound_and_a_resume_releases_it():
    check = WatchCheck()
    check.entry(STREAM, 0, START, {"type": "discrepancy.opened", "data": {}})
    _entry(check, 1, "escalation.paused", until="2026-11-23T12:00:00Z")
    period, bound = check.expected(STREAM, HIGH_OPEN)
    assert period.paused_until == bound == datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    _entry(check, 2, "escalation.resumed")
    assert check.expected(STREAM, HIGH_OPEN)[1] == START + timedelta(hours=4)


def test_a_recorded_firing_that_ends_the_period_leaves_nothing_to_wait_for():
    check = WatchCheck()
    check.entry(STREAM, 0, START, {"type": "discrepancy.opened", "data": {}})
    _fired(check, 1, "high-24h-escalate")
    assert check.expected(STREAM, HIGH_OPEN)[1] is None
    assert check.expected("disc/never-opened", HIGH_OPEN) is None
