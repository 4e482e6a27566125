"""Escalation use cases: set rules and the calendar, run a pass, preview, view, pause.

A pass (`run_pass`), for one tenant and a clock:
  1. reads the periods whose next-check bound has passed (one index probe: with nothing
     due it reads no discrepancy), and the rules and calendar in force;
  2. evaluates each (pure, deterministic: `escalation.evaluate`), skipping firings the
     ledger already holds;
  3. appends every due firing in one group of decisions (store/escalation_firing.py),
     each decided under the log-head lock and keyed so it is recorded once;
  4. moves each bound to the next time a rule of that period falls due.
Refused firings (the discrepancy moved meanwhile) keep their bound, so the next pass
looks at the new period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg

from indelible import domain
from indelible.entry import format_time
from indelible.escalation.calendar import BusinessCalendar
from indelible.escalation.evaluate import Period, evaluate, watching
from indelible.escalation.rules import RuleSet
from indelible.store import escalation as store
from indelible.store.appender import Appended
from indelible.store.escalation_firing import (NotDueError, NotNeededError, firing_decisions,
                                               pause_decision)
from indelible.store.discrepancies import DomainRefusedError
from indelible.usecases.principal import Ledger, Principal

PASS_LIMIT = 5_000  # periods looked at per round of a pass
MAX_PAUSE_DAYS = 366


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Fired:
    discrepancy_id: str
    rule_id: str
    action: str
    due_at: str
    seq: int | None  # the escalation.fired entry; None when refused
    replayed: bool = False  # recorded before (another engine, an earlier pass)
    refused: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class PassResult:
    tenant: str
    now: str
    looked_at: int = 0
    fired: list[Fired] = field(default_factory=list)

    @property
    def new(self) -> list[Fired]:
        """The firings this pass recorded (not found recorded before, not refused)."""
        return [f for f in self.fired if not f.replayed and not f.refused]

    def to_dict(self) -> dict:
        return {"tenant": self.tenant, "now": self.now, "looked_at": self.looked_at,
                "fired": [f.to_dict() for f in self.fired if not f.replayed and not f.refused],
                "already_recorded": sum(f.replayed for f in self.fired),
                "refused": [f.to_dict() for f in self.fired if f.refused]}


# -- rules and calendar --------------------------------------------------------------------

# Who may change the rules and the calendar (the API and the console both ask this).
SETTERS = ("compliance_manager", "admin")


async def set_rules(ledger: Ledger, who: Principal, conn_read: Callable, rules: RuleSet, *,
                    reason: str, expected_version: int) -> store.RulesRecord:
    """Put `rules` in force (VersionConflictError when another change came first;
    PermissionRefusedError for a role outside SETTERS)."""
    if who.role not in SETTERS:
        raise domain.PermissionRefusedError(action="change the escalation rules", role=who.role,
                                            allowed_roles=list(SETTERS))
    previous = await conn_read(store.current_rules)
    entry = store.rules_change(rules, previous, reason=reason, actor=who.entry_actor(),
                               expected_version=expected_version)
    appended = await ledger.append(who.tenant, entry)
    return appended.state


async def set_calendar(ledger: Ledger, who: Principal, calendar: BusinessCalendar, *,
                       reason: str, expected_version: int) -> store.CalendarRecord:
    entry = store.calendar_change(calendar, reason=reason, actor=who.entry_actor(),
                                  expected_version=expected_version)
    appended = await ledger.append(who.tenant, entry)
    return appended.state


# -- passes --------------------------------------------------------------------------------

def _evaluate_all(conn, tenant: str, periods: list[Period], rules: store.RulesRecord,
                  calendar: store.CalendarRecord, now: datetime, *, probe: bool = True):
    """Each period's evaluation. With `probe`, the firings the ledger already holds are
    looked up first (a preview, a view). A pass does not: it submits what is due, and the
    appender's key check, inside the transaction, answers a recorded one with the original
    entry (the same look-up, made once, where it counts)."""
    fired = set()
    if probe:  # only what is due now can have fired for this period
        keys = [d.key for p in periods for d in watching(p, rules.rules, calendar.calendar)
                if d.due_at <= now]
        fired = store.recorded_keys(conn, tenant, keys)
    return [(p, evaluate(p, rules.rules, calendar.calendar, fired=fired, now=now))
            for p in periods]


async def run_pass(ledger: Ledger, read: Callable, tenant: str, *,
                   now: datetime | None = None, limit: int = PASS_LIMIT) -> PassResult:
    """One pass for `tenant` at `now` (default: the clock). `read(fn, *args)` runs
    `fn(conn, tenant, *args)` on a connection scoped to the tenant."""
    now = now or utcnow()
    result = PassResult(tenant, format_time(now))
    while True:
        candidates, rules, evaluated = await read(_look, now, limit)
        result.looked_at += len(candidates)
        commands, plan = [], []
        for candidate, (period, ev) in zip(candidates, evaluated):
            groups = firing_decisions(period, ev.due, rules.version, fired_at=now)
            plan.append((candidate, ev, [(due, len(group)) for due, group in groups]))
            commands += [d for _, group in groups for d in group]
        outcomes = await ledger.append_all(tenant, commands) if commands else []
        moves, at = [], 0
        for candidate, ev, groups in plan:
            refused = False
            for due, size in groups:
                refused |= _record(result, candidate.period, due, outcomes[at:at + size])
                at += size
            bound = min(d.due_at for d in ev.due) if refused else ev.next_check
            moves.append((candidate.period.discrepancy_id, candidate.stamp, bound))
        if moves:
            await read(_move, moves)
        if len(candidates) < limit:
            return result


def _look(conn, tenant: str, now: datetime, limit: int):
    candidates = store.due_candidates(conn, tenant, now, limit)
    if not candidates:  # the common case: one index probe, nothing else read
        return [], None, []
    rules, calendar = store.current_rules(conn, tenant), store.current_calendar(conn, tenant)
    evaluated = _evaluate_all(conn, tenant, [c.period for c in candidates], rules, calendar, now,
                              probe=False)
    return candidates, rules, evaluated


def _move(conn, tenant: str, moves) -> None:
    store.move_bounds(conn, tenant, moves)


_EXPECTED = (NotDueError, NotNeededError, DomainRefusedError)


def _record(result: PassResult, period: Period, due, outcomes: list) -> bool:
    """Add one firing's outcomes to the result; True if the firing was refused. A refusal
    other than "no longer due" (a store failure, a bug) is raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, _EXPECTED):
            raise outcome
    first = outcomes[0]
    base = dict(discrepancy_id=period.discrepancy_id, rule_id=due.rule.id,
                action=due.rule.action_type, due_at=format_time(due.due_at))
    if isinstance(first, Appended):
        result.fired.append(Fired(**base, seq=first.seq, replayed=first.replayed))
        return False
    result.fired.append(Fired(**base, seq=None, refused=str(first)))
    return True


