"""A tenant's escalation rules: what they say, how they are checked, how they are stored.

A rules document (JSON, or the same in YAML)::

    {"rules": [
      {"id": "high-4h-notify", "name": "High open 4h: tell compliance", "severity": "high",
       "statuses": ["open", "acknowledged"], "after": "PT4H", "priority": 10,
       "action": {"type": "notify", "target": "compliance_manager",
                  "message": "{external_ref} ({currency} {difference}) open for 4h"}},
      {"id": "high-24h-escalate", "name": "High open 24h: escalate", "severity": "high",
       "after": "P1D", "priority": 20, "action": {"type": "escalate", "severity": "critical"}}
    ]}

Per rule: ``severity`` is a level or ``*``; ``statuses`` default to open and acknowledged;
``after`` is the threshold, measured from when the discrepancy entered its current status,
in wall-clock time or, with ``"business_hours": true``, in the tenant's business hours;
``priority`` (default 100) orders rules falling due at the same moment (lower first);
``enabled`` defaults to true. An action is ``notify`` (``target``: a role or a named
channel; ``message``: a template over the discrepancy's fields), ``escalate`` (optional
``severity`` to upgrade to) or ``auto_close`` (``reason``). Every refusal names the rule,
the field and the reason (:class:`~indelible.domain.InvalidCommandError`, field
``rules[<id>].<field>``).

Each stored version also records, per rule, ``rule_versions[id]``: the rule-set version
since which that rule has obliged the same thing (`Rule.obligation`: not its name
or priority). A firing is keyed by it, so changing one
rule does not fire the others again, and a rule that now says something else is a new
obligation.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from indelible.domain.discrepancy import Severity
from indelible.domain.errors import InvalidCommandError
from indelible.domain.lifecycle import TERMINAL, Status
from indelible.escalation.durations import DurationError, parse_duration

__all__ = ["Rule", "RuleSet", "DEFAULT_RULES", "TEMPLATE_FIELDS", "parse_rules"]

MAX_RULES = 100
MAX_NAME = 200
MAX_MESSAGE = 2000
MAX_REASON = 1000
DEFAULT_PRIORITY = 100
DEFAULT_STATUSES = ("open", "acknowledged")
ACTIONS = ("notify", "escalate", "auto_close")
# The statuses from which the system may make each move (domain.lifecycle.TRANSITIONS):
# a rule that watches another status could never act, so it is refused when it is set.
ACTION_STATUSES = {"escalate": {"open", "acknowledged", "investigating"},
                   "auto_close": {"open", "acknowledged"}}
# What a notify message may name: the discrepancy's own fields.
TEMPLATE_FIELDS = frozenset({"id", "external_ref", "source", "kind", "expected_amount",
                             "actual_amount", "currency", "difference", "severity", "status",
                             "assignee", "detected_at", "opened_at"})
_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_TARGET = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,99}")
_RULE_FIELDS = {"id", "name", "severity", "statuses", "after", "business_hours", "priority",
                "action", "enabled"}
_ACTION_FIELDS = {"notify": {"type", "target", "message"}, "escalate": {"type", "severity"},
                  "auto_close": {"type", "reason"}}


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str  # a Severity value, or "*"
    statuses: tuple[str, ...]
    after: str  # the ISO 8601 text as given
    seconds: int  # the threshold
    business_hours: bool
    priority: int
    action: Mapping  # {"type": ..., ...} as given, checked
    enabled: bool = True

    @property
    def action_type(self) -> str:
        return self.action["type"]

    def obligation(self) -> tuple:
        """What the rule obliges: whom it watches, after how long, what it does, and whether
        it is in force. Its name and priority are not part of it, so renaming or reordering
        a rule does not make it fire again for a period it already fired in."""
        return (self.severity, self.statuses, self.seconds, self.business_hours, self.enabled,
                tuple(sorted((k, str(v)) for k, v in self.action.items())))

    def watches(self, status: str, severity: str) -> bool:
        return self.enabled and status in self.statuses and self.severity in ("*", severity)

    def to_dict(self) -> dict:
        out = {"id": self.id, "name": self.name, "severity": self.severity,
               "statuses": list(self.statuses), "after": self.after, "priority": self.priority,
               "action": dict(self.action), "enabled": self.enabled}
        if self.business_hours:
            out["business_hours"] = True
        return out


@dataclass(frozen=True)
class RuleSet:
    """The rules in force; `version` is the stream version of the entry that set them (0:
    the built-in default, before any entry) and `rule_versions` each rule's own version."""

    rules: tuple[Rule, ...]
    version: int = 0
    rule_versions: Mapping[str, int] = field(default_factory=dict)

    def rule_version(self, rule_id: str) -> int:
        return self.rule_versions.get(rule_id, self.version)

    def to_dict(self) -> dict:
        return {"rules": [r.to_dict() for r in self.rules]}

    def versioned(self, version: int, previous: RuleSet | None) -> RuleSet:
        """This set as version `version`, each rule keeping the version of `previous`'s rule
        of the same id when it says the same thing."""
        before = {r.id: r for r in previous.rules} if previous else {}
        versions = {r.id: (previous.rule_version(r.id)
                           if previous and r.id in before
                           and before[r.id].obligation() == r.obligation() else version)
                    for r in self.rules}
        return RuleSet(self.rules, version, versions)


