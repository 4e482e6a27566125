"""The facts a discrepancy's stream records: one :class:`Event` per ledger entry.

An event is what :func:`~indelible.domain.decide` returns and what the ledger stores as
an entry's ``type`` and ``data``. Its data is plain JSON — ``dict``, ``list``, ``str``,
``int``, ``bool``, ``None`` and nothing else (no enums, no Decimals, no floats) — so it
is canonical-JSON-able as it stands, and an event read back from the ledger is equal to
the one that was decided. Amounts are decimal strings, times RFC 3339 UTC strings.

Types and their data::

    discrepancy.opened             id, external_ref, source, kind, expected_amount,
                                   actual_amount, currency, difference, severity,
                                   detected_at, metadata, transaction_refs,
                                   severity_basis (reported | built_in | tenant_policy)
                                   and severity_policy_seq with tenant_policy
    discrepancy.transitioned       from, to, reason; and resolution_code, note when
                                   ``to`` is resolved
    discrepancy.assigned           from, to            (assignee ids, None = nobody)
    discrepancy.commented          text
    discrepancy.severity_changed   from, to, reason
    discrepancy.evidence_attached  sha256, name, size, media_type
    discrepancy.amended            changed (names, of kind, expected_amount,
                                   actual_amount, currency), before and after (each
                                   those four and difference), detected_at (of the
                                   re-report), status (when it arrived; unchanged)
    escalation.fired               rule_id, rule_name, rules_version, rule_version,
                                   action, period_start_seq, due_at, fired_at; notify:
                                   target, message (rendered); escalate: severity (if
                                   upgraded); auto_close: reason
    escalation.paused              reason, until (RFC 3339 UTC)
    escalation.resumed             reason
    outbox.delivered               integration, event, webhook_id, source_seq, round,
                                   attempt, status, duration_ms
    outbox.attempt_failed          the same less duration_ms, plus reason, retry_at
    outbox.parked                  integration, event, webhook_id, source_seq, round,
                                   attempt, status (None: no answer), reason
    outbox.integration_disabled    the same as parked (status 410)

The outbox.* entries record what the outbound integrations (issue 12) told downstream
systems about the discrepancy; they change nothing in its state but its version.
Entries written before severity_basis existed lack it; nothing folds it into the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Event", "EventType"]


class EventType(StrEnum):
    OPENED = "discrepancy.opened"
    TRANSITIONED = "discrepancy.transitioned"
    ASSIGNED = "discrepancy.assigned"
    COMMENTED = "discrepancy.commented"
    SEVERITY_CHANGED = "discrepancy.severity_changed"
    EVIDENCE_ATTACHED = "discrepancy.evidence_attached"
    AMENDED = "discrepancy.amended"
    # Delivery outcomes of the outbound integrations (outbound/): bookkeeping, no state.
    OUTBOX_DELIVERED = "outbox.delivered"
    OUTBOX_ATTEMPT_FAILED = "outbox.attempt_failed"
    OUTBOX_PARKED = "outbox.parked"
    OUTBOX_INTEGRATION_DISABLED = "outbox.integration_disabled"
    # Escalation (issue 11): facts about the rules acting on the discrepancy. They change
    # nothing in its state; a move an escalation makes is its own `transitioned` entry.
    ESCALATION_FIRED = "escalation.fired"
    ESCALATION_PAUSED = "escalation.paused"
    ESCALATION_RESUMED = "escalation.resumed"


@dataclass(frozen=True)
class Event:
    """One fact about one discrepancy: an entry's ``type`` and ``data``."""

    type: str  # an EventType value, kept as a plain str for canonical encoding
    data: dict