# -- preview and views ---------------------------------------------------------------------

PREVIEW_LIMIT = 100_000  # open discrepancies a preview evaluates
PREVIEW_LISTED = 1_000  # firings it lists (the rest are counted)


def preview(conn, tenant: str, proposed: RuleSet, *, now: datetime | None = None) -> dict:
    """What `proposed` would fire now and later against the tenant's open discrepancies,
    and why; writes nothing. Unchanged rules keep their versions, so what they already
    fired is shown as fired, not again."""
    now = now or utcnow()
    current = store.current_rules(conn, tenant)
    rules = proposed.versioned(current.version + 1, current.rules)
    calendar = store.current_calendar(conn, tenant)
    periods = store.open_periods(conn, tenant, limit=PREVIEW_LIMIT)
    record = store.RulesRecord(rules)
    items, counts = [], {"due_now": 0, "due_later": 0, "already_fired": 0, "held_by_pause": 0}
    for period, ev in _evaluate_all(conn, tenant, periods, record, calendar, now):
        for when, group in (("due_now", ev.due), ("due_later", ev.pending)):
            for d in group:
                if when == "due_later" and period.paused_until and d.due_at <= now:
                    when = "held_by_pause"
                counts[when] += 1
                if len(items) < PREVIEW_LISTED:
                    items.append(_why(period, d, when))
        fired = {d.key for d in watching(period, rules, calendar.calendar)} - \
            {d.key for d in ev.due + ev.pending}
        counts["already_fired"] += len(fired)
    return {"tenant": tenant, "now": format_time(now), "based_on_version": current.version,
            "discrepancies": len(periods), "counts": counts, "firings": items,
            "listed": len(items), "calendar_version": calendar.version}


