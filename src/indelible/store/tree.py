"""The tenant's Merkle tree, read back from stored hashes.

Leaf hashes live in `ledger_entries`; perfect-subtree hashes at levels 8, 16, 24, ... live in
`merkle_nodes`. Any perfect subtree at level L is the fold of at most 2^7 stored hashes at
level 8*floor(L/8), all inside one aligned group of 256 ("tile"), so a proof touches at most
about two tiles per 8 levels: O(log n) reads at any size.

Two ways to read them:
- `subtree(level, index)` fetches whole tiles on demand (one statement per tile, cached per
  instance), for callers that walk many neighbouring subtrees (bundle export);
- `inclusion_proof`, `consistency_proof` and `root` first walk the proof with placeholder
  hashes to learn which perfect subtrees it needs (a function of the sizes and index alone),
  then fetch exactly the stored hashes under those subtrees in one statement, one row per
  subtree with its hashes concatenated, and fold each subtree once. A `SubtreeCache` shared
  by the caller (the API's, for the proofs it serves) skips the subtrees it already holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

import psycopg

from indelible import proofs
from indelible.proofs import HASH_SIZE
from indelible.store.errors import LogIntegrityError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

Subtree = tuple[int, int]  # (level, index): leaves [index << level, (index + 1) << level)
T = TypeVar("T")

_PLACEHOLDER = bytes(HASH_SIZE)  # what the planning walk hashes; never leaves this module

# One row per wanted subtree (LATERAL, so each is an index range scan whatever the planner
# guesses of the arrays' lengths): how many stored hashes were found under it, whether each is
# 32 bytes, and all of them in leaf order. A subtree whose row is missing or short falls back
# to `subtree()`, which names the missing hash (LogIntegrityError) exactly as before.
_SUBTREE_HASHES = """
SELECT 0, r.lo, r.hi, a.* FROM unnest(%(leaf_lo)s::bigint[], %(leaf_hi)s::bigint[]) AS r(lo, hi)
CROSS JOIN LATERAL (
    SELECT count(*), bool_and(octet_length(e.leaf_hash) = 32),
           string_agg(e.leaf_hash, ''::bytea ORDER BY e.seq)
    FROM ledger_entries e WHERE e.tenant_id = %(tenant)s AND e.seq >= r.lo AND e.seq < r.hi) AS a
UNION ALL
SELECT r.level, r.lo, r.hi, a.*
FROM unnest(%(node_level)s::int[], %(node_lo)s::bigint[], %(node_hi)s::bigint[]) AS r(level, lo, hi)
CROSS JOIN LATERAL (
    SELECT count(*), bool_and(octet_length(n.hash) = 32),
           string_agg(n.hash, ''::bytea ORDER BY n.idx)
    FROM merkle_nodes n
    WHERE n.tenant_id = %(tenant)s AND n.level = r.level AND n.idx >= r.lo AND n.idx < r.hi) AS a
