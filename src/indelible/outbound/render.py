"""What a receiver is sent: a hub event or a RAG document, rendered from the ledger.

Bodies follow the Standard Webhooks payload shape, `{"type", "timestamp", "data"}`, as
canonical JSON. They are rendered from the entries up to the one that caused the event (the
ledger is append-only, so the same event renders the same bytes whenever it is rendered)
and kept in the outbox row at the first attempt. `hub_event`, `rag_document` and `timeline`
are pure; `render` reads the ledger.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from indelible.entry import b64, decode_entry
from indelible.outbound.events import NAMES, owes, webhook_id
from indelible.proofs import canonical_json
from indelible.store import discrepancies
from indelible.store.outbox import Claimed


def render(conn: psycopg.Connection, row: Claimed, *, public_url: str) -> bytes:
    """The body of `row`'s event, from the ledger as it stood at the causing entry."""
    found = conn.execute("SELECT entry, leaf_hash FROM ledger_entries WHERE tenant_id = %s "
                         "AND seq = %s", (row.tenant, row.source_seq)).fetchone()
    if found is None:
        raise LookupError(f"tenant {row.tenant}: no entry at seq {row.source_seq}")
    document = decode_entry(bytes(found[0]))
    _check_owed(row, document)
    source = {"seq": row.source_seq, "leaf_hash": b64(bytes(found[1])), "at": document["at"],
              "type": document["type"], "stream": document["stream"], "log": document["log"]}
    state, items = None, []
    if row.stream.startswith(discrepancies.PREFIX):
        # A document shows the case as its closing entry left it; a hub event, as the whole
        # commit of its firing left it (an escalation's move may follow the firing entry).
        until = row.source_seq if row.integration == "rag" else _end_of_commit(conn, row)
        state, history = discrepancies.history(conn, row.tenant,
                                               row.stream[len(discrepancies.PREFIX):],
                                               until_seq=until)
        items = [_item(h) for h in history]
    case = state.to_dict() if state is not None else None
    if row.integration == "rag":
        if case is None:
            raise LookupError(f"seq {row.source_seq} closes no discrepancy on {row.stream}")
        body = rag_document(row.event, row.tenant, case, items, source)
    else:
        body = hub_event(row.event, row.tenant, case, document["data"], source,
                         public_url=public_url)
    return canonical_json(body)


class UnowedEventError(ValueError):
    """An outbox row names an event its entry does not owe: made or changed by hand."""


def _check_owed(row: Claimed, document: dict) -> None:
    """Send only what the ledger says is owed: the row's entry must owe this event to this
    integration, on this stream, under this webhook id."""
    expected_id = webhook_id(row.integration, UUID(document["id"]))
    if not (owes(document["type"], document["data"], row.integration, row.event)
            and document["stream"] == row.stream and row.webhook_id == expected_id):
        raise UnowedEventError(
            f"outbox row {row.id} ({row.webhook_id}: {row.event} for {row.integration}) does "
            f"not match the entry at seq {row.source_seq} ({document['type']} on "
            f"{document['stream']}, which owes it {expected_id!r} only if its type and data "
            "say so); the row was made or changed by hand, and nothing is sent")


def _end_of_commit(conn: psycopg.Connection, row: Claimed) -> int:
    """The last seq of the row's stream appended in the transaction of its causing entry
    (entries of one commit share their recorded_at)."""
    (seq,) = conn.execute(
        "SELECT max(e.seq) FROM ledger_entries e, ledger_entries s WHERE s.tenant_id = %(t)s "
        "AND s.seq = %(seq)s AND e.tenant_id = %(t)s AND e.stream_id = s.stream_id "
        "AND e.seq >= s.seq AND e.recorded_at = s.recorded_at",
        {"t": row.tenant, "seq": row.source_seq}).fetchone()
    return seq if seq is not None else row.source_seq


def _item(h: discrepancies.HistoryItem) -> dict:
    return {"seq": h.seq, "at": h.at, "type": h.type, "actor": h.actor_id, "role": h.role,
            "status_before": h.status_before, "status_after": h.status_after, "data": h.data}


def summary(case: dict) -> str:
    """One line a person reads in a notification."""
    return (f"{case['kind'].replace('_', ' ')} on {case['source']} {case['external_ref']}: "
            f"expected {case['expected_amount']} {case['currency']}, actual "
            f"{case['actual_amount']} (difference {case['difference']})")


