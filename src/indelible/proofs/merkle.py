"""RFC 9162 §2.1 Merkle inclusion and consistency proofs: verification and generation.

Verification (§2.1.3.2, §2.1.4.2) is what an auditor runs offline: it needs nothing but
the hashes it is given, and every refusal is a :class:`ProofError` saying what is wrong.

Generation (§2.1.3.1, §2.1.4.1) is what the log runs. It never sees the leaves: it asks
a caller-supplied ``subtree(level, index)`` for the hash of the *perfect* subtree covering
leaves ``[index << level, (index + 1) << level)``, so a store can answer from persisted
tile-level nodes and recompute the rest. The RFC's recursive definitions split a range of
``n`` leaves at ``k``, the largest power of two smaller than ``n``; every range that split
produces is a run of aligned perfect subtrees, which is why ``subtree`` suffices.

Conventions beyond the RFC (see ``vectors/merkle/NOTICE.md``): every hash must be exactly
32 bytes, and a consistency proof from the empty tree to a larger one is refused because
there is nothing to prove.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Part of this module's API, kept in their own module for size.
from .compact import TILE_HEIGHT, CompactRange, fold_perfect
from .errors import ProofError
from .hashing import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = [
    "TILE_HEIGHT",
    "CompactRange",
    "fold_perfect",
    "consistency_proof",
    "consistency_proof_length",
    "inclusion_proof",
    "inclusion_proof_length",
    "perfect_subtrees",
    "range_root",
    "root_from_inclusion_proof",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

SubtreeHash = Callable[[int, int], bytes]
"""``subtree(level, index)``: root of the perfect subtree over leaves
``[index << level, (index + 1) << level)``."""


# --- argument checks shared by the verifiers ------------------------------------------


def _check_count(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ProofError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _check_hash(value: object, what: str) -> bytes:
    if type(value) is not bytes:
        raise ProofError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")
    return value


def _check_proof(proof: Sequence[bytes], what: str) -> list[bytes]:
    if isinstance(proof, (str, bytes)) or not isinstance(proof, Sequence):
        raise ProofError(f"{what} must be a sequence of hashes, got {type(proof).__name__}")
    return [_check_hash(h, f"{what} hash {i}") for i, h in enumerate(proof)]


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift fn and sn equally until LSB(fn) is set or fn is 0 (RFC 9162 §2.1.3.2 4.b.ii)."""
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


# --- RFC 9162 §2.1.3.2: verifying an inclusion proof ------------------------------------


def inclusion_proof_length(leaf_index: int, tree_size: int) -> int:
    """Number of hashes in the inclusion proof of ``leaf_index < tree_size``.

    The path has one hash per level where the leaf's and the last leaf's paths have
    diverged (``inner``) plus one per left-hand perfect subtree above that (``border``).
    """
    inner = (leaf_index ^ (tree_size - 1)).bit_length()
    return inner + (leaf_index >> inner).bit_count()


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root ``proof`` implies for ``leaf_hash`` at ``leaf_index`` (RFC 9162 §2.1.3.2).

    Raises :class:`ProofError` if the arguments cannot describe an inclusion proof; the
    caller compares the result with a trusted root (see :func:`verify_inclusion`).
    """
    # 0. Every input is well formed: counts are non-negative ints, hashes are 32 bytes.
    _check_count(leaf_index, "leaf index")
    _check_count(tree_size, "tree size")
    leaf = _check_hash(leaf_hash, "leaf hash")
    path = _check_proof(proof, "inclusion proof")
    # 1. leaf_index must be inside the tree.
    if leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is not in a tree of size {tree_size}")
    # The path length is fixed by index and size; checking it first makes the error exact.
    want = inclusion_proof_length(leaf_index, tree_size)
    if len(path) != want:
        raise ProofError(
            f"inclusion proof has {len(path)} hashes, expected {want} "
            f"for index {leaf_index} in a tree of size {tree_size}"
        )
    # 2. fn is the leaf's position, sn the last leaf's position. 3. r starts at the leaf.
    fn, sn, r = leaf_index, tree_size - 1, leaf
    # 4. Hash in each sibling on the side the position bits say it is on.
    for p in path:
        if sn == 0:  # 4.a
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:  # 4.b
            r = node_hash(p, r)
            fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4.c
        sn >>= 1
    # 5. The path must have reached the root.
    if sn != 0:
        raise ProofError("inclusion proof ends below the root")
    return r


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree of ``tree_size`` with ``root``.

    RFC 9162 §2.1.3.2. Returns ``None`` when the proof holds, raises :class:`ProofError`
    otherwise.
    """
    # 1. The trusted root is a hash.
    root = _check_hash(root, "root")
    # 2. Recompute the root from the leaf and its path (checks index, size, path length).
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)
    # 3. It must equal the trusted root.
    if computed != root:
        raise ProofError(
            f"root mismatch: inclusion proof for index {leaf_index} in a tree of size "
            f"{tree_size} yields {computed.hex()}, expected {root.hex()}"
        )