"""


class SubtreeCache:
    """Hashes of perfect subtrees at level >= 8 of each tenant's log, shared by the proofs
    one process serves against one database (the API keeps one beside its connection pool).

    Why serving from it is sound. A perfect subtree's hash is the fold of a complete, aligned
    run of stored hashes (only complete runs are cached), and a complete run never changes
    legitimately: entries and Merkle nodes are append-only. The proof is not trusted because
    of where its hashes came from: the auditor recomputes the root from the entry's own leaf
    hash and the path, and accepts only if that equals the root of a checkpoint signed with
    our key. A path that reaches a signed root from that entry is a genuine proof (SHA-256
    collision resistance) whether its siblings were read a second or an hour ago.

    If the database is edited after a subtree was cached (a superuser bypassing the
    append-only triggers), proofs keep using the hash as it was read: a proof of an edited
    entry still fails at the auditor, because the entry and leaf hash are read fresh for
    every proof. A cached hash can therefore never make a proof be *accepted* wrongly; it can
    only hide the edit from proofs, and proofs were never what catches edits — verification
    (`indelible verify`, the continuous verifier) recomputes everything from the entries and
    never reads this cache. Signing never uses one either (store/signing.py reads fresh).
    Keys name the tenant, not the database: one cache serves one database. A database
    replaced under a running process (a restored backup) gets proofs that fail to verify
    until the process restarts, never proofs that pass wrongly.

    Bounded: when `limit` hashes are held it starts over (the hot upper subtrees refill
    within a few proofs). Leaf-level subtrees (below level 8) are not kept: a random proof's
    are its own, and would only push the shared upper ones out.
    """

    def __init__(self, limit: int = 1 << 16):  # hashes, about 100 bytes each
        self.limit = limit
        self._hashes: dict[tuple[str, int, int], bytes] = {}
        self._lock = threading.Lock()  # the API serves proofs from a thread pool

    def get(self, tenant: str, subtree: Subtree) -> bytes | None:
        return self._hashes.get((tenant, *subtree))

    def put(self, tenant: str, subtree: Subtree, hash_: bytes) -> None:
        if subtree[0] < TILE_HEIGHT:
            return
        with self._lock:
            if len(self._hashes) >= self.limit:
                self._hashes.clear()
            self._hashes[(tenant, *subtree)] = hash_

    def __len__(self) -> int:
        return len(self._hashes)


class StoredTree:
    def __init__(self, conn: psycopg.Connection, tenant: str, *,
                 cache: SubtreeCache | None = None):
        self._conn = conn
        self._tenant = tenant
        self._cache = cache
        self._tiles: dict[tuple[int, int], dict[int, bytes]] = {}

    def subtree(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree over leaves [index << level, (index + 1) << level)."""
        base = level - level % TILE_HEIGHT
        span = level - base
        start = index << span
        tile = self._tile(base, start >> TILE_HEIGHT)
        try:
            hashes = [tile[i] for i in range(start, start + (1 << span))]
        except KeyError as e:
            raise LogIntegrityError(
                f"tenant {self._tenant!r}: stored hash level {base} index {e.args[0]} is missing") from e
        return hashes[0] if span == 0 else proofs.fold_perfect(hashes)

    def root(self, size: int) -> bytes:
        return self._planned(lambda subtree: proofs.tree_root(size, subtree))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._planned(lambda subtree: proofs.inclusion_proof(index, size, subtree))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return self._planned(lambda subtree: proofs.consistency_proof(size1, size2, subtree))

    def _planned(self, walk: Callable[[Callable[[int, int], bytes]], T]) -> T:
        """Run `walk` twice: first with placeholders to learn the subtrees it asks for (the
        same generation code decides, so plan and proof cannot disagree), then on their
        hashes, fetched in one statement."""
        wanted: dict[Subtree, None] = {}

        def record(level: int, index: int) -> bytes:
            wanted[(level, index)] = None
            return _PLACEHOLDER

        walk(record)  # ValueError for bad sizes or index, before any read
        known = self._subtree_hashes(wanted)
        return walk(lambda level, index: known[(level, index)])

    def _subtree_hashes(self, wanted: Iterable[Subtree]) -> dict[Subtree, bytes]:
        known: dict[Subtree, bytes] = {}
        missing: list[Subtree] = []
        for subtree in wanted:
            cached = None if self._cache is None else self._cache.get(self._tenant, subtree)
            if cached is None:
                missing.append(subtree)
            else:
                known[subtree] = cached
        if missing:
            known.update(self._fetch(missing))
        return known

    def _fetch(self, subtrees: list[Subtree]) -> dict[Subtree, bytes]:
        ranges = {}  # (base level, lo, hi) of the stored hashes -> the subtree they fold to
        for level, index in subtrees:
            base = level - level % TILE_HEIGHT
            lo = index << (level - base)
            ranges[(base, lo, lo + (1 << (level - base)))] = (level, index)
        leaf = [r for r in ranges if r[0] == 0]
        node = [r for r in ranges if r[0] > 0]
        rows = self._conn.execute(_SUBTREE_HASHES, {
            "tenant": self._tenant, "leaf_lo": [r[1] for r in leaf],
            "leaf_hi": [r[2] for r in leaf], "node_level": [r[0] for r in node],
            "node_lo": [r[1] for r in node], "node_hi": [r[2] for r in node]}, binary=True)
        found = {}
        for base, lo, hi, count, all_sized, joined in rows:
            if count == hi - lo and all_sized:
                subtree = ranges.pop((base, lo, hi))
                found[subtree] = self._folded(subtree, bytes(joined))
        for subtree in ranges.values():  # short or malformed: let the tile path say what is wrong
            found[subtree] = self.subtree(*subtree)
        return found

    def _folded(self, subtree: Subtree, joined: bytes) -> bytes:
        if len(joined) == HASH_SIZE:
            hash_ = joined
        else:
            hash_ = proofs.fold_perfect([joined[i:i + HASH_SIZE]
                                         for i in range(0, len(joined), HASH_SIZE)])
        if self._cache is not None:
            self._cache.put(self._tenant, subtree, hash_)
        return hash_

    def _tile(self, level: int, tile: int) -> dict[int, bytes]:
        key = (level, tile)
        if key not in self._tiles:
            lo, hi = tile * TILE_WIDTH, (tile + 1) * TILE_WIDTH
            if level == 0:
                rows = self._conn.execute(
                    "SELECT seq, leaf_hash FROM ledger_entries "
                    "WHERE tenant_id = %s AND seq >= %s AND seq < %s", (self._tenant, lo, hi))
            else:
                rows = self._conn.execute(
                    "SELECT idx, hash FROM merkle_nodes "
                    "WHERE tenant_id = %s AND level = %s AND idx >= %s AND idx < %s",
                    (self._tenant, level, lo, hi))
            self._tiles[key] = {i: bytes(h) for i, h in rows}
        return self._tiles[key]
