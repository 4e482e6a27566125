"""The discrepancy: its vocabulary, its state, and the fold that rebuilds it from events.

A :class:`Discrepancy` is never edited: :func:`evolve` returns the next state from the
current one and one event, and :func:`replay` folds a whole stream. Both are pure and
deterministic in (state, event, time), so read models and time travel (``as_of``) are
rebuilt from the ledger byte for byte. The time passed in is the ledger entry's ``at``,
never the clock.

Folding trusts what the ledger recorded — a recorded move is a fact even if today's
transition table would refuse it — but refuses an event that contradicts the state it
meets (an ``opened`` on an existing discrepancy, a move ``from`` a status it is not in):
that stream is corrupt, and :class:`~.errors.InvalidEventError` says so.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from .errors import InvalidEventError
from .events import Event, EventType
from .lifecycle import Status

__all__ = ["Discrepancy", "Kind", "ResolutionCode", "Severity", "evolve", "replay"]


class Kind(StrEnum):
    AMOUNT_MISMATCH = "amount_mismatch"
    MISSING_TRANSACTION = "missing_transaction"
    TIMING_GAP = "timing_gap"
    DUPLICATE = "duplicate"
    OTHER = "other"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ResolutionCode(StrEnum):
    CORRECTED_IN_LEDGER = "corrected_in_ledger"  # our books were wrong and were fixed
    CORRECTED_BY_COUNTERPARTY = "corrected_by_counterparty"  # their side fixed it
    WRITTEN_OFF = "written_off"  # the difference was booked as a loss or gain
    ACCEPTED_VARIANCE = "accepted_variance"  # within tolerance (fees, rounding, FX)
    FALSE_POSITIVE = "false_positive"  # the engine was wrong: nothing was amiss
    DUPLICATE = "duplicate"  # another discrepancy already covers it
    OTHER = "other"  # the note says what happened


@dataclass(frozen=True)
class Discrepancy:
    """The state of one discrepancy after ``version`` events. Treat it as read-only:
    ``metadata`` and the ``evidence`` dicts are shared with later versions."""

    id: str  # the stream id part: stream "disc/<id>"
    external_ref: str  # the reconciliation engine's id, unique per (tenant, source)
    source: str
    kind: Kind
    expected_amount: str  # decimal strings with the currency's minor units
    actual_amount: str
    currency: str  # ISO 4217
    difference: str  # actual - expected
    severity: Severity
    status: Status
    assignee: str | None
    detected_at: str  # RFC 3339 UTC, as reported by the source
    metadata: dict
    transaction_refs: tuple[str, ...]
    investigated: bool  # was ever investigating: the precondition for resolving
    resolution_code: ResolutionCode | None
    resolution_note: str | None
    version: int  # events applied; equals the stream version of the last entry
    opened_at: str  # RFC 3339 UTC time of the opening entry
    updated_at: str  # RFC 3339 UTC time of the latest entry
    comments: int  # number of comments
    evidence: tuple[dict, ...]  # {sha256, name, size, media_type}, in attachment order
    # detected_at of the latest report of the facts (the opening one, or an amendment):
    # a re-report detected before it is stale and must not roll the facts back.
    reported_at: str | None = None  # None: the opening report's detected_at

    def to_dict(self) -> dict:
        """Plain JSON (str-valued enums, lists), e.g. for a read model or a snapshot."""
        return {
            "id": self.id, "external_ref": self.external_ref, "source": self.source,
            "kind": self.kind.value, "expected_amount": self.expected_amount,
            "actual_amount": self.actual_amount, "currency": self.currency,
            "difference": self.difference, "severity": self.severity.value,
            "status": self.status.value, "assignee": self.assignee,
            "detected_at": self.detected_at, "metadata": self.metadata,
            "transaction_refs": list(self.transaction_refs),
            "investigated": self.investigated,
            "resolution_code": self.resolution_code.value if self.resolution_code else None,
            "resolution_note": self.resolution_note, "version": self.version,
            "opened_at": self.opened_at, "updated_at": self.updated_at,
            "comments": self.comments, "evidence": [dict(e) for e in self.evidence],
        } | ({"reported_at": self.reported_at} if self.reported_at else {})

    @classmethod
    def from_dict(cls, d: dict) -> Discrepancy:
        """The inverse of :meth:`to_dict` (a read-model row back into a state)."""
        code = d["resolution_code"]
        return cls(
            id=d["id"], external_ref=d["external_ref"], source=d["source"], kind=Kind(d["kind"]),
            expected_amount=d["expected_amount"], actual_amount=d["actual_amount"],
            currency=d["currency"], difference=d["difference"], severity=Severity(d["severity"]),
            status=Status(d["status"]), assignee=d["assignee"], detected_at=d["detected_at"],
            metadata=d["metadata"], transaction_refs=tuple(d["transaction_refs"]),
            investigated=d["investigated"],
            resolution_code=ResolutionCode(code) if code is not None else None,
            resolution_note=d["resolution_note"], version=d["version"],
            opened_at=d["opened_at"], updated_at=d["updated_at"], comments=d["comments"],
            reported_at=d.get("reported_at"),
            evidence=tuple(dict(e) for e in d["evidence"]))


def evolve(state: Discrepancy | None, event: Event, *, at: str) -> Discrepancy:
    """The state after ``event``, recorded at ``at`` (the entry's RFC 3339 time)."""
    if not isinstance(event, Event) or not isinstance(at, str):
        raise TypeError("evolve needs an Event and the entry's time as a string")
    try:
        kind = EventType(event.type)
    except ValueError:
        raise InvalidEventError(f"unknown event type {event.type!r}") from None
    if kind is EventType.OPENED:
        if state is not None:
            raise InvalidEventError(f"discrepancy {state.id} is already open")
        return _guard(_opened, event.data, at)
    if state is None:
        raise InvalidEventError(f"{event.type} before discrepancy.opened")
    changes = _guard(_APPLY[kind], state, event.data)
    return replace(state, **changes, version=state.version + 1, updated_at=at)


def replay(events: Iterable[tuple[Event, str]]) -> Discrepancy | None:
    """Fold ``(event, at)`` pairs in stream order; None when there are none."""
    state = None
    for event, at in events:
        state = evolve(state, event, at=at)
    return state


def _guard(apply: Callable, *args):
    """Run one applier, turning a malformed payload into InvalidEventError."""
    try:
        return apply(*args)
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidEventError(f"malformed event data: {type(e).__name__}: {e}") from e


def _opened(data: dict, at: str) -> Discrepancy:
    return Discrepancy(
        id=data["id"], external_ref=data["external_ref"], source=data["source"],
        kind=Kind(data["kind"]), expected_amount=data["expected_amount"],
        actual_amount=data["actual_amount"], currency=data["currency"],
        difference=data["difference"], severity=Severity(data["severity"]),
        status=Status.OPEN, assignee=None, detected_at=data["detected_at"],
        metadata=copy.deepcopy(data["metadata"]), transaction_refs=tuple(data["transaction_refs"]),
        investigated=False, resolution_code=None, resolution_note=None, version=1,
        opened_at=at, updated_at=at, comments=0, evidence=(),
    )


def _transitioned(state: Discrepancy, data: dict) -> dict:
    if Status(data["from"]) is not state.status:
        raise InvalidEventError(
            f"discrepancy {state.id}: recorded move from '{data['from']}' "
            f"but it is '{state.status}'"
        )
    target = Status(data["to"])
    changes: dict = {"status": target,
                     "investigated": state.investigated or target is Status.INVESTIGATING}
    if target is Status.RESOLVED:
        changes["resolution_code"] = ResolutionCode(data["resolution_code"])
        changes["resolution_note"] = data["note"]
    return changes


def _assigned(state: Discrepancy, data: dict) -> dict:
    return {"assignee": data["to"]}


def _commented(state: Discrepancy, data: dict) -> dict:
    return {"comments": state.comments + 1}


def _severity_changed(state: Discrepancy, data: dict) -> dict:
    return {"severity": Severity(data["to"])}


def _evidence_attached(state: Discrepancy, data: dict) -> dict:
    item = {key: data[key] for key in ("sha256", "name", "size", "media_type")}
    return {"evidence": (*state.evidence, item)}


def _amended(state: Discrepancy, data: dict) -> dict:
    after = data["after"]
    recorded = {"kind": state.kind.value, "expected_amount": state.expected_amount,
                "actual_amount": state.actual_amount, "currency": state.currency,
                "difference": state.difference}
    if {k: data["before"][k] for k in recorded} != recorded:
        raise InvalidEventError(f"discrepancy {state.id}: recorded amendment from "
                                f"{data['before']} but it is {recorded}")
    return {"kind": Kind(after["kind"]), "expected_amount": after["expected_amount"],
            "actual_amount": after["actual_amount"], "currency": after["currency"],
            "difference": after["difference"], "reported_at": data["detected_at"]}


def _noted(state: Discrepancy, data: dict) -> dict:
    """An entry about the discrepancy that changes nothing in it (a delivery outcome)."""
    return {}


def _escalation_fact(state: Discrepancy, data: dict) -> dict:
    """Escalation entries record what the rules did or may do; the state they meet is
    unchanged (a move they cause is a `transitioned` entry of its own)."""
    if not isinstance(data, dict):
        raise TypeError("escalation data must be an object")
    return {}


_APPLY: dict[EventType, Callable[[Discrepancy, dict], dict]] = {
    EventType.TRANSITIONED: _transitioned,
    EventType.ASSIGNED: _assigned,
    EventType.COMMENTED: _commented,
    EventType.SEVERITY_CHANGED: _severity_changed,
    EventType.EVIDENCE_ATTACHED: _evidence_attached,
    EventType.AMENDED: _amended,
    EventType.OUTBOX_DELIVERED: _noted,
    EventType.OUTBOX_ATTEMPT_FAILED: _noted,
    EventType.OUTBOX_PARKED: _noted,
    EventType.OUTBOX_INTEGRATION_DISABLED: _noted,
    EventType.ESCALATION_FIRED: _escalation_fact,
    EventType.ESCALATION_PAUSED: _escalation_fact,
    EventType.ESCALATION_RESUMED: _escalation_fact,
}
