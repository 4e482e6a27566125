"""The discrepancy lifecycle: statuses, roles, and the one table of allowed moves.

How a discrepancy moves (DESIGN §7)::

    open ──► acknowledged ──► investigating ──► resolved
      │            │              │   ▲
      │            │              ▼   │ (de-escalate)
      ├────────────┴──────────► escalated ──► resolved
      └──► auto_closed (engine, only before anyone investigates)

Who makes which move is :data:`TRANSITIONS`, read a row at a time: *from this status,
this role may move to these statuses*. Every (status, role) pair has its own line, so a
missing permission is visible as an empty set rather than an absent key.

- **analyst** works cases: acknowledges, investigates, resolves what they investigated.
- **compliance_manager** does everything an analyst does, and also escalates,
  de-escalates (escalated → investigating) and resolves escalated cases.
- **system** (reconciliation engine, escalation engine) escalates cases left unattended
  and auto-closes cases nobody has started investigating; it never resolves.
- **admin** configures the tenant and does not work cases; **auditor** only reads.

Two rules sit beside the table:

1. a discrepancy cannot be resolved unless it was investigated at some point (the state
   keeps ``investigated``; moving to ``investigating`` sets it for good);
2. terminal statuses (:data:`TERMINAL`) accept no move at all — their rows are empty.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TERMINAL", "TRANSITIONS", "Role", "Status", "allowed_moves", "can_move"]


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    AUTO_CLOSED = "auto_closed"


class Role(StrEnum):
    ANALYST = "analyst"
    COMPLIANCE_MANAGER = "compliance_manager"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"


OPEN, ACKNOWLEDGED, INVESTIGATING = Status.OPEN, Status.ACKNOWLEDGED, Status.INVESTIGATING
RESOLVED, ESCALATED, AUTO_CLOSED = Status.RESOLVED, Status.ESCALATED, Status.AUTO_CLOSED
ANALYST, MANAGER, AUDITOR = Role.ANALYST, Role.COMPLIANCE_MANAGER, Role.AUDITOR
ADMIN, SYSTEM = Role.ADMIN, Role.SYSTEM
NOTHING: frozenset[Status] = frozenset()


def to(*statuses: Status) -> frozenset[Status]:
    return frozenset(statuses)


TERMINAL: frozenset[Status] = frozenset({RESOLVED, AUTO_CLOSED})

# from status:   {role:  may move to}
TRANSITIONS: dict[Status, dict[Role, frozenset[Status]]] = {
    OPEN: {
        ANALYST: to(ACKNOWLEDGED, INVESTIGATING),
        MANAGER: to(ACKNOWLEDGED, INVESTIGATING, ESCALATED),
        SYSTEM:  to(ESCALATED, AUTO_CLOSED),
        ADMIN:   NOTHING,
        AUDITOR: NOTHING,
    },
    ACKNOWLEDGED: {
        ANALYST: to(INVESTIGATING),
        MANAGER: to(INVESTIGATING, ESCALATED),
        SYSTEM:  to(ESCALATED, AUTO_CLOSED),
        ADMIN:   NOTHING,
        AUDITOR: NOTHING,
    },
    INVESTIGATING: {
        ANALYST: to(RESOLVED),
        MANAGER: to(RESOLVED, ESCALATED),
        SYSTEM:  to(ESCALATED),
        ADMIN:   NOTHING,
        AUDITOR: NOTHING,
    },
    ESCALATED: {
        ANALYST: NOTHING,
        MANAGER: to(INVESTIGATING, RESOLVED),
        SYSTEM:  NOTHING,
        ADMIN:   NOTHING,
        AUDITOR: NOTHING,
    },
    RESOLVED: {
        ANALYST: NOTHING,
        MANAGER: NOTHING,
        SYSTEM:  NOTHING,
        ADMIN:   NOTHING,
        AUDITOR: NOTHING,
    },
    AUTO_CLOSED: {
        ANALYST: NOTHING,
        MANAGER: NOTHING,
        SYSTEM:  NOTHING,
        ADMIN:   NOTHING,
        AUDITOR: NOTHING,
    },
}

_ORDER = {status: index for index, status in enumerate(Status)}


def allowed_moves(status: Status, role: Role, *, investigated: bool) -> list[Status]:
    """The statuses ``role`` may move a discrepancy to from ``status``, in lifecycle order.

    ``investigated`` says whether the discrepancy was ever investigating; without it,
    ``resolved`` is never offered (rule 1 of the module docstring).
    """
    moves = TRANSITIONS[Status(status)][Role(role)]
    return sorted((s for s in moves if investigated or s is not RESOLVED), key=_ORDER.__getitem__)


def can_move(status: Status, role: Role, target: Status, *, investigated: bool) -> bool:
    """Whether ``role`` may move a discrepancy from ``status`` to ``target`` now."""
    return Status(target) in allowed_moves(status, role, investigated=investigated)
