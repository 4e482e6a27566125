"""Deciding: may this actor do this to this discrepancy now, and which event records it.

:func:`decide` is pure: the storage layer calls it inside the appending transaction with
the state it has just re-read, appends the returned event, and folds it with
:func:`~.discrepancy.evolve` before deciding the next command of the same batch. A
refusal is raised, never returned, and the state is left as it was.

Checks, in this order (the first that fails answers):

1. the role may issue this kind of command at all — :data:`PERMISSIONS` below; a status
   move is governed by :data:`~.lifecycle.TRANSITIONS` instead;
2. the discrepancy exists (for opening: a second report of the same source and
   external_ref amends it, or is refused as a duplicate when it changes nothing —
   see :func:`_report_again`);
3. it is not in a terminal status — comments excepted, since annotating a closed case
   is normal in compliance work;
4. the command changes something, and a move is allowed from here for this role.
"""

from __future__ import annotations

from collections.abc import Callable

from .commands import (
    Actor,
    Assign,
    AttachEvidence,
    ChangeSeverity,
    Command,
    Comment,
    OpenDiscrepancy,
    Transition,
)
from .discrepancy import Discrepancy
from .errors import (
    ClosedDiscrepancyError,
    DuplicateDiscrepancyError,
    StaleReportError,
    NoChangeError,
    PermissionRefusedError,
    TransitionRefusedError,
    UnknownDiscrepancyError,
)
from .events import Event, EventType
from .lifecycle import TERMINAL, TRANSITIONS, Role, Status, allowed_moves
from .money import format_amount
from .severity import BUILT_IN, SeverityPolicy

__all__ = ["PERMISSIONS", "decide"]

ANALYST, MANAGER, SYSTEM = Role.ANALYST, Role.COMPLIANCE_MANAGER, Role.SYSTEM

# command:         roles that may issue it (auditor and admin: nothing)
PERMISSIONS: dict[type, frozenset[Role]] = {
    OpenDiscrepancy: frozenset({ANALYST, MANAGER, SYSTEM}),
    Assign:          frozenset({ANALYST, MANAGER}),
    Comment:         frozenset({ANALYST, MANAGER}),
    AttachEvidence:  frozenset({ANALYST, MANAGER}),
    ChangeSeverity:  frozenset({MANAGER, SYSTEM}),
}

_ACTIONS = {
    OpenDiscrepancy: "open a discrepancy",
    Assign: "assign",
    Comment: "comment",
    AttachEvidence: "attach evidence",
    ChangeSeverity: "change severity",
}

def decide(state: Discrepancy | None, command: Command, actor: Actor, *,
           discrepancy_id: str, severity_policy: SeverityPolicy = BUILT_IN) -> Event:
    """The event that records ``command`` by ``actor`` on the discrepancy in ``state``.

    ``state`` is None when nothing was recorded under ``discrepancy_id``. For
    :class:`OpenDiscrepancy`, ``discrepancy_id`` is the id to give the new discrepancy
    and ``state`` the one already recorded for the same source and external_ref, if any
    (the report then amends it, see :func:`_report_again`); ``severity_policy`` assigns
    the severity of a new one when the command gives none.
    Raises a :class:`~.errors.RefusedError` subclass when the command is not allowed.
    """
    if not isinstance(actor, Actor):
        raise TypeError(f"actor must be an Actor, not {type(actor).__name__}")
    if not isinstance(discrepancy_id, str) or not discrepancy_id:
        raise ValueError("discrepancy_id must be a non-empty string")
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(f"not a discrepancy command: {type(command).__name__}")
    if state is not None and type(command) is not OpenDiscrepancy and state.id != discrepancy_id:
        raise ValueError(f"state is discrepancy {state.id}, not {discrepancy_id}")
    if type(command) is OpenDiscrepancy:
        return _open(state, command, actor, discrepancy_id, severity_policy)
    return handler(state, command, actor, discrepancy_id)


def _require_role(command: Command, actor: Actor, discrepancy_id: str | None) -> None:
    roles = PERMISSIONS[type(command)]
    if actor.role not in roles:
        raise PermissionRefusedError(
            action=_ACTIONS[type(command)], role=actor.role.value,
            allowed_roles=[role.value for role in Role if role in roles],
            discrepancy_id=discrepancy_id,
        )


def _existing(state: Discrepancy | None, discrepancy_id: str) -> Discrepancy:
    if state is None:
        raise UnknownDiscrepancyError(discrepancy_id)
    return state


def _open_case(state: Discrepancy | None, command: Command, discrepancy_id: str) -> Discrepancy:
    """The existing, non-terminal discrepancy a case-work command applies to."""
    state = _existing(state, discrepancy_id)
    if state.status in TERMINAL:
        raise ClosedDiscrepancyError(discrepancy_id=state.id, status=state.status.value,
                                     action=_ACTIONS[type(command)])
    return state


def _open(state, command: OpenDiscrepancy, actor: Actor, discrepancy_id: str,
          policy: SeverityPolicy) -> Event:
    _require_role(command, actor, None)
    if state is not None:
        if (state.source, state.external_ref) != (command.source, command.external_ref):
            raise ValueError(f"state is discrepancy {state.id}, reported under another ref")
        return _report_again(state, command)
    if command.severity is not None:
        severity, basis = command.severity, {"severity_basis": "reported"}
    else:
        severity, basis = policy.assign(command.difference, command.currency)
    return Event(EventType.OPENED.value, {
        **basis,
        "id": discrepancy_id,
        "external_ref": command.external_ref,
        "source": command.source,
        "kind": command.kind.value,
        "expected_amount": command.expected_amount,
        "actual_amount": command.actual_amount,
        "currency": command.currency,
        "difference": format_amount(command.difference, command.currency),
        "severity": severity.value,
        "detected_at": command.detected_at,
        "metadata": command.metadata,
        "transaction_refs": list(command.transaction_refs),
    })


