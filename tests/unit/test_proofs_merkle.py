"""RFC 9162 §2.1 proof generation and verification, checked against the RFC's recursive
definitions written out naively below (MTH, PATH, SUBPROOF) over an in-memory tree."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible.proofs import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    fold_perfect,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    range_root,
    root_from_inclusion_proof,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from indelible.proofs.merkle import consistency_proof_length, inclusion_proof_length

SETTINGS = settings(max_examples=150, deadline=None)


# --- RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 as written, on lists --------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


class Tree:
    """Leaf hashes in memory; ``subtree`` refuses anything but a perfect, existing subtree."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.leaves = [leaf_hash(b"%d:%d" % (seed, i)) for i in range(size)]

    def subtree(self, level: int, index: int) -> bytes:
        lo, hi = index << level, (index + 1) << level
        if level < 0 or index < 0 or hi > len(self.leaves):
            raise AssertionError(f"asked for subtree ({level}, {index}) outside the tree")
        return fold_perfect(self.leaves[lo:hi])


def flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


sizes = st.integers(min_value=1, max_value=300)


# --- generation matches the RFC definitions ---------------------------------------------


@SETTINGS
@given(size=sizes, seed=st.integers(0, 3))
def test_tree_root_is_the_rfc_mth(size, seed):
    tree = Tree(size, seed)
    assert tree_root(size, tree.subtree) == mth(tree.leaves)


def test_the_root_of_the_empty_tree_is_empty_root():
    assert tree_root(0, Tree(0).subtree) == EMPTY_ROOT


@SETTINGS
@given(data=st.data(), size=sizes)
def test_generated_inclusion_proofs_are_the_rfc_path_and_verify(data, size):
    tree = Tree(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, tree.subtree)
    assert proof == path(index, tree.leaves)
    assert len(proof) == inclusion_proof_length(index, size)
    root = mth(tree.leaves)
    verify_inclusion(index, size, tree.leaves[index], proof, root)
    assert root_from_inclusion_proof(index, size, tree.leaves[index], proof) == root


@SETTINGS
@given(data=st.data(), size2=sizes)
def test_generated_consistency_proofs_are_the_rfc_proof_and_verify(data, size2):
    tree = Tree(size2)
    size1 = data.draw(st.integers(1, size2))
    proof = consistency_proof(size1, size2, tree.subtree)
    assert proof == subproof(size1, tree.leaves, True)
    if size1 < size2:
        assert len(proof) == consistency_proof_length(size1, size2)
    verify_consistency(size1, size2, proof, mth(tree.leaves[:size1]), mth(tree.leaves))


# --- any tampering fails ----------------------------------------------------------------


@SETTINGS
@given(data=st.data(), size=sizes, bit=st.integers(0, 255))
def test_a_single_flipped_bit_anywhere_fails_inclusion(data, size, bit):
    tree = Tree(size)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, tree.subtree)
    leaf, root = tree.leaves[index], mth(tree.leaves)
    target = data.draw(st.integers(-2, len(proof) - 1))
    if target == -2:
        leaf = flip(leaf, bit)
    elif target == -1:
        root = flip(root, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(ProofError, match="root mismatch"):
        verify_inclusion(index, size, leaf, proof, root)


@SETTINGS
@given(data=st.data(), size=st.integers(2, 300))
def test_a_wrong_index_fails_inclusion(data, size):
    tree = Tree(size)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    proof = inclusion_proof(index, size, tree.subtree)
    with pytest.raises(ProofError):
        verify_inclusion(other, size, tree.leaves[index], proof, mth(tree.leaves))


@SETTINGS
@given(data=st.data(), size=sizes)
def test_a_wrong_size_with_that_sizes_true_root_fails_inclusion(data, size):
    tree = Tree(400)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(index + 1, 400).filter(lambda s: s != size))
    proof = inclusion_proof(index, size, tree.subtree)
    with pytest.raises(ProofError):
        verify_inclusion(index, other, tree.leaves[index], proof, mth(tree.leaves[:other]))


@SETTINGS
@given(data=st.data(), size2=st.integers(2, 300), bit=st.integers(0, 255))
def test_a_single_flipped_bit_anywhere_fails_consistency(data, size2, bit):
    tree = Tree(size2)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = consistency_proof(size1, size2, tree.subtree)
    root1, root2 = mth(tree.leaves[:size1]), mth(tree.leaves)
    target = data.draw(st.integers(-2, len(proof) - 1))
    if target == -2:
        root1 = flip(root1, bit)
    elif target == -1:
        root2 = flip(root2, bit)
    else:
        proof[target] = flip(proof[target], bit)
    with pytest.raises(ProofError, match="root mismatch"):
        verify_consistency(size1, size2, proof, root1, root2)


@SETTINGS
@given(data=st.data(), size2=st.integers(2, 300))
def test_wrong_sizes_with_their_true_roots_fail_consistency(data, size2):
    tree = Tree(400)
    size1 = data.draw(st.integers(1, size2 - 1))
    proof = consistency_proof(size1, size2, tree.subtree)
    other1 = data.draw(st.integers(1, size2).filter(lambda s: s != size1))
    with pytest.raises(ProofError):
        verify_consistency(other1, size2, proof, mth(tree.leaves[:other1]), mth(tree.leaves[:size2]))
    other2 = data.draw(st.integers(size1 + 1, 400).filter(lambda s: s != size2))
    with pytest.raises(ProofError):
        verify_consistency(size1, other2, proof, mth(tree.leaves[:size1]), mth(tree.leaves[:other2]))


# --- refusals name what is wrong ----------------------------------------------------------