# --- RFC 9162 §2.1.4.2: verifying a consistency proof -----------------------------------


def consistency_proof_length(size1: int, size2: int) -> int:
    """Number of hashes in the consistency proof between ``0 < size1 < size2``.

    The proof is the inclusion path of leaf ``size1 - 1`` in the new tree, minus the levels
    inside the largest perfect subtree ending at ``size1``, plus that subtree's root unless
    it is the whole old tree (then the verifier already has it as ``root1``).
    """
    shift = (size1 & -size1).bit_length() - 1
    seed = 0 if size1 == 1 << shift else 1
    return inclusion_proof_length(size1 - 1, size2) - shift + seed


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (``size2``, ``root2``) extends the tree (``size1``, ``root1``).

    RFC 9162 §2.1.4.2. Returns ``None`` when the proof holds, raises :class:`ProofError`
    otherwise. ``size1 == size2`` needs an empty proof and equal roots (for size 0, both
    EMPTY_ROOT); ``size1 == 0 < size2`` is refused (nothing to prove: callers that accept
    an empty old tree handle that before calling).
    """
    # 1. Every input is well formed.
    _check_count(size1, "old tree size")
    _check_count(size2, "new tree size")
    root1 = _check_hash(root1, "old root")
    root2 = _check_hash(root2, "new root")
    path = _check_proof(proof, "consistency proof")
    # 2. The old tree must not be larger, and must not be empty unless both are.
    if size1 > size2:
        raise ProofError(f"old tree size {size1} is larger than new tree size {size2}")
    if size1 == size2:
        _verify_same_size(size1, path, root1, root2)
        return
    if size1 == 0:
        raise ProofError(f"refusing a consistency proof from the empty tree to size {size2}")
    # 3. The path length is fixed by the two sizes.
    want = consistency_proof_length(size1, size2)
    if len(path) != want:
        raise ProofError(
            f"consistency proof has {len(path)} hashes, expected {want} "
            f"from size {size1} to size {size2}"
        )
    # 4. Recompute both roots from the path and compare.
    fr, sr = _roots_from_consistency_path(size1, size2, path, root1)
    if fr != root1:
        raise ProofError(f"old root mismatch: proof yields {fr.hex()}, expected {root1.hex()}")
    if sr != root2:
        raise ProofError(f"new root mismatch: proof yields {sr.hex()}, expected {root2.hex()}")


def _verify_same_size(size: int, path: list[bytes], root1: bytes, root2: bytes) -> None:
    if path:
        raise ProofError(
            f"consistency proof between equal sizes {size} must be empty, has {len(path)} hashes"
        )
    if root1 != root2:
        raise ProofError(f"root mismatch: two different roots for the same tree size {size}")
    if size == 0 and root1 != EMPTY_ROOT:
        raise ProofError("root mismatch: the empty tree's root must be SHA-256 of the empty string")


def _roots_from_consistency_path(
    size1: int, size2: int, path: list[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-7 for ``0 < size1 < size2``; returns (fr, sr)."""
    # 2. If the old tree is perfect, its root is the seed of the path.
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    # 3. fn is the old tree's last leaf, sn the new tree's last leaf.
    fn, sn = size1 - 1, size2 - 1
    # 4. Skip the levels inside the perfect subtree ending at size1.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Both roots start from that subtree's root.
    fr = sr = path[0]
    # 6. Hash in each value; left siblings go into both roots, right ones only the new.
    for c in path[1:]:
        if sn == 0:  # 6.a
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:  # 6.b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6.c
        sn >>= 1
    # 7. The path must have reached the new root (the caller compares fr and sr).
    if sn != 0:
        raise ProofError("consistency proof ends below the root")
    return fr, sr