def hub_event(event: str, tenant: str, case: dict | None, data: dict, source: dict, *,
              public_url: str) -> dict:
    """A Notification Hub event: what happened, to which discrepancy, by which rule; the hub
    chooses channels from `target` and `severity`."""
    body: dict[str, Any] = {"event": event, "tenant": tenant, "source": source}
    if event == "verification.failed":
        body.update(severity="critical", message=data.get("message") or
                    "verification of the ledger failed", verification=data)
    else:
        body.update(
            severity=data.get("severity") or (case or {}).get("severity"),
            rule={"id": data.get("rule_id"), "name": data.get("rule_name"),
                  "rules_version": data.get("rules_version"),
                  "period_start_seq": data.get("period_start_seq")},
            action=data.get("action"), target=data.get("target"), message=data.get("message"),
            due_at=data.get("due_at"), fired_at=data.get("fired_at"))
    if case is not None:
        body["discrepancy"] = {
            "id": case["id"], "summary": summary(case), "status": case["status"],
            "severity": case["severity"], "external_ref": case["external_ref"],
            "source": case["source"], "assignee": case["assignee"],
            "link": f"{public_url}/v1/discrepancies/{case['id']}"}
    return {"type": event, "timestamp": source["at"], "data": body}


def rag_document(event: str, tenant: str, case: dict, items: list[dict], source: dict) -> dict:
    """A closed discrepancy as one document for compliance search: its fields, its timeline
    in words, its resolution, and the seq and leaf hash of its last entry (the proof's handle:
    `GET /v1/logs/<tenant>/entries/<seq>?format=tlog-proof`)."""
    closing = items[-1] if items else {}
    resolution = {"status": case["status"], "code": case["resolution_code"],
                  "note": case["resolution_note"], "at": closing.get("at"),
                  "by": closing.get("actor"), "role": closing.get("role"),
                  "reason": closing.get("data", {}).get("reason")}
    fields = {k: v for k, v in case.items() if k not in ("resolution_code", "resolution_note")}
    return {"type": event, "timestamp": source["at"], "data": {
        "tenant": tenant, "id": case["id"], "title": summary(case), "fields": fields,
        "timeline": timeline(items), "resolution": resolution,
        "proof": {"seq": source["seq"], "leaf_hash": source["leaf_hash"], "log": source["log"]}}}


def timeline(items: list[dict]) -> list[str]:
    """Each entry about the discrepancy as one sentence, in order."""
    return [f"seq {i['seq']}, {i['at']}: {_words(i)}" for i in items]


def _words(i: dict) -> str:
    who, d = f"{i['actor']} ({i['role']})", i["data"]
    to = NAMES.get(d.get("integration"), d.get("integration")) if isinstance(d, dict) else None
    match i["type"]:
        case "discrepancy.opened":
            return (f"opened by {who} from {d['source']}'s report {d['external_ref']}: "
                    f"{d['kind'].replace('_', ' ')}, expected {d['expected_amount']} "
                    f"{d['currency']}, actual {d['actual_amount']} (difference "
                    f"{d['difference']}), severity {d['severity']}")
        case "discrepancy.transitioned":
            text = f"{who} moved it from {d['from']} to {d['to']}"
            if d.get("resolution_code"):
                text += f" with resolution {d['resolution_code']}: {d.get('note')}"
            return text + (f" (reason: {d['reason']})" if d.get("reason") else "")
        case "discrepancy.assigned":
            return f"{who} assigned it to {d['to']}" if d.get("to") else f"{who} unassigned it"
        case "discrepancy.commented":
            return f"{who} commented: {d['text']}"
        case "discrepancy.severity_changed":
            return (f"{who} changed severity from {d['from']} to {d['to']}"
                    + (f" (reason: {d['reason']})" if d.get("reason") else ""))
        case "discrepancy.evidence_attached":
            return f"{who} attached evidence {d['name']} ({d['size']} bytes, sha256 {d['sha256']})"
        case "discrepancy.amended":
            return (f"the source re-reported it with changed {', '.join(d['changed'])}: "
                    f"expected {d['after']['expected_amount']}, actual "
                    f"{d['after']['actual_amount']} {d['after']['currency']}")
        case "escalation.fired":
            return (f"escalation rule {d.get('rule_name')!r} (rules version "
                    f"{d.get('rules_version')}) fired: {d.get('action')}"
                    + (f" to {d['target']}" if d.get("target") else "")
                    + (f", severity {d['severity']}" if d.get("severity") else ""))
        case "outbox.delivered":
            return f"event {d['event']} was delivered to the {to} (HTTP {d['status']})"
        case "outbox.attempt_failed":
            return f"delivering event {d['event']} to the {to} failed: {d['reason']}"
        case "outbox.parked":
            return f"event {d['event']} for the {to} was parked: {d['reason']}"
        case "outbox.integration_disabled":
            return f"the {to} was disabled: {d['reason']}"
    return f"{i['type']} by {who}"
