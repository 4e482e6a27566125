"""Rebuild a tenant's read models from its ledger alone.

Runs the same `evolve` and `project` the appender runs live, over every entry in seq order,
under the log-head lock so no append interleaves. Snapshots are evidence, not read models:
they are never deleted, and re-projecting a decided discrepancy leaves its snapshot as it is.
"""

from __future__ import annotations

import psycopg

from indelible.store.appender import Change, StreamModel
from indelible.store.logs import read_head

READ_MODELS = ("api_keys", "discrepancies", "escalation_watch")  # rows derived from the ledger, per tenant


def rebuild_projections(owner_url: str, tenant: str, model: StreamModel) -> int:
    """Returns the number of streams whose read model was rebuilt."""
    with psycopg.connect(owner_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        read_head(conn, tenant, lock=True)
        for table in READ_MODELS:
            conn.execute(f"DELETE FROM {table} WHERE tenant_id = %s", (tenant,))
        states: dict = {}
        with conn.cursor(name="rebuild") as cur:
            cur.execute("SELECT seq, event_id, stream_id, stream_version, leaf_hash, recorded_at, "
                        "entry FROM ledger_entries WHERE tenant_id = %s ORDER BY seq", (tenant,))
            while rows := cur.fetchmany(5000):
                for seq, event_id, stream, version, leaf, at, entry in rows:
                    if model.owns(stream):
                        change = Change.of_entry(seq, stream, version, entry, at)
                        states[stream] = model.evolve(states.get(stream), change)
        model.project(conn, tenant, states)
        return len(states)
