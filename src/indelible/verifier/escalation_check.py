"""What `indelible verify` checks of each escalation firing, from the ledger alone: it names a
rule set version the log holds (0: the built-in default), a rule of that version with the
rule version it claims, and the entry that really began the discrepancy's period then."""

from __future__ import annotations

from datetime import datetime, timedelta

from indelible.escalation.rules import DEFAULT_RULES, RuleSet
from indelible.store import escalation
from indelible.store.appender import Change


class FiringCheck:
    def __init__(self) -> None:
        self.rule_sets: dict[int, RuleSet] = {0: DEFAULT_RULES}
        self.periods: dict[str, tuple[int, str]] = {}  # stream -> (seq, status) of its period
        self.began: dict[str, str] = {}  # stream -> when its period began (the entry's `at`)

    def config(self, change: Change) -> None:
        """A rules or calendar entry (in seq order, before the firings that cite it)."""
        if change.stream == escalation.RULES_STREAM:
            rules = escalation.rules_of(change).rules
            self.rule_sets[rules.version] = rules

    def entry(self, stream: str, seq: int, document: dict) -> str | None:
        """A discrepancy entry; the problem with it, if it is a firing that does not hold."""
        kind, data = document["type"], document["data"]
        if kind in escalation.STARTS:
            self.periods[stream] = (seq, data.get("to", "open"))
            self.began[stream] = document["at"]
            return None
        if kind != "escalation.fired":
            return None
        rules = self.rule_sets.get(data["rules_version"])
        if rules is None:
            return f"the firing cites rule set version {data['rules_version']}, which the log " \
                   "never set before it"
        rule = next((r for r in rules.rules if r.id == data["rule_id"]), None)
        if rule is None or rules.rule_version(rule.id) != data["rule_version"] \
                or rule.action_type != data["action"]:
            return f"rule {data['rule_id']!r} version {data['rule_version']} ({data['action']}) " \
                   f"is not in rule set version {data['rules_version']}"
        if self.periods.get(stream) != (data["period_start_seq"], data["period_status"]):
            return f"the firing names period seq {data['period_start_seq']} " \
                   f"({data['period_status']}), but the discrepancy's period began at " \
                   f"{self.periods.get(stream)}"
        return _timing(rule.seconds, self.began[stream], data)


def _timing(seconds: int, began: str, data: dict) -> str | None:
    """A firing is due no earlier than its threshold after the period began (business time
    never runs faster than the clock), and fires no earlier than it is due."""
    try:
        start, due, fired = (datetime.fromisoformat(t.replace("Z", "+00:00"))
                             for t in (began, data["due_at"], data["fired_at"]))
    except (KeyError, TypeError, AttributeError, ValueError):
        return "the firing's due_at or fired_at is not an RFC 3339 time"
    if due.tzinfo is None or fired.tzinfo is None or start.tzinfo is None:
        return "the firing's due_at or fired_at has no UTC offset"
    if due < start + timedelta(seconds=seconds):
        after = data.get("after", f"{seconds} s")
        return (f"the firing says it was due at {data['due_at']}, before {after} had passed "
                f"since its period began at {began}")
    if fired < due:
        return f"the firing says it fired at {data['fired_at']}, before it was due at " \
               f"{data['due_at']}"
    return None