H = leaf_hash(b"x")


def test_an_inclusion_proof_of_the_wrong_length_is_refused_with_the_expected_length():
    tree = Tree(8)
    proof = inclusion_proof(5, 8, tree.subtree)
    with pytest.raises(ProofError, match="has 2 hashes, expected 3 for index 5 in a tree of size 8"):
        verify_inclusion(5, 8, tree.leaves[5], proof[:2], mth(tree.leaves))


def test_a_leaf_index_outside_the_tree_is_refused():
    with pytest.raises(ProofError, match="leaf index 8 is not in a tree of size 8"):
        verify_inclusion(8, 8, H, [H, H, H], H)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 1, H[:31], [], H), "leaf hash is 31 bytes, expected 32"),
        ((0, 1, H, [], H + b"\0"), "root is 33 bytes, expected 32"),
        ((0, 2, H, [b""], H), "inclusion proof hash 0 is 0 bytes, expected 32"),
        ((0, 2, H, ["ab"], H), "inclusion proof hash 0 must be bytes, got str"),
        ((0, 2, H, H, H), "must be a sequence of hashes"),
        ((-1, 2, H, [H], H), "leaf index must be a non-negative integer"),
        ((0, True, H, [], H), "tree size must be a non-negative integer"),
    ],
)
def test_malformed_inclusion_arguments_are_refused(args, message):
    with pytest.raises(ProofError, match=message):
        verify_inclusion(*args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((5, 4, [], H, H), "old tree size 5 is larger than new tree size 4"),
        ((0, 4, [], EMPTY_ROOT, H), "refusing a consistency proof from the empty tree to size 4"),
        ((3, 3, [H], H, H), "between equal sizes 3 must be empty, has 1 hashes"),
        ((3, 3, [], H, EMPTY_ROOT), "two different roots for the same tree size 3"),
        ((0, 0, [], H, H), "empty tree's root must be SHA-256 of the empty string"),
        ((1, 8, [H, H], H, H), "consistency proof has 2 hashes, expected 3 from size 1 to size 8"),
        ((1, 2, [H], H[:1], H), "old root is 1 bytes, expected 32"),
        ((1, 2, [H], H, None), "new root must be bytes, got NoneType"),
        ((1.0, 2, [H], H, H), "old tree size must be a non-negative integer"),
    ],
)
def test_malformed_consistency_arguments_are_refused(args, message):
    with pytest.raises(ProofError, match=message):
        verify_consistency(*args)


def test_equal_sizes_with_equal_roots_and_no_proof_are_consistent():
    verify_consistency(3, 3, [], H, H)
    verify_consistency(0, 0, (), EMPTY_ROOT, EMPTY_ROOT)


# --- subtree decomposition -----------------------------------------------------------------


@SETTINGS
@given(lo=st.integers(0, 5000), n=st.integers(1, 5000))
def test_perfect_subtrees_cover_the_range_with_maximal_aligned_subtrees(lo, n):
    parts = perfect_subtrees(lo, lo + n)
    at = lo
    for level, index in parts:
        assert index << level == at  # contiguous and aligned
        at += 1 << level
    assert at == lo + n
    for (l1, i1), (l2, i2) in zip(parts, parts[1:]):
        assert not (l1 == l2 and i1 % 2 == 0 and i2 == i1 + 1), "two siblings left unmerged"


def test_perfect_subtrees_of_a_prefix_follow_the_bits_of_the_size():
    assert perfect_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_subtrees(3, 9) == [(0, 3), (2, 1), (0, 8)]


@SETTINGS
@given(exp=st.integers(0, 8), multiple=st.integers(0, 6), n=st.integers(1, 256))
def test_range_root_is_the_rfc_mth_of_any_subtree_range(exp, multiple, n):
    k = _k(n) if n > 1 else 1
    lo = k * multiple
    tree = Tree(lo + n)
    assert range_root(lo, lo + n, tree.subtree) == mth(tree.leaves[lo : lo + n])


@pytest.mark.parametrize(("lo", "hi"), [(2, 7), (1, 4), (6, 11), (3, 3), (-1, 2), (4, 1)])
def test_range_root_refuses_ranges_that_are_not_rfc_subtrees(lo, hi):
    with pytest.raises(ValueError, match="leaf range"):
        range_root(lo, hi, Tree(8).subtree)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: inclusion_proof(8, 8, t.subtree), "leaf index 8 is not in a tree of size 8"),
        (lambda t: consistency_proof(0, 8, t.subtree), "needs 0 < size1 <= size2"),
        (lambda t: consistency_proof(9, 8, t.subtree), "needs 0 < size1 <= size2"),
        (lambda t: tree_root(-1, t.subtree), "tree size must be a non-negative integer"),
        (lambda t: perfect_subtrees(5, 5), "must satisfy 0 <= lo < hi"),
    ],
)
def test_generation_refuses_caller_misuse_with_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(Tree(8))


def test_fold_perfect_is_the_rfc_mth_of_a_power_of_two_count():
    leaves = Tree(256).leaves
    for n in (1, 2, 4, 64, 256):
        assert fold_perfect(leaves[:n]) == mth(leaves[:n])


@pytest.mark.parametrize("n", [0, 3, 6, 255])
def test_fold_perfect_refuses_a_count_that_is_not_a_power_of_two(n):
    with pytest.raises(ValueError, match="power-of-two number of hashes"):
        fold_perfect(Tree(n).leaves)


def test_fold_perfect_refuses_a_hash_of_the_wrong_size():
    with pytest.raises(ValueError, match="must be 32 bytes"):
        fold_perfect([H, H[:5]])
