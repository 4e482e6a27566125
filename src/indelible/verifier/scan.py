"""One worker's pass over a range of entries: hashes, links and indexed columns.

Runs in a worker process; everything it returns is plain data. The Merkle tree is assembled
by the parent from the level-8 hashes each worker folds (one per 256 entries), so workers
never ship the leaf hashes except for the few 256-groups a checkpoint boundary cuts through.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

import psycopg

from indelible.proofs import fold_perfect

GROUP = 256
MISSING = b"\x00" * 32  # stands in for a deleted entry so later positions keep their index

_SCAN = """
SELECT seq, entry, leaf_hash, event_id::text, stream_id, stream_version, type,
       to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       actor_id, idempotency_key
FROM ledger_entries WHERE tenant_id = %s AND seq >= %s AND seq < %s ORDER BY seq
"""


@dataclass
class ChunkResult:
    lo: int
    hi: int
    rows: int = 0
    first_prev: str | None = None  # the `prev` the chunk's first entry claims
    last_leaf: bytes | None = None  # recomputed leaf hash of the chunk's last entry
    level8: list[bytes] = field(default_factory=list)  # fold of each complete 256-group
    groups: dict[int, list[bytes]] = field(default_factory=dict)  # leaves of requested groups
    findings: list[tuple[str, str, int]] = field(default_factory=list)  # (check, detail, seq)


def scan_chunk(conninfo: str, tenant: str, origin: str, lo: int, hi: int,
               keep_groups: frozenset[int]) -> ChunkResult:
    """Check entries [lo, hi) (lo a multiple of 256) and fold their leaves."""
    result = ChunkResult(lo, hi)
    leaves: list[bytes] = []
    expected, prev = lo, None
    with psycopg.connect(conninfo) as conn, conn.cursor(name="scan") as cur:
        cur.itersize = 10_000
        cur.execute(_SCAN, (tenant, lo, hi), binary=True)
        for row in cur:
            seq = row[0]
            if seq != expected:
                result.findings.append(("seq", f"entries {expected}..{seq - 1} are missing", expected))
                leaves += [MISSING] * (seq - expected)
                prev = None
            leaf = hashlib.sha256(b"\x00" + row[1]).digest()
            if leaf != row[2]:
                result.findings.append(("leaf_hash", "stored leaf_hash does not match the entry bytes", seq))
            _check_entry(result, row, origin, prev, seq == lo)
            leaves.append(leaf)
            prev, expected = leaf, seq + 1
            result.rows += 1
    if expected < hi:
        result.findings.append(("seq", f"entries {expected}..{hi - 1} are missing", expected))
        leaves += [MISSING] * (hi - expected)
    result.last_leaf = prev
    _fold(result, leaves, keep_groups)
    return result


def _check_entry(result: ChunkResult, row, origin: str, prev: bytes | None, first: bool) -> None:
    seq, entry = row[0], row[1]
    try:
        doc = json.loads(entry)
        claimed = (doc["seq"], doc["id"], doc["stream"], doc["version"], doc["type"], doc["at"],
                   doc["actor"]["id"], doc["meta"].get("idempotency_key"))
        link, log = doc["prev"], doc["log"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        result.findings.append(("entry", f"entry bytes are not a valid ledger entry: {e!r}", seq))
        return
    if first:
        result.first_prev = link
    elif link != (base64.b64encode(prev).decode() if prev else ""):
        result.findings.append(("prev", "prev does not link to the previous entry's leaf hash", seq))
    if log != origin:
        result.findings.append(("entry", f"entry belongs to log {log!r}, not {origin!r}", seq))
    stored = (seq, *row[3:])
    if claimed != stored:
        names = ("seq", "event_id", "stream_id", "stream_version", "type", "recorded_at",
                 "actor_id", "idempotency_key")
        for name, said, column in zip(names, claimed, stored):
            if said != column:
                result.findings.append(
                    ("column", f"column {name} is {column!r} but the entry says {said!r}", seq))


def _fold(result: ChunkResult, leaves: list[bytes], keep_groups: frozenset[int]) -> None:
    first_group = result.lo // GROUP
    for offset in range(0, len(leaves), GROUP):
        group = leaves[offset:offset + GROUP]
        index = first_group + offset // GROUP
        if len(group) == GROUP:
            result.level8.append(fold_perfect(group))
        if index in keep_groups:
            result.groups[index] = group