# What a re-report may change: the reported facts a reviewer decides on. Not detected_at
# (engines re-run and re-detect the same difference; each run would otherwise be an
# amendment), not metadata or transaction_refs (context, not the finding), not severity
# (assigned once; changing it is its own move, with a reason).
AMENDABLE = ("kind", "expected_amount", "actual_amount", "currency")


def _reported(d: Discrepancy | OpenDiscrepancy) -> dict:
    facts = {field: str(getattr(d, field)) for field in AMENDABLE}
    facts["difference"] = (d.difference if isinstance(d, Discrepancy)
                           else format_amount(d.difference, d.currency))
    return facts


def _report_again(state: Discrepancy, command: OpenDiscrepancy) -> Event:
    """The same source and external_ref reported again.

    Nothing a reconciliation engine says may disappear, and refusing would lose it for any
    engine that does not act on a refusal (a 409 retried forever, a dead letter nobody
    reads), so different facts are recorded as an amendment in the discrepancy's own
    timeline, naming each changed field with its value before and after. Identical facts
    are a retry: DuplicateDiscrepancyError, and the caller answers with what is recorded.

    A resolved or auto-closed discrepancy is amended too, and keeps its status: the report
    is a fact whatever was decided, and the trail must show it beside the decision. Its
    resolution snapshot stays frozen as it was decided; reviewers see the amendment after
    the resolution in the history (reopening is not a move the lifecycle offers).
    """
    before, after = _reported(state), _reported(command)
    changed = [field for field in AMENDABLE if before[field] != after[field]]
    if not changed:
        raise DuplicateDiscrepancyError(existing_id=state.id, source=state.source,
                                        external_ref=state.external_ref)
    # An older report arriving late (a redelivery, a retry) must not roll a later amendment
    # back; it is refused with its reason (so over NATS it is dead-lettered, not lost).
    reported_at = state.reported_at or state.detected_at
    if command.detected_at < reported_at:  # both normalised RFC 3339 UTC: text order is time order
        raise StaleReportError(discrepancy_id=state.id, detected_at=command.detected_at,
                               reported_at=reported_at)
    return Event(EventType.AMENDED.value, {
        "changed": changed, "before": before, "after": after,
        "detected_at": command.detected_at, "status": state.status.value,
    })


def _transition(state, command: Transition, actor: Actor, discrepancy_id: str) -> Event:
    state = _existing(state, discrepancy_id)
    allowed = allowed_moves(state.status, actor.role, investigated=state.investigated)
    if command.to not in allowed:
        raise TransitionRefusedError(
            discrepancy_id=state.id, status=state.status.value, requested=command.to.value,
            role=actor.role.value, allowed=[s.value for s in allowed],
            why=_why_not(state, command.to, actor.role),
        )
    data = {"from": state.status.value, "to": command.to.value, "reason": command.reason}
    if command.to is Status.RESOLVED:
        data["resolution_code"] = command.resolution_code.value
        data["note"] = command.note
    return Event(EventType.TRANSITIONED.value, data)


def _why_not(state: Discrepancy, target: Status, role: Role) -> str | None:
    """The rule behind a refusal, when it is not simply the table."""
    if state.status in TERMINAL:
        return f"{state.status} is terminal"
    if target is Status.RESOLVED and target in TRANSITIONS[state.status][role]:
        return "it was never investigated"
    return None


def _assign(state, command: Assign, actor: Actor, discrepancy_id: str) -> Event:
    _require_role(command, actor, discrepancy_id)
    state = _open_case(state, command, discrepancy_id)
    if state.assignee == command.assignee:
        who = repr(command.assignee) if command.assignee is not None else "nobody"
        raise NoChangeError(discrepancy_id=state.id, field="assignee", detail=f"is already {who}")
    return Event(EventType.ASSIGNED.value, {"from": state.assignee, "to": command.assignee})


def _comment(state, command: Comment, actor: Actor, discrepancy_id: str) -> Event:
    _require_role(command, actor, discrepancy_id)
    _existing(state, discrepancy_id)
    return Event(EventType.COMMENTED.value, {"text": command.text})


def _change_severity(state, command: ChangeSeverity, actor: Actor, discrepancy_id: str) -> Event:
    _require_role(command, actor, discrepancy_id)
    state = _open_case(state, command, discrepancy_id)
    if state.severity is command.severity:
        raise NoChangeError(discrepancy_id=state.id, field="severity",
                            detail=f"is already {command.severity}")
    return Event(EventType.SEVERITY_CHANGED.value, {
        "from": state.severity.value, "to": command.severity.value, "reason": command.reason,
    })


def _attach(state, command: AttachEvidence, actor: Actor, discrepancy_id: str) -> Event:
    _require_role(command, actor, discrepancy_id)
    state = _open_case(state, command, discrepancy_id)
    if any(item["sha256"] == command.sha256 for item in state.evidence):
        raise NoChangeError(discrepancy_id=state.id, field="evidence",
                            detail=f"already holds file {command.sha256}")
    return Event(EventType.EVIDENCE_ATTACHED.value, {
        "sha256": command.sha256, "name": command.name, "size": command.size,
        "media_type": command.media_type,
    })


_HANDLERS: dict[type, Callable[..., Event]] = {
    OpenDiscrepancy: _open,
    Transition: _transition,
    Assign: _assign,
    Comment: _comment,
    ChangeSeverity: _change_severity,
    AttachEvidence: _attach,
}
