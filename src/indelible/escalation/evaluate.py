"""What is due: for one discrepancy's watched period, the rules, the calendar and a clock.

Deterministic: the same period, rule set, calendar, fired set and `now` give the same
answer, so a preview, the engine and a test agree. A period is the time a discrepancy has
spent in its current status, begun by the entry that put it there (`period_seq`).

Order: firings are due in (due time, priority, rule id) order. A firing that moves the
discrepancy (escalate, auto_close) ends the period, so rules after it in that order are not
due in this period: they watch the next one (if its status is one they watch).

Pauses: while paused, nothing fires; a rule that fell due meanwhile fires when the pause
ends (late, and its entry shows it: `due_at` before `fired_at`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from indelible.escalation.calendar import BusinessCalendar, NeverDueError
from indelible.escalation.rules import Rule, RuleSet

__all__ = ["Due", "Period", "due_at", "evaluate", "firing_key"]

MOVES = ("escalate", "auto_close")


@dataclass(frozen=True)
class Period:
    """A discrepancy's watched period, as the index or the ledger gives it."""

    discrepancy_id: str
    status: str
    severity: str
    period_seq: int  # the entry that began the current status (opened, transitioned)
    period_at: datetime  # when that entry was recorded (UTC)
    paused_until: datetime | None = None  # an escalation pause in force, if any


@dataclass(frozen=True)
class Due:
    rule: Rule
    rule_version: int
    due_at: datetime
    key: str  # the idempotency key of its firing

    def sort_key(self) -> tuple:
        return (self.due_at, self.rule.priority, self.rule.id)


@dataclass(frozen=True)
class Evaluation:
    due: list[Due]  # fire these now, in this order
    pending: list[Due]  # watching, not yet due (or held by a pause), in order
    next_check: datetime | None  # when this period next needs a look; None: never


def firing_key(discrepancy_id: str, rule_id: str, rule_version: int, period_seq: int) -> str:
    """The ledger idempotency key of one firing: one per (discrepancy, rule, rule version,
    period-start entry). Hashed, so no client key can spell it and any id fits."""
    digest = hashlib.sha256(orjson.dumps([discrepancy_id, rule_id, rule_version, period_seq]))
    return "esc:" + digest.hexdigest()


def due_at(rule: Rule, start: datetime, calendar: BusinessCalendar) -> datetime:
    if rule.business_hours:
        return calendar.add_business_seconds(start, rule.seconds)
    return start + timedelta(seconds=rule.seconds)


def watching(period: Period, rules: RuleSet, calendar: BusinessCalendar) -> list[Due]:
    """Every enabled rule that watches this period, with its due time, in firing order.
    A business-time rule the calendar cannot bring due (too little working time within the
    walk's horizon) is never due: it is left out rather than failing the tenant's pass."""
    found = []
    for r in rules.rules:
        if not r.watches(period.status, period.severity):
            continue
        try:
            when = due_at(r, period.period_at, calendar)
        except NeverDueError:
            continue
        found.append(Due(r, rules.rule_version(r.id), when,
                         firing_key(period.discrepancy_id, r.id, rules.rule_version(r.id),
                                    period.period_seq)))
    return sorted(found, key=Due.sort_key)


def evaluate(period: Period, rules: RuleSet, calendar: BusinessCalendar, *,
             fired: frozenset[str] | set[str], now: datetime) -> Evaluation:
    """What fires now for this period, what waits, and when to look again. `fired` holds
    the keys of firings already recorded."""
    due, pending = [], []
    paused = period.paused_until is not None and period.paused_until > now
    for item in watching(period, rules, calendar):
        if item.key in fired:
            if item.rule.action_type in MOVES:
                return Evaluation([], [], None)  # the period was ended by this firing
            continue
        if item.due_at <= now and not paused:
            due.append(item)
            if item.rule.action_type in MOVES:
                break  # the rest watch a period that this firing ends
        else:
            pending.append(item)
    if due and due[-1].rule.action_type in MOVES:
        pending = []
    next_check = None
    if pending:
        next_check = min(p.due_at for p in pending)
        if paused:
            next_check = max(next_check, period.paused_until)
    return Evaluation(due, pending, next_check)
