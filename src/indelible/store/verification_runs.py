"""The tenant's recorded verification runs (`verification.completed` / `verification.failed`
on the stream `tenant/verification`, written by monitor/service.py), newest first, for the
auditor's page. They are ledger entries: shown from the entry bytes, with their seq, so an
auditor can ask for each one's proof."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from indelible.entry import decode_entry

STREAM = "tenant/verification"


@dataclass(frozen=True)
class RecordedRun:
    seq: int
    type: str  # verification.completed | verification.failed
    at: str  # RFC 3339, UTC: when the entry was recorded
    data: dict


def latest(conn: psycopg.Connection, tenant: str, limit: int = 10) -> list[RecordedRun]:
    rows = conn.execute("SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s "
                        "AND stream_id = %s ORDER BY stream_version DESC LIMIT %s",
                        (tenant, STREAM, limit)).fetchall()
    runs = []
    for seq, raw in rows:
        entry = decode_entry(bytes(raw))
        runs.append(RecordedRun(seq, entry["type"], entry["at"], entry["data"]))
    return runs