# --- generation: RFC 9162 §2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 PROOF --------------------


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n >= 2), where RFC 9162 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_range(lo: int, hi: int) -> None:
    if type(lo) is not int or type(hi) is not int or not 0 <= lo < hi:
        raise ValueError(f"leaf range [{lo!r}, {hi!r}) must satisfy 0 <= lo < hi")


def perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """Decompose leaves ``[lo, hi)`` into maximal aligned perfect subtrees, left to right.

    Each item is ``(level, index)``: the subtree over ``[index << level, (index + 1) << level)``.
    Greedy from the left: at each step take the largest subtree that starts at ``lo`` (so
    ``lo`` is a multiple of its size) and still fits before ``hi``.
    """
    _check_range(lo, hi)
    out = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo:
            level = min(level, (lo & -lo).bit_length() - 1)
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def range_root(lo: int, hi: int, subtree: SubtreeHash) -> bytes:
    """MTH(D[lo:hi]) as RFC 9162 §2.1.1 defines it for the subtree of leaves ``[lo, hi)``.

    Precondition (``ValueError`` otherwise): ``hi - lo == 1`` or ``lo`` is a multiple of
    ``k``, the largest power of two smaller than ``hi - lo``. Every range the RFC's
    recursion produces satisfies it, and under it the RFC tree over ``[lo, hi)`` is the
    aligned perfect subtrees of :func:`perfect_subtrees` joined right to left.
    """
    _check_range(lo, hi)
    if hi - lo > 1 and lo % _split(hi - lo):
        raise ValueError(f"leaf range [{lo}, {hi}) is not a subtree of an RFC 9162 tree")
    parts = perfect_subtrees(lo, hi)
    acc = subtree(*parts[-1])
    for level, index in reversed(parts[:-1]):
        acc = node_hash(subtree(level, index), acc)
    return acc


def tree_root(size: int, subtree: SubtreeHash) -> bytes:
    """MTH of the first ``size`` leaves (RFC 9162 §2.1.1); EMPTY_ROOT when ``size`` is 0."""
    if type(size) is not int or size < 0:
        raise ValueError(f"tree size must be a non-negative integer, got {size!r}")
    return range_root(0, size, subtree) if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf's sibling first.

    Walks from the root down: at each split the sibling of the half holding ``index`` is
    one proof hash; the list is reversed at the end because PATH lists them leaf first.
    """
    if type(index) is not int or type(size) is not int or not 0 <= index < size:
        raise ValueError(f"leaf index {index!r} is not in a tree of size {size!r}")
    siblings = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            siblings.append(range_root(mid, hi, subtree))
            hi = mid
        else:
            siblings.append(range_root(lo, mid, subtree))
            lo = mid
    siblings.reverse()
    return siblings


def consistency_proof(size1: int, size2: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 §2.1.4.1 for ``0 < size1 <= size2``.

    SUBPROOF unrolled from the root down: ``whole`` is the RFC's flag b, true while the
    current range starts at leaf 0 (then the old tree's root is not needed in the proof).
    """
    if type(size1) is not int or type(size2) is not int or not 0 < size1 <= size2:
        raise ValueError(f"consistency proof needs 0 < size1 <= size2, got {size1!r}, {size2!r}")
    hashes = []
    lo, hi, whole = 0, size2, True
    while size1 != hi:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            hashes.append(range_root(mid, hi, subtree))
            hi = mid
        else:
            hashes.append(range_root(lo, mid, subtree))
            lo, whole = mid, False
    if not whole:
        hashes.append(range_root(lo, hi, subtree))
    hashes.reverse()
    return hashes
