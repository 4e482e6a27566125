"""What an auditor asks for: checkpoints, entries with inclusion proofs, consistency proofs."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from indelible.proofs import TlogProof, format_tlog_proof
from indelible.store.checkpoints import StoredCheckpoint
from indelible.store.cosignatures import StoredCosignature, cosigned, scope_to_tenant
from indelible.store.errors import StoreError, UnknownLogError
from indelible.store.logs import read_head
from indelible.store.tree import StoredTree, SubtreeCache


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


# What a proof stands on, in one statement and so one snapshot: whether the log exists, the
# checkpoint (of `size` when there is one, else the latest) with its witnesses' cosignature
# rows (one result row each), and the entry. A NULL seq or size matches nothing.
_PROOF_BASIS = """
SELECT c.size, c.root_hash, c.note, c.key_id, c.signed_at, e.entry, e.leaf_hash,
       s.size, s.witness, s.signature_line, s.cosigned_at
FROM log_heads h
LEFT JOIN LATERAL (
    (SELECT size, root_hash, note, key_id, signed_at FROM checkpoints
     WHERE tenant_id = %(tenant)s AND size = %(size)s::bigint)
    UNION ALL
    (SELECT size, root_hash, note, key_id, signed_at FROM checkpoints
     WHERE tenant_id = %(tenant)s ORDER BY size DESC LIMIT 1)
    LIMIT 1) AS c ON true
LEFT JOIN ledger_entries e ON e.tenant_id = %(tenant)s AND e.seq = %(seq)s::bigint
LEFT JOIN checkpoint_cosignatures s ON s.tenant_id = %(tenant)s AND s.size = c.size
WHERE h.tenant_id = %(tenant)s
ORDER BY s.received_at, s.witness
"""
_BIGINT = 1 << 63


def _in_bigint(value: int | None) -> int | None:
    """`value`, or None (matches nothing) outside PostgreSQL's bigint, where no log reaches."""
    return value if value is not None and -_BIGINT <= value < _BIGINT else None


def _proof_basis(conn: psycopg.Connection, tenant: str, seq: int | None,
                 size: int | None) -> tuple[StoredCheckpoint, tuple[bytes, bytes] | None]:
    """The cosigned checkpoint a proof is against and (entry, leaf hash) of `seq`, if stored.

    The cosignature rows are read under row-level security scoped to the tenant, as
    store/cosignatures.py reads them, without its BEGIN and COMMIT round trips: pipelined,
    the scoping and the statement travel together and share the implicit transaction that
    lasts until the pipeline's one sync (in a caller's transaction, they run inside it).
    """
    params = {"tenant": tenant, "seq": _in_bigint(seq), "size": _in_bigint(size)}
    with conn.pipeline():
        scope_to_tenant(conn, tenant)
        cursor = conn.execute(_PROOF_BASIS, params)
    rows = cursor.fetchall()
    if not rows:
        raise UnknownLogError(tenant)
    cp_size, root, note, key_id, signed_at, entry, leaf = rows[0][:7]
    if cp_size is None:
        raise NotFoundError(f"tenant {tenant!r} has no signed checkpoint yet")
    if size is not None and size != cp_size:
        raise NotFoundError(f"tenant {tenant!r} has no checkpoint of size {size}")
    checkpoint = StoredCheckpoint(tenant, cp_size, bytes(root), note, bytes(key_id), signed_at)
    # Witnesses' lines ride along (issue 15).
    checkpoint = cosigned(checkpoint, [StoredCosignature(*r[7:]) for r in rows if r[8] is not None])
    return checkpoint, None if entry is None else (bytes(entry), bytes(leaf))


def current_checkpoint(conn: psycopg.Connection, tenant: str) -> StoredCheckpoint:
    return _proof_basis(conn, tenant, None, None)[0]


def entry_proof(conn: psycopg.Connection, tenant: str, seq: int, size: int | None = None, *,
                cache: SubtreeCache | None = None) -> EntryProof:
    """Entry `seq` with its inclusion proof against the latest checkpoint, or the one of `size`.

    `cache`: upper subtree hashes shared across calls (see SubtreeCache for why that is sound).
    """
    checkpoint, stored = _proof_basis(conn, tenant, seq, size)
    if not 0 <= seq < checkpoint.size:
        raise NotFoundError(
            f"entry {seq} of tenant {tenant!r} is not covered by the checkpoint "
            f"(size {checkpoint.size}): valid seq is 0..{checkpoint.size - 1}"
            + (", or wait for the next checkpoint" if seq >= checkpoint.size else ""))
    if stored is None:
        raise NotFoundError(f"entry {seq} of tenant {tenant!r} is missing from storage")
    proof = StoredTree(conn, tenant, cache=cache).inclusion_proof(seq, checkpoint.size)
    return EntryProof(tenant, seq, *stored, checkpoint, proof)


def consistency(conn: psycopg.Connection, tenant: str, size1: int, size2: int, *,
                cache: SubtreeCache | None = None) -> list[bytes]:
    head = read_head(conn, tenant)
    if not 0 < size1 <= size2 <= head.size:
        raise NotFoundError(f"consistency needs 0 < size1 <= size2 <= {head.size} "
                            f"(the log size of {tenant!r}); got {size1} and {size2}")
    return StoredTree(conn, tenant, cache=cache).consistency_proof(size1, size2)


__all__ = ["EntryProof", "NotFoundError", "UnknownLogError", "consistency", "current_checkpoint",
           "entry_proof"]
