"""The tenant's Merkle tree, read back from stored hashes.

Leaf hashes live in `ledger_entries`; perfect-subtree hashes at levels 8, 16, 24, ... live in
`merkle_nodes`. Any perfect subtree at level L is the fold of at most 2^7 stored hashes at
level 8*floor(L/8), all inside one aligned group of 256 ("tile"), so a proof touches at most
about two tiles per 8 levels: O(log n) reads at any size. Tiles are cached per instance.
"""

from __future__ import annotations

import psycopg

from indelible import proofs
from indelible.store.errors import LogIntegrityError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


class StoredTree:
    def __init__(self, conn: psycopg.Connection, tenant: str):
        self._conn = conn
        self._tenant = tenant
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
        return proofs.tree_root(size, self.subtree)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return proofs.inclusion_proof(index, size, self.subtree)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return proofs.consistency_proof(size1, size2, self.subtree)

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