def _why(period: Period, d, when: str) -> dict:
    rule = d.rule
    clock = "business time" if rule.business_hours else "wall-clock time"
    return {"discrepancy_id": period.discrepancy_id, "rule_id": rule.id, "action": rule.action_type,
            "when": when, "due_at": format_time(d.due_at),
            "why": f"{period.severity} discrepancy {period.status} since "
                   f"{format_time(period.period_at)} (seq {period.period_seq}); rule "
                   f"{rule.id} acts after {rule.after} of {clock}"}


def escalation_view(conn, tenant: str, discrepancy_id: str, *,
                    now: datetime | None = None) -> dict | None:
    """Which rules watch the discrepancy, when each is next due, and what already fired."""
    now = now or utcnow()
    period = store.period_of(conn, tenant, discrepancy_id)
    if period is None:
        return None
    rules, calendar = store.current_rules(conn, tenant), store.current_calendar(conn, tenant)
    watched = watching(period, rules.rules, calendar.calendar)
    fired = store.recorded_keys(conn, tenant, [d.key for d in watched])
    ev = evaluate(period, rules.rules, calendar.calendar, fired=fired, now=now)
    due, pending = {d.key for d in ev.due}, {d.key for d in ev.pending}
    paused = period.paused_until is not None and period.paused_until > now
    return {
        "discrepancy_id": discrepancy_id, "status": period.status, "severity": period.severity,
        "period_start_seq": period.period_seq, "period_started_at": format_time(period.period_at),
        "paused_until": format_time(period.paused_until) if paused else None,
        "rules_version": rules.version, "calendar_version": calendar.version,
        "watching": [{"rule_id": d.rule.id, "rule_name": d.rule.name,
                      "action": d.rule.action_type, "rule_version": d.rule_version,
                      "due_at": format_time(d.due_at),
                      "state": ("fired" if d.key in fired else "due" if d.key in due
                                else "pending" if d.key in pending else "ends_with_period")}
                     for d in watched],
        "history": store.firings(conn, tenant, discrepancy_id),
    }


async def pause(ledger: Ledger, who: Principal, discrepancy_id: str, *, reason: str,
                until: datetime, now: datetime | None = None) -> Appended:
    """Hold every rule of one discrepancy until `until` (a compliance manager's call)."""
    now = now or utcnow()
    _require_manager(who, "pause escalation")
    _check_reason(reason)
    if until.tzinfo is None:
        raise domain.InvalidCommandError("until", "must carry a time zone offset")
    if not now < until <= now.replace(year=now.year + 1):
        raise domain.InvalidCommandError("until", "must be in the future, at most a year ahead")
    return await _append(ledger, who, pause_decision(
        discrepancy_id, who.entry_actor(), pause=True, reason=reason,
        until=until.astimezone(timezone.utc), now=now))


async def resume(ledger: Ledger, who: Principal, discrepancy_id: str, *, reason: str,
                 now: datetime | None = None) -> Appended:
    _require_manager(who, "resume escalation")
    _check_reason(reason)
    return await _append(ledger, who, pause_decision(
        discrepancy_id, who.entry_actor(), pause=False, reason=reason,
        until=None, now=now or utcnow()))


def _check_reason(reason: str) -> None:
    from indelible.domain.validation import check_text

    check_text(reason, "reason", max_len=1000)


def _require_manager(who: Principal, action: str) -> None:
    """Pausing is the compliance manager's call (issue 11), whoever relays it."""
    if who.role != domain.Role.COMPLIANCE_MANAGER:
        raise domain.PermissionRefusedError(action=action, role=who.role,
                                            allowed_roles=[domain.Role.COMPLIANCE_MANAGER.value])


async def _append(ledger: Ledger, who: Principal, decision) -> Appended:
    try:
        return await ledger.append(who.tenant, decision)
    except DomainRefusedError as e:
        raise e.error from e


def tenants(conn: psycopg.Connection) -> list[str]:
    return [t for (t,) in conn.execute("SELECT tenant_id FROM tenants ORDER BY tenant_id")]
