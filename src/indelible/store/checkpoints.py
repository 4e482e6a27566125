"""Signed checkpoints (DESIGN section 6), stored append-only.

`sign_checkpoint` never signs two inconsistent checkpoints: before signing size n it proves,
from the stored hashes, that the new root extends the latest stored checkpoint, and refuses
(LogIntegrityError) when it does not. Ed25519 signatures are deterministic, so two processes
signing the same size produce the same note and `ON CONFLICT DO NOTHING` keeps one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from indelible import proofs
from indelible.proofs import Checkpoint, NoteSigner, ProofError
from indelible.store.errors import LogIntegrityError
from indelible.store.logs import read_head
from indelible.store.tree import StoredTree


@dataclass(frozen=True)
class StoredCheckpoint:
    tenant: str
    size: int
    root_hash: bytes
    note: str
    key_id: bytes
    signed_at: datetime


_COLUMNS = "tenant_id, size, root_hash, note, key_id, signed_at"


def _row(row) -> StoredCheckpoint:
    tenant, size, root, note, key_id, at = row
    return StoredCheckpoint(tenant, size, bytes(root), note, bytes(key_id), at)


def latest_checkpoint(conn: psycopg.Connection, tenant: str) -> StoredCheckpoint | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE tenant_id = %s "
                       "ORDER BY size DESC LIMIT 1", (tenant,)).fetchone()
    return _row(row) if row else None


def checkpoint_at(conn: psycopg.Connection, tenant: str, size: int) -> StoredCheckpoint | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE tenant_id = %s AND size = %s",
                       (tenant, size)).fetchone()
    return _row(row) if row else None


def all_checkpoints(conn: psycopg.Connection, tenant: str) -> list[StoredCheckpoint]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE tenant_id = %s "
                        "ORDER BY size", (tenant,))
    return [_row(r) for r in rows]


def sign_checkpoint(conn: psycopg.Connection, tenant: str,
                    signer: NoteSigner) -> StoredCheckpoint | None:
    """Sign the tenant's current size if it grew since the last checkpoint; else None."""
    # One snapshot for head, stored hashes and checkpoints, so they describe the same log.
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        head = read_head(conn, tenant)
        latest = latest_checkpoint(conn, tenant)
        if head.size == 0 or (latest and latest.size == head.size):
            return None
        root = head.frontier.root()
        tree = StoredTree(conn, tenant)
        if tree.root(head.size) != root:
            raise LogIntegrityError(f"tenant {tenant!r}: stored hashes disagree with the log "
                                    f"head at size {head.size}; refusing to sign")
        if latest is not None:
            _prove_extends(tree, tenant, latest, head.size, root)
        note = proofs.sign_checkpoint(Checkpoint(head.origin, head.size, root), signer)
        conn.execute("INSERT INTO checkpoints (tenant_id, size, root_hash, note, key_id) "
                     "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (tenant, head.size, root, note, signer.key_id))
        return latest_checkpoint(conn, tenant)


def _prove_extends(tree: StoredTree, tenant: str, latest: StoredCheckpoint, size: int,
                   root: bytes) -> None:
    if size < latest.size:
        raise LogIntegrityError(f"tenant {tenant!r}: log size {size} is below the signed "
                                f"checkpoint size {latest.size}; refusing to sign")
    proof = tree.consistency_proof(latest.size, size)
    try:
        proofs.verify_consistency(latest.size, size, proof, latest.root_hash, root)
    except ProofError as e:
        raise LogIntegrityError(f"tenant {tenant!r}: size {size} is not consistent with the "
                                f"signed checkpoint at size {latest.size}: {e}; refusing to sign") from e
