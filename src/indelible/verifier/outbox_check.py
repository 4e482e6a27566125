"""The models pass over the outbox: the queue is operational, but two of its claims matter to
an auditor and must agree with the ledger.

1. A row says `delivered`: an `outbox.delivered` entry for its webhook id must exist (a row
   marked delivered by hand would silence an event nobody was told).
2. A row names an event its entry owes: the entry at its seq must owe that event to that
   integration, on that stream, under that webhook id (a row made by hand would make the
   dispatcher send something the ledger never said; the dispatcher refuses it too).
3. A row says `parked`, or the integration is disabled for the tenant: an `outbox.parked`
   entry for the row's round and attempt, or an `outbox.integration_disabled` entry of that
   integration, must exist (either, done by hand, stops an event as surely as 1).
"""

from __future__ import annotations

from uuid import UUID

import orjson

from indelible.outbound.events import owes, webhook_id


def check_outbox(conn, tenant: str, report) -> None:
    rows = conn.execute(
        "SELECT o.id, o.integration, o.event, o.source_seq, o.stream_id, o.webhook_id, o.state, "
        "       e.entry, EXISTS (SELECT 1 FROM ledger_entries d WHERE d.tenant_id = o.tenant_id "
        "           AND d.idempotency_key = 'outbox/' || o.webhook_id || '/delivered'), "
        "       EXISTS (SELECT 1 FROM ledger_entries p WHERE p.tenant_id = o.tenant_id "
        "           AND p.idempotency_key = 'outbox/' || o.webhook_id || '/r' || o.round "
        "               || '/a' || o.attempts || '/parked') "
        "FROM outbox o LEFT JOIN ledger_entries e "
        "  ON e.tenant_id = o.tenant_id AND e.seq = o.source_seq "
        "WHERE o.tenant_id = %s ORDER BY o.id", (tenant,))
    for row_id, integration, event, seq, stream, wid, state, entry, recorded, parked in rows:
        where = f"outbox row {row_id} ({wid})"
        if state == "parked" and not parked:
            report.add("outbox", f"{where} says parked, but no outbox.parked entry records it",
                       seq)
        if state == "delivered" and not recorded:
            report.add("outbox", f"{where} says delivered, but no outbox.delivered entry "
                       "records it", seq)
        if entry is None:
            report.add("outbox", f"{where} names seq {seq}, which the log does not hold", seq)
            continue
        document = orjson.loads(bytes(entry))
        if not (owes(document["type"], document["data"], integration, event)
                and document["stream"] == stream
                and wid == webhook_id(integration, UUID(document["id"]))):
            report.add("outbox", f"{where}: the entry at seq {seq} does not owe {event} to "
                       f"{integration} under this id (the row was made or changed by hand)", seq)

    disabled = conn.execute(
        "SELECT d.integration, d.seq FROM outbox_disabled d WHERE d.tenant_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM ledger_entries e WHERE e.tenant_id = d.tenant_id "
        " AND e.type = 'outbox.integration_disabled' "
        " AND convert_from(e.entry, 'UTF8')::jsonb -> 'data' ->> 'integration' = d.integration) "
        "ORDER BY d.integration", (tenant,))
    for integration, seq in disabled:
        report.add("outbox", f"{integration} is disabled, but no outbox.integration_disabled "
                   "entry records it (a 410 is always recorded)", seq)
