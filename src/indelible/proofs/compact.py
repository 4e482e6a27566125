"""The Merkle frontier of a growing log, and the root of a perfect subtree.

A tree of ``size`` leaves (RFC 9162 §2.1.1) is, left to right, one perfect subtree per set
bit of ``size``, largest first, joined right to left. Keeping just those roots - the
"compact range" of ``[0, size)`` - lets the log head compute its root in O(log n) and
append a leaf in amortized O(1): appending merges equal-sized subtrees exactly like
binary addition carries.

The store persists only nodes at levels that are positive multiples of
:data:`TILE_HEIGHT` (as in C2SP tlog-tiles); levels below are recomputed from leaves, so
:meth:`CompactRange.append` reports exactly the tile-level subtrees it completes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

from .errors import ProofError
from .hashing import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX

__all__ = ["TILE_HEIGHT", "CompactRange", "fold_perfect"]

TILE_HEIGHT = 8  # levels per tile; nodes at levels 8, 16, 24, ... are persisted
_TILE_MASK = TILE_HEIGHT - 1  # TILE_HEIGHT is a power of two
_MAX_SIZE = (1 << 64) - 1  # leaves; the size is serialized as a uint64


def fold_perfect(hashes: Sequence[bytes]) -> bytes:
    """Root of the perfect tree over ``hashes`` (RFC 9162 §2.1.1); count must be a power of two.

    Hashes one level at a time; this is the verifier's hot path for whole tiles of 256.
    Raises ``ValueError`` for a count that is not a power of two or a hash that is not
    32 bytes.
    """
    level = list(hashes)
    n = len(level)
    if n == 0 or n & (n - 1):
        raise ValueError(f"a perfect subtree needs a power-of-two number of hashes, got {n}")
    if set(map(len, level)) != {HASH_SIZE}:
        raise ValueError(f"every hash of a perfect subtree must be {HASH_SIZE} bytes")
    node = NODE_PREFIX
    while len(level) > 1:
        pairs = iter(level)
        level = [sha256(node + left + right).digest() for left, right in zip(pairs, pairs)]
    return level[0]


class CompactRange:
    """The perfect-subtree roots covering leaves ``[0, size)``, largest (leftmost) first.

    ``hashes[i]`` is the root of the subtree for the i-th set bit of ``size`` counted from
    the most significant one. Mutable: :meth:`append` and :meth:`extend` grow it in place;
    use :meth:`copy` to keep a snapshot.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if type(size) is not int or not 0 <= size <= _MAX_SIZE:
            raise ValueError(f"compact range size must be an integer in [0, 2**64), got {size!r}")
        hashes = list(hashes)
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a compact range of size {size} has {size.bit_count()} hashes, got {len(hashes)}"
            )
        for i, h in enumerate(hashes):
            if type(h) is not bytes or len(h) != HASH_SIZE:
                raise ValueError(f"compact range hash {i} is not {HASH_SIZE} bytes")
        self._size = size
        self._hashes = hashes

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, largest first."""
        return tuple(self._hashes)

    def root(self) -> bytes:
        """MTH of the covered leaves (RFC 9162 §2.1.1); EMPTY_ROOT when empty."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        acc = hashes[-1]
        for left in reversed(hashes[:-1]):
            acc = sha256(NODE_PREFIX + left + acc).digest()
        return acc

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf; return the tile-level subtrees it completed as (level, index, hash).

        A subtree at ``level`` completed by leaf number ``size`` (counting this leaf) covers
        the last ``2**level`` leaves, so its index is ``(size >> level) - 1``. Hot path:
        one SHA-256 per leaf amortized, no allocation beyond new hashes and the result.
        """
        if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash for leaf {self._size} is not {HASH_SIZE} bytes")
        carry = self._size
        if carry == _MAX_SIZE:
            raise ValueError("compact range is full (2**64 - 1 leaves)")
        size = self._size = carry + 1
        stack, h, level = self._hashes, leaf_hash, 0
        completed: list[tuple[int, int, bytes]] = []
        # Binary addition: each trailing 1 bit of the old size is a subtree as tall as the
        # one being carried, so the two merge into one a level up.
        while carry & 1:
            h = sha256(NODE_PREFIX + stack.pop() + h).digest()
            carry >>= 1
            level += 1
            if not level & _TILE_MASK:
                completed.append((level, (size >> level) - 1, h))
        stack.append(h)
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Add leaves in order; return every tile-level subtree completed, in completion order.

        Same as :meth:`append` per leaf, inlined for bulk use (rebuilding a frontier from many
        leaves). The appender calls :meth:`append`, since each leaf hash depends on the entry
        before it.
        """
        stack, size = self._hashes, self._size
        node, mask, limit = NODE_PREFIX, _TILE_MASK, _MAX_SIZE  # locals: faster in the loop
        completed: list[tuple[int, int, bytes]] = []
        try:
            for h in leaf_hashes:
                if type(h) is not bytes or len(h) != HASH_SIZE:
                    raise ValueError(f"leaf hash for leaf {size} is not {HASH_SIZE} bytes")
                if size == limit:
                    raise ValueError("compact range is full (2**64 - 1 leaves)")
                carry = size
                size += 1
                level = 0
                while carry & 1:
                    h = sha256(node + stack.pop() + h).digest()
                    carry >>= 1
                    level += 1
                    if not level & mask:
                        completed.append((level, (size >> level) - 1, h))
                stack.append(h)
        finally:
            # Leaves before a refused one stay appended; size must match the stack.
            self._size = size
        return completed

    def copy(self) -> CompactRange:
        """An independent copy."""
        clone = CompactRange.__new__(CompactRange)
        clone._size = self._size
        clone._hashes = list(self._hashes)
        return clone

    def to_bytes(self) -> bytes:
        """8-byte big-endian size followed by the hashes, largest subtree first."""
        return self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """Inverse of :meth:`to_bytes`; :class:`ProofError` if ``data`` is malformed."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ProofError(f"compact range must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < 8:
            raise ProofError(f"compact range is {len(data)} bytes, shorter than its 8-byte size")
        size = int.from_bytes(data[:8], "big")
        want = 8 + HASH_SIZE * size.bit_count()
        if len(data) != want:
            raise ProofError(
                f"compact range of size {size} must be {want} bytes, got {len(data)}"
            )
        hashes = [data[i : i + HASH_SIZE] for i in range(8, want, HASH_SIZE)]
        return cls(size, hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"
