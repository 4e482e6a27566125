"""Which ledger entries owe a downstream system an event, and which. Pure.

The contract between issues: an `escalation.fired` of action notify or escalate is one
Notification Hub event; a discrepancy moved to resolved or auto_closed is one RAG feed
document; a `verification.failed` is a critical hub event. Nothing else is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

HUB, RAG = "hub", "rag"
INTEGRATIONS = (HUB, RAG)
CARRIES = {"bench": HUB}  # lanes that carry another integration's events (the benchmark's)
NAMES = {HUB: "Notification Hub", RAG: "RAG feed"}

FIRED = "escalation.fired"
TRANSITIONED = "discrepancy.transitioned"
VERIFICATION_FAILED = "verification.failed"
TYPES = frozenset({FIRED, TRANSITIONED, VERIFICATION_FAILED})  # the only types that owe events

_HUB_ACTIONS = {"notify": "escalation.notify", "escalate": "escalation.escalated"}
_CLOSED = {"resolved": "discrepancy.resolved", "auto_closed": "discrepancy.auto_closed"}


def events_for(entry_type: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(integration, event name) for each event the entry owes; empty for most entries."""
    if entry_type == FIRED:
        event = _HUB_ACTIONS.get(data.get("action"))
        return [(HUB, event)] if event else []
    if entry_type == TRANSITIONED:
        event = _CLOSED.get(data.get("to"))
        return [(RAG, event)] if event else []
    if entry_type == VERIFICATION_FAILED:
        return [(HUB, "verification.failed")]
    return []


def owes(entry_type: str, data: Mapping[str, Any], integration: str, event: str) -> bool:
    """Whether the entry owes `integration` this `event` (a queued row is checked against
    its entry before anything is sent: the row is not evidence, the entry is)."""
    return (CARRIES.get(integration, integration), event) in events_for(entry_type, data)


def webhook_id(integration: str, event_id: UUID) -> str:
    """The event's id: one per (integration, causing entry), whoever queues it (the hook, or
    a backfill later), so it is queued once only and receivers de-duplicate on it. The
    entry's event id is a random UUIDv7, so ids never repeat across tenants or deployments."""
    return f"msg_{integration}_{event_id.hex}"
