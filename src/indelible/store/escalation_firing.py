"""Firing a rule: the appender decisions that record it, exactly once, against the state
under the log-head lock.

One firing is up to three entries on the discrepancy's stream, in one transaction:
  1. `escalation.fired` — keyed by (discrepancy, rule, rule version, period-start entry): a
     second engine, a retry or a pass after an outage finds the key and gets the original
     back, so the firing is recorded once whatever runs it;
  2. for escalate with an upgrade, `discrepancy.severity_changed` (from, to, reason);
  3. for escalate and auto_close, the usual `discrepancy.transitioned` (from, to, reason).
Entry 1 is decided against the period read from the ledger under the lock: a discrepancy a
person moved a moment ago is refused (`NotDueError`), not escalated from a status it no
longer has. Entries 2 and 3 follow only an entry 1 appended in the same transaction (a
shared `_Chain` holds the stream version each link left), so a replayed or refused firing
never moves anything. Several due firings of one discrepancy (after an outage) chain too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from indelible import domain
from indelible.entry import Actor, NewEntry, format_time
from indelible.escalation.calendar import DEFAULT_CALENDAR, NeverDueError
from indelible.escalation.evaluate import Due, Period, due_at
from indelible.escalation.rules import render
from indelible.store.appender import Decision
from indelible.store.discrepancies import DomainRefusedError, stream_of
from indelible.store.errors import AppendRefusedError
from indelible.store.escalation import (CALENDAR_STREAM, PERIOD_PREFIX, RULES_STREAM,
                                       CalendarRecord, PeriodState, RulesRecord)

ENGINE = Actor("engine:escalation", "system", "system")
_SYSTEM = domain.Actor(ENGINE.id, domain.Role.SYSTEM)


class NotDueError(AppendRefusedError):
    """The firing no longer applies to the discrepancy as the ledger has it now."""


class NotNeededError(AppendRefusedError):
    """A follow-up entry with nothing to record (e.g. the severity is already the target)."""


@dataclass
class _Chain:
    """What the links of one discrepancy's firings left in the current attempt: the stream
    version after the last link that appended (None: none yet). An attempt is recognised
    by the period state the batch loaded (a new object per transaction), so a batch the
    group commit retries starts afresh."""

    period: object = None
    version: int | None = None
    broken: bool = False

    def attempt(self, now: PeriodState | None) -> None:
        if self.period is not now:
            self.period, self.version, self.broken = now, None, False


def firing_decisions(period: Period, due: list[Due], rules_version: int, *,
                     fired_at: datetime, calendar_version: int | None = None
                     ) -> list[tuple[Due, list[Decision]]]:
    """Per item of `due` (in order), the decisions recording it: the firing first.
    `calendar_version` is the business calendar the due times were computed under: a
    business-time firing is refused if another is in force under the lock."""
    chain, out = _Chain(), []
    for item in due:
        group = [_fired(period, item, rules_version, fired_at, chain, calendar_version)]
        action = item.rule.action
        if action["type"] == "escalate" and action.get("severity"):
            group.append(_follow(period, item, chain, "severity"))
        if action["type"] in ("escalate", "auto_close"):
            group.append(_follow(period, item, chain, "move"))
        out.append((item, group))
    return out


def _refuse(period: Period, why: str) -> NotDueError:
    return NotDueError(f"discrepancy {period.discrepancy_id}: not fired: {why}")


def _fired(period: Period, item: Due, rules_version: int, fired_at: datetime,
           chain: _Chain, calendar_version: int | None) -> Decision:
    rule = item.rule

    def decide(state: domain.Discrepancy | None, now: PeriodState | None,
               rules: RulesRecord | None, calendar: CalendarRecord | None) -> NewEntry:
        chain.attempt(now)
        # No foreign entry since the batch loaded the period, nor since this chain's last
        # link (an earlier firing of the same pass may have been recorded before: replayed).
        expected = chain.version if chain.version is not None else (now and now.version)
        if chain.broken or state is None or now is None or state.version != expected:
            chain.broken = True
            raise _refuse(period, "it changed since the pass looked")
        status, severity = state.status.value, state.severity.value
        why = None
        if now.period_seq != period.period_seq or status != period.status:
            why = f"it is {status} since seq {now.period_seq}, a new period"
        elif rules is None or rules.version != rules_version:
            why = f"the rules changed (version {rules.version if rules else '?'})"
        elif rule.business_hours and (calendar is None or calendar_version is None
                                      or calendar.version != calendar_version):
            why = (f"the business calendar changed (version "
                   f"{calendar.version if calendar else '?'}) since its due time was computed")
        elif not rule.watches(status, severity):
            why = f"rule {rule.id} does not watch a {severity} discrepancy that is {status}"
        elif (due := _due_by_ledger(rule, now, calendar)) > fired_at:
            # The pass computed its due time from the watch index; the ledger's own period
            # start decides (an edited index row must not make a rule fire early).
            why = f"it is not due until {format_time(due)} (its period began at " \
                  f"{format_time(now.period_at)})"
        elif now.paused_until is not None and now.paused_until > fired_at:
            why = f"escalation is paused until {format_time(now.paused_until)}"
        elif rule.action_type in ("escalate", "auto_close") and not domain.can_move(
                state.status, domain.Role.SYSTEM, _target(rule.action_type),
                investigated=state.investigated):
            why = f"the system may not move it from {status}"
        if why is not None:
            chain.broken = True
            raise _refuse(period, why)
        chain.version = state.version + 1
        return NewEntry(stream=stream_of(period.discrepancy_id), type="escalation.fired",
                        actor=ENGINE, idempotency_key=item.key,
                        data=_fired_data(state, period, replace(item, due_at=due),
                                         rules_version, fired_at))

    return Decision(stream_of(period.discrepancy_id), decide, item.key,
                    reads=(PERIOD_PREFIX + period.discrepancy_id, RULES_STREAM, CALENDAR_STREAM))


def _due_by_ledger(rule, now: PeriodState, calendar: CalendarRecord | None) -> datetime:
    """When the rule falls due for the period as the ledger records it; never, for a
    business-time rule the calendar cannot bring due."""
    try:
        return due_at(rule, now.period_at, calendar.calendar if calendar else DEFAULT_CALENDAR)
    except NeverDueError:
        return datetime.max.replace(tzinfo=timezone.utc)


def _fired_data(state: domain.Discrepancy, period: Period, item: Due, rules_version: int,
                fired_at: datetime) -> dict:
    rule, action = item.rule, item.rule.action
    data = {"rule_id": rule.id, "rule_name": rule.name, "rules_version": rules_version,
            "rule_version": item.rule_version, "action": rule.action_type,
            "period_start_seq": period.period_seq, "period_status": period.status,
            "after": rule.after, "business_hours": rule.business_hours,
            "due_at": format_time(item.due_at), "fired_at": format_time(fired_at)}
    if rule.action_type == "notify":
        data["target"] = action["target"]
        data["message"] = render(action["message"], state.to_dict())[:4000]
    elif rule.action_type == "escalate":
        if action.get("severity") and action["severity"] != state.severity.value:
            data["severity"] = action["severity"]
    else:
        data["reason"] = action["reason"]
    return data


def _target(action_type: str) -> domain.Status:
    return domain.Status.ESCALATED if action_type == "escalate" else domain.Status.AUTO_CLOSED


def _follow(period: Period, item: Due, chain: _Chain, what: str) -> Decision:
    rule = item.rule
    reason = (f"escalation rule {rule.id} ({rule.name}): {period.status} for {rule.after}"
              + (" of business time" if rule.business_hours else ""))
    if rule.action_type == "auto_close":
        reason += f": {rule.action['reason']}"

    def decide(state: domain.Discrepancy | None, now: PeriodState | None) -> NewEntry:
        chain.attempt(now)
        if chain.broken or state is None or chain.version is None \
                or chain.version != state.version:
            raise NotDueError(f"discrepancy {period.discrepancy_id}: {what} not made: its "
                              "firing was not recorded in this transaction")
        if what == "severity":
            target = domain.Severity(rule.action["severity"])
            if state.severity is target:
                raise NotNeededError(f"discrepancy {period.discrepancy_id} is already {target}")
            command = domain.ChangeSeverity(target, reason[:1000])
        else:
            command = domain.Transition(to=_target(rule.action_type), reason=reason[:1000])
        try:
            event = domain.decide(state, command, _SYSTEM, discrepancy_id=period.discrepancy_id)
        except domain.DomainError as e:
            chain.broken = True
            raise DomainRefusedError(e) from e
        chain.version = state.version + 1
        return NewEntry(stream=stream_of(period.discrepancy_id), type=str(event.type),
                        data=event.data, actor=ENGINE, idempotency_key=f"{item.key}:{what}")

    return Decision(stream_of(period.discrepancy_id), decide, f"{item.key}:{what}",
                    reads=(PERIOD_PREFIX + period.discrepancy_id,))


def pause_decision(discrepancy_id: str, entry_actor: Actor, *, pause: bool, reason: str, until: datetime | None, now: datetime) -> Decision:
    """Pause escalation of one discrepancy until `until`, or resume it: decided against the
    discrepancy and its pause as the ledger has them under the lock."""
    stream = stream_of(discrepancy_id)

    def decide(state: domain.Discrepancy | None, period: PeriodState | None) -> NewEntry:
        if state is None:
            raise DomainRefusedError(domain.UnknownDiscrepancyError(discrepancy_id))
        if state.status in domain.TERMINAL:
            raise NotDueError(f"discrepancy {discrepancy_id} is {state.status}: nothing "
                              "escalates it any more")
        paused = period is not None and period.paused_until is not None \
            and period.paused_until > now
        if not pause and not paused:
            raise NotNeededError(f"escalation of discrepancy {discrepancy_id} is not paused")
        data = {"reason": reason}
        if pause:
            data["until"] = format_time(until)
        return NewEntry(stream=stream, type="escalation.paused" if pause else "escalation.resumed",
                        actor=entry_actor, data=data)

    return Decision(stream, decide, reads=(PERIOD_PREFIX + discrepancy_id,))
