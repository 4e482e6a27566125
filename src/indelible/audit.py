"""What an auditor asks for: checkpoints, entries with inclusion proofs, consistency proofs."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from indelible.proofs import TlogProof, format_tlog_proof
from indelible.store.checkpoints import StoredCheckpoint, checkpoint_at, latest_checkpoint
from indelible.store.cosignatures import with_cosignatures
from indelible.store.errors import StoreError, UnknownLogError
from indelible.store.logs import read_head
from indelible.store.tree import StoredTree


class NotFoundError(StoreError):
    pass


@dataclass(frozen=True)
class EntryProof:
    tenant: str
    seq: int
    entry: bytes
    leaf_hash: bytes
    checkpoint: StoredCheckpoint
    proof: list[bytes]

    def tlog_proof(self) -> str:
        return format_tlog_proof(TlogProof(index=self.seq, hashes=tuple(self.proof),
                                           checkpoint_note=self.checkpoint.note, extra=self.entry))


def current_checkpoint(conn: psycopg.Connection, tenant: str) -> StoredCheckpoint:
    read_head(conn, tenant)  # UnknownLogError for a tenant without a log
    checkpoint = latest_checkpoint(conn, tenant)
    if checkpoint is None:
        raise NotFoundError(f"tenant {tenant!r} has no signed checkpoint yet")
    return with_cosignatures(conn, checkpoint)  # witnesses' lines ride along (issue 15)


def entry_proof(conn: psycopg.Connection, tenant: str, seq: int,
                size: int | None = None) -> EntryProof:
    """Entry `seq` with its inclusion proof against the latest checkpoint, or the one of `size`."""
    checkpoint = current_checkpoint(conn, tenant)
    if size is not None and size != checkpoint.size:
        checkpoint = checkpoint_at(conn, tenant, size)
        if checkpoint is None:
            raise NotFoundError(f"tenant {tenant!r} has no checkpoint of size {size}")
        checkpoint = with_cosignatures(conn, checkpoint)
    if not 0 <= seq < checkpoint.size:
        raise NotFoundError(
            f"entry {seq} of tenant {tenant!r} is not covered by the checkpoint "
            f"(size {checkpoint.size}): valid seq is 0..{checkpoint.size - 1}"
            + (", or wait for the next checkpoint" if seq >= checkpoint.size else ""))
    row = conn.execute("SELECT entry, leaf_hash FROM ledger_entries WHERE tenant_id = %s "
                       "AND seq = %s", (tenant, seq)).fetchone()
    if row is None:
        raise NotFoundError(f"entry {seq} of tenant {tenant!r} is missing from storage")
    proof = StoredTree(conn, tenant).inclusion_proof(seq, checkpoint.size)
    return EntryProof(tenant, seq, bytes(row[0]), bytes(row[1]), checkpoint, proof)


def consistency(conn: psycopg.Connection, tenant: str, size1: int, size2: int) -> list[bytes]:
    head = read_head(conn, tenant)
    if not 0 < size1 <= size2 <= head.size:
        raise NotFoundError(f"consistency needs 0 < size1 <= size2 <= {head.size} "
                            f"(the log size of {tenant!r}); got {size1} and {size2}")
    return StoredTree(conn, tenant).consistency_proof(size1, size2)


__all__ = ["EntryProof", "NotFoundError", "UnknownLogError", "consistency", "current_checkpoint",
           "entry_proof"]
