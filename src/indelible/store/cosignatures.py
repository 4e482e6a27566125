"""Witness cosignatures of checkpoints, stored append-only (migration 17).

Rows are inserted only after the cosignature verified under the witness's key (see
cosigning/feeder.py); readers that decide anything (a quorum) verify them again from the
cosigned note, so an edited row gains nothing. Every statement runs in a transaction scoped
to the tenant, so row-level security holds even where the service role cannot bypass it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache

import psycopg

from indelible.proofs import CosignerKey, ProofError
from indelible.proofs.cosignature import add_signature_lines, split_note, verify_cosignature_line
from indelible.store.checkpoints import StoredCheckpoint


@dataclass(frozen=True)
class StoredCosignature:
    size: int
    witness: str  # verifier key text
    signature_line: str
    cosigned_at: datetime


def scope_to_tenant(conn: psycopg.Connection, tenant: str) -> None:
    """Row-level security's tenant for the rest of the current transaction."""
    conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))


def insert_cosignature(conn: psycopg.Connection, tenant: str, size: int, witness: str,
                       signature_line: str, timestamp: int) -> None:
    with conn.transaction():
        scope_to_tenant(conn, tenant)
        conn.execute("INSERT INTO checkpoint_cosignatures (tenant_id, size, witness, "
                     "signature_line, cosigned_at) VALUES (%s, %s, %s, %s, %s) "
                     "ON CONFLICT DO NOTHING",
                     (tenant, size, witness, signature_line,
                      datetime.fromtimestamp(timestamp, timezone.utc)))


def cosignatures(conn: psycopg.Connection, tenant: str, size: int) -> list[StoredCosignature]:
    with conn.transaction():
        scope_to_tenant(conn, tenant)
        rows = conn.execute("SELECT size, witness, signature_line, cosigned_at FROM "
                            "checkpoint_cosignatures WHERE tenant_id = %s AND size = %s "
                            "ORDER BY received_at, witness", (tenant, size)).fetchall()
    return [StoredCosignature(*row) for row in rows]


def latest_cosigned(conn: psycopg.Connection, tenant: str, witness: str) -> StoredCosignature | None:
    """The largest checkpoint `witness` cosigned for the tenant, as recorded here."""
    with conn.transaction():
        scope_to_tenant(conn, tenant)
        row = conn.execute("SELECT size, witness, signature_line, cosigned_at FROM "
                           "checkpoint_cosignatures WHERE tenant_id = %s AND witness = %s "
                           "ORDER BY size DESC LIMIT 1", (tenant, witness)).fetchone()
    return StoredCosignature(*row) if row else None


def sizes_with(conn: psycopg.Connection, tenant: str, witnesses: list[str], at_least: int,
               limit: int = 8) -> list[int]:
    """Checkpoint sizes, largest first, with rows from at least `at_least` of `witnesses`."""
    with conn.transaction():
        scope_to_tenant(conn, tenant)
        rows = conn.execute("SELECT size FROM checkpoint_cosignatures WHERE tenant_id = %s "
                            "AND witness = ANY(%s) GROUP BY size HAVING count(*) >= %s "
                            "ORDER BY size DESC LIMIT %s",
                            (tenant, witnesses, at_least, limit)).fetchall()
    return [size for (size,) in rows]


def uncosigned_latest(conn: psycopg.Connection, witness: str) -> list[tuple[str, int, str]]:
    """(tenant, size, note) of every tenant's latest checkpoint `witness` has not cosigned."""
    # One index probe per tenant (its latest checkpoint), not a scan of every checkpoint.
    return conn.execute("""
        SELECT h.tenant_id, c.size, c.note
        FROM log_heads h
        CROSS JOIN LATERAL (SELECT size, note FROM checkpoints WHERE tenant_id = h.tenant_id
                            ORDER BY size DESC LIMIT 1) c
        WHERE NOT EXISTS (SELECT 1 FROM checkpoint_cosignatures s WHERE s.tenant_id = h.tenant_id
                          AND s.size = c.size AND s.witness = %s)
        ORDER BY h.tenant_id""", (witness,)).fetchall()


def with_cosignatures(conn: psycopg.Connection, checkpoint: StoredCheckpoint) -> StoredCheckpoint:
    """The checkpoint with its note carrying every stored cosignature line that verifies."""
    return cosigned(checkpoint, cosignatures(conn, checkpoint.tenant, checkpoint.size))


def cosigned(checkpoint: StoredCheckpoint, rows: list[StoredCosignature]) -> StoredCheckpoint:
    """The checkpoint with its note carrying those of `rows` (its stored cosignatures, in
    the order `cosignatures` reads them) whose line verifies."""
    body, _ = split_note(checkpoint.note)
    lines = [c.signature_line for c in rows if _verifies(c, body)]
    if not lines:
        return checkpoint
    return replace(checkpoint, note=add_signature_lines(checkpoint.note, lines))


def _verifies(row: StoredCosignature, body: str) -> bool:
    """Whether the row is its witness's valid cosignature of `body`. Rows were verified when
    inserted, but the table is the database's word: a line a superuser wrote (malformed, or
    not by its witness) is not served on the log's checkpoint, where one malformed line would
    make the whole note unreadable to every client."""
    return _line_verifies(row.signature_line, row.witness, body)


# Every proof served against a checkpoint re-checks the same lines over the same body (two
# Ed25519 verifications cost ~140 µs, a sixth of a proof). The answer is a pure function of
# these three strings, so remembering it serves exactly what verifying again would: an edited
# row is a different line, and is checked afresh.
@lru_cache(maxsize=4096)
def _line_verifies(signature_line: str, witness: str, body: str) -> bool:
    try:
        return verify_cosignature_line(signature_line, CosignerKey.from_key_text(witness),
                                       body) is not None
    except ProofError:
        return False
