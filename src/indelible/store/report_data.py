"""What a report reads from the ledger: the discrepancy streams it covers, their entries,
and a check of the covered range. Everything is read from `ledger_entries` (the hashed
bytes), never from read models, and only below the covered tree size, in one REPEATABLE
READ snapshot, so the same size always yields the same rows.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg

from indelible import proofs
from indelible.store.checkpoints import StoredCheckpoint

FETCH = 5_000  # rows per round trip
DISC = "disc/"


def streams_in_period(conn: psycopg.Connection, tenant: str, *, size: int, start: datetime,
                      end: datetime, ids: tuple[str, ...] = ()) -> list[str]:
    """Discrepancy streams with at least one entry recorded in [start, end) below `size`."""
    sql = ("SELECT DISTINCT stream_id FROM ledger_entries WHERE tenant_id = %s AND seq < %s "
           "AND stream_id LIKE 'disc/%%' AND recorded_at >= %s AND recorded_at < %s")
    args: list = [tenant, size, start, end]
    if ids:
        sql += " AND stream_id = ANY(%s)"
        args.append([DISC + i for i in ids])
    return sorted(r[0] for r in conn.execute(sql, args))


def stream_entries(conn: psycopg.Connection, tenant: str, streams: list[str], *, size: int,
                   end: datetime) -> Iterator[tuple[str, int, bytes, bytes]]:
    """(stream, seq, entry, leaf hash) of those streams, each stream's entries in seq order,
    recorded before `end` and below `size`."""
    for i in range(0, len(streams), 500):
        with conn.cursor(name=f"report_entries_{i}") as cur:
            cur.itersize = FETCH
            cur.execute("SELECT stream_id, seq, entry, leaf_hash FROM ledger_entries "
                        "WHERE tenant_id = %s AND stream_id = ANY(%s) AND seq < %s "
                        "AND recorded_at < %s ORDER BY stream_id, stream_version",
                        (tenant, streams[i:i + 500], size, end))
            for stream, seq, entry, leaf in cur:
                yield stream, seq, bytes(entry), bytes(leaf)


def last_recorded_at(conn: psycopg.Connection, tenant: str, size: int) -> datetime | None:
    row = conn.execute("SELECT recorded_at FROM ledger_entries WHERE tenant_id = %s AND seq = %s",
                       (tenant, size - 1)).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class RangeCheck:
    """The covered range [0, size) recomputed from the entry bytes, against a checkpoint."""

    size: int
    leaves_ok: bool  # every stored leaf hash is SHA-256(0x00 || entry)
    chain_ok: bool  # every entry's `prev` is its predecessor's leaf hash, seqs gap-free
    root_ok: bool  # the Merkle root of the leaves is the checkpoint's signed root
    signature_ok: bool  # the checkpoint note verifies under the verifier key
    first_problem: str | None

    @property
    def ok(self) -> bool:
        return self.leaves_ok and self.chain_ok and self.root_ok and self.signature_ok

    def to_json(self) -> dict:
        return {"entries_checked": self.size, "leaf_hashes": self.leaves_ok,
                "hash_chain": self.chain_ok, "merkle_root": self.root_ok,
                "checkpoint_signature": self.signature_ok, "first_problem": self.first_problem,
                "result": "verified" if self.ok else "FAILED"}


def check_range(conn: psycopg.Connection, tenant: str, checkpoint: StoredCheckpoint,
                verifier: proofs.NoteVerifier, origin: str) -> RangeCheck:
    """1. open the checkpoint under the key; 2. re-hash every entry below its size and follow
    the `prev` chain; 3. fold the leaves into the Merkle root and compare with the signed one."""
    problems: list[str] = []
    signed_root = None
    try:  # 1.
        signed = proofs.open_checkpoint(checkpoint.note, verifier, origin=origin)
        signature_ok = signed.size == checkpoint.size
        signed_root = signed.root_hash
    except proofs.ProofError as e:
        signature_ok = False
        problems.append(f"checkpoint: {e}")
    leaves_ok = chain_ok = True
    tree, prev, expected_seq = proofs.CompactRange(), b"", 0
    with conn.cursor(name="report_range") as cur:  # 2.
        cur.itersize = FETCH
        cur.execute("SELECT seq, entry, leaf_hash FROM ledger_entries WHERE tenant_id = %s "
                    "AND seq < %s ORDER BY seq", (tenant, checkpoint.size))
        for seq, entry, leaf in cur:
            entry, leaf = bytes(entry), bytes(leaf)
            if seq != expected_seq:
                chain_ok = False
                problems.append(f"seq {expected_seq}: missing (next stored is {seq})")
                expected_seq = seq
            computed = proofs.leaf_hash(entry)
            if computed != leaf:
                leaves_ok = False
                problems.append(f"seq {seq}: stored leaf hash is not the entry's")
            if orjson.loads(entry).get("prev", "") != (base64.b64encode(prev).decode() if prev else ""):
                chain_ok = False
                problems.append(f"seq {seq}: prev does not name the entry before it")
            tree.append(computed)
            prev, expected_seq = computed, expected_seq + 1
    if expected_seq != checkpoint.size:
        chain_ok = False
        problems.append(f"only {expected_seq} of {checkpoint.size} entries are stored")
    root_ok = signed_root is not None and tree.root() == signed_root  # 3.
    if signed_root is not None and not root_ok:
        problems.append("the Merkle root of the stored entries is not the signed root")
    return RangeCheck(checkpoint.size, leaves_ok, chain_ok, root_ok, signature_ok,
                      problems[0] if problems else None)