def _fail(rule_id: str, name: str, reason: str) -> InvalidCommandError:
    return InvalidCommandError(f"rules[{rule_id}].{name}", reason)


def parse_rules(document: object) -> RuleSet:
    """Check a rules document (see the module); the version is left at 0."""
    if not isinstance(document, Mapping):
        raise InvalidCommandError("rules", "the document must be an object {\"rules\": [...]}")
    unknown = sorted(set(document) - {"rules"})
    if unknown:
        raise InvalidCommandError(unknown[0], "unknown field; a rules document has only \"rules\"")
    items = document.get("rules")
    if not isinstance(items, list):
        raise InvalidCommandError("rules", "must be a list of rules")
    if len(items) > MAX_RULES:
        raise InvalidCommandError("rules", f"at most {MAX_RULES} rules")
    rules, seen = [], set()
    for index, item in enumerate(items):
        rule = _parse_rule(item, index)
        if rule.id in seen:
            raise _fail(rule.id, "id", "is used by two rules; ids must be unique")
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(tuple(rules))


def _parse_rule(item: object, index: int) -> Rule:
    if not isinstance(item, Mapping):
        raise InvalidCommandError(f"rules[{index}]", "must be an object")
    rule_id = item.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise InvalidCommandError(f"rules[{index}].id", "required: 1-64 of a-z, 0-9, '_.-', "
                                  "starting with a letter or digit")
    unknown = sorted(set(item) - _RULE_FIELDS)
    if unknown:
        raise _fail(rule_id, unknown[0], f"unknown field; a rule has {sorted(_RULE_FIELDS)}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _fail(rule_id, "name", f"required: a non-blank string of at most {MAX_NAME}")
    severity = item.get("severity")
    if severity != "*" and severity not in {s.value for s in Severity}:
        raise _fail(rule_id, "severity", "required: low, medium, high, critical or \"*\"")
    statuses = item.get("statuses", list(DEFAULT_STATUSES))
    if (not isinstance(statuses, list) or not statuses
            or not all(isinstance(s, str) for s in statuses)):
        raise _fail(rule_id, "statuses", "must be a non-empty list of statuses")
    for status in statuses:
        if status not in {s.value for s in Status} or Status(status) in TERMINAL:
            raise _fail(rule_id, "statuses", f"{status!r} is not a status a discrepancy can "
                        "linger in (open, acknowledged, investigating, escalated)")
    if len(set(statuses)) != len(statuses):
        raise _fail(rule_id, "statuses", "lists a status twice")
    try:
        seconds = parse_duration(item.get("after"))
    except DurationError as e:
        raise _fail(rule_id, "after", str(e)) from None
    business = item.get("business_hours", False)
    priority = item.get("priority", DEFAULT_PRIORITY)
    enabled = item.get("enabled", True)
    if not isinstance(business, bool):
        raise _fail(rule_id, "business_hours", "must be true or false")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 10**6:
        raise _fail(rule_id, "priority", "must be an integer from 0 to 1000000")
    if not isinstance(enabled, bool):
        raise _fail(rule_id, "enabled", "must be true or false")
    action = _parse_action(rule_id, item.get("action"), statuses)
    return Rule(rule_id, name, severity, tuple(statuses), item["after"], seconds, business,
                priority, action, enabled)


def _parse_action(rule_id: str, action: object, statuses: list[str]) -> dict:
    if not isinstance(action, Mapping) or action.get("type") not in ACTIONS:
        raise _fail(rule_id, "action.type", "required: notify, escalate or auto_close")
    kind = action["type"]
    unknown = sorted(set(action) - _ACTION_FIELDS[kind])
    if unknown:
        raise _fail(rule_id, f"action.{unknown[0]}", f"unknown field for a {kind} action")
    if kind in ACTION_STATUSES:
        cannot = [s for s in statuses if s not in ACTION_STATUSES[kind]]
        if cannot:
            raise _fail(rule_id, "statuses", f"{kind} cannot act on a discrepancy that is "
                        f"{cannot[0]}; allowed: {sorted(ACTION_STATUSES[kind])}")
    if kind == "notify":
        target = action.get("target")
        if not isinstance(target, str) or not _TARGET.fullmatch(target):
            raise _fail(rule_id, "action.target", "required: a role (compliance_manager) or a "
                        "named channel (a-z, 0-9, '_.:-')")
        _check_template(rule_id, action.get("message"))
    elif kind == "escalate":
        upgrade = action.get("severity")
        if upgrade is not None and upgrade not in {s.value for s in Severity}:
            raise _fail(rule_id, "action.severity", "must be low, medium, high or critical")
    else:
        reason = action.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise _fail(rule_id, "action.reason", f"required: a non-blank string of at most "
                        f"{MAX_REASON}")
    return dict(action)


def _check_template(rule_id: str, message: object) -> None:
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
        raise _fail(rule_id, "action.message", f"required: a non-blank template of at most "
                    f"{MAX_MESSAGE} characters")
    try:
        parts = list(string.Formatter().parse(message))
    except ValueError as e:
        raise _fail(rule_id, "action.message", f"not a template: {e}") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS or spec or conversion:
            raise _fail(rule_id, "action.message", f"{{{name}}} is not a field it may name; "
                        f"fields: {', '.join(sorted(TEMPLATE_FIELDS))} (write {{{{ for a brace)")


def render(message: str, fields: Mapping[str, object]) -> str:
    """A checked template filled with a discrepancy's fields (None shows as "-")."""
    return message.format_map({k: "-" if fields.get(k) is None else fields[k]
                               for k in TEMPLATE_FIELDS})


# A new tenant's rules (issue 11): high severity open for 4 hours → tell the compliance
# manager; open for 24 hours → escalate, upgraded to critical. The tenant can change them.
# This is "rule set version 0", which firings and `indelible verify` cite by number: it must
# never change (a test pins it); a different default would need a ledger entry of its own.
DEFAULT_RULES = parse_rules({"rules": [
    {"id": "high-4h-notify", "name": "High open 4h: tell compliance", "severity": "high",
     "statuses": ["open", "acknowledged"], "after": "PT4H", "priority": 10,
     "action": {"type": "notify", "target": "compliance_manager",
                "message": "{external_ref} ({currency} {difference}) open for 4h"}},
    {"id": "high-24h-escalate", "name": "High open 24h: escalate", "severity": "high",
     "statuses": ["open", "acknowledged"], "after": "P1D", "priority": 20,
     "action": {"type": "escalate", "severity": "critical"}},
]})
