"""CompactRange, the Merkle frontier the log head keeps (RFC 9162 §2.1.1 roots)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible.proofs import (
    EMPTY_ROOT,
    TILE_HEIGHT,
    CompactRange,
    ProofError,
    fold_perfect,
    leaf_hash,
    perfect_subtrees,
    tree_root,
)

SETTINGS = settings(max_examples=100, deadline=None)


def leaves(n: int, seed: int = 0) -> list[bytes]:
    return [leaf_hash(b"%d:%d" % (seed, i)) for i in range(n)]


def subtree_of(hashes: list[bytes]):
    def subtree(level: int, index: int) -> bytes:
        return fold_perfect(hashes[index << level : (index + 1) << level])

    return subtree


def test_the_root_equals_tree_root_at_every_size_up_to_300():
    hashes = leaves(300)
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT
    for n, h in enumerate(hashes, start=1):
        cr.append(h)
        assert cr.size == n
        assert cr.root() == tree_root(n, subtree_of(hashes))


@SETTINGS
@given(n=st.integers(0, 600), seed=st.integers(0, 1000))
def test_the_hashes_are_the_perfect_subtrees_of_the_size_largest_first(n, seed):
    hashes = leaves(n, seed)
    cr = CompactRange()
    cr.extend(hashes)
    subtree = subtree_of(hashes)
    want = tuple(subtree(level, index) for level, index in perfect_subtrees(0, n)) if n else ()
    assert cr.hashes == want
    assert CompactRange(n, want) == cr


def test_append_reports_exactly_the_level_8_and_16_subtrees_it_completes():
    total = 70_000
    hashes = leaves(total)
    cr = CompactRange()
    reported = []
    for n, h in enumerate(hashes, start=1):
        got = cr.append(h)
        want_keys = [
            (level, (n >> level) - 1)
            for level in (TILE_HEIGHT, 2 * TILE_HEIGHT)
            if n % (1 << level) == 0
        ]
        assert [(level, index) for level, index, _ in got] == want_keys, n
        if n == 1 << 16:  # the first level-16 node completes together with a level-8 one
            assert [(level, index) for level, index, _ in got] == [(8, 255), (16, 0)]
        reported.extend(got)
    assert len(reported) == total // 256 + 1
    for level, index, h in reported:
        assert h == fold_perfect(hashes[index << level : (index + 1) << level])
    assert cr.root() == tree_root(total, subtree_of(hashes))


@SETTINGS
@given(start=st.integers(0, 1200), n=st.integers(0, 1200))
def test_extend_reports_the_same_subtrees_as_appending_one_by_one(start, n):
    hashes = leaves(start + n)
    one, many = CompactRange(), CompactRange()
    one.extend(hashes[:start])
    many.extend(hashes[:start])
    appended = [node for h in hashes[start:] for node in one.append(h)]
    assert many.extend(iter(hashes[start:])) == appended
    assert one == many


@SETTINGS
@given(n=st.integers(0, 2000))
def test_to_bytes_and_from_bytes_round_trip_exactly(n):
    cr = CompactRange()
    cr.extend(leaves(n))
    data = cr.to_bytes()
    assert len(data) == 8 + 32 * n.bit_count()
    back = CompactRange.from_bytes(data)
    assert back == cr and back.to_bytes() == data and back.root() == cr.root()


def test_a_huge_size_round_trips_through_bytes():
    size = (1 << 64) - 1
    cr = CompactRange(size, [leaf_hash(b"%d" % i) for i in range(64)])
    assert CompactRange.from_bytes(cr.to_bytes()) == cr


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\0" * 7, "shorter than its 8-byte size"),
        ((1).to_bytes(8, "big"), "compact range of size 1 must be 40 bytes, got 8"),
        ((0).to_bytes(8, "big") + b"\0", "compact range of size 0 must be 8 bytes, got 9"),
        ((3).to_bytes(8, "big") + b"\0" * 63, "compact range of size 3 must be 72 bytes, got 71"),
        ("not bytes", "compact range must be bytes, got str"),
    ],
)
def test_malformed_bytes_are_refused(data, message):
    with pytest.raises(ProofError, match=message):
        CompactRange.from_bytes(data)


@pytest.mark.parametrize(
    ("size", "hashes", "message"),
    [
        (3, [b"\0" * 32], "has 2 hashes, got 1"),
        (1, [b"\0" * 31], "hash 0 is not 32 bytes"),
        (-1, [], "must be an integer in"),
        (1 << 64, [], "must be an integer in"),
    ],
)
def test_an_inconsistent_compact_range_is_refused(size, hashes, message):
    with pytest.raises(ValueError, match=message):
        CompactRange(size, hashes)


def test_a_leaf_hash_of_the_wrong_size_is_refused_and_leaves_the_range_unchanged():
    cr = CompactRange()
    cr.extend(leaves(5))
    before = cr.copy()
    with pytest.raises(ValueError, match="leaf hash for leaf 5 is not 32 bytes"):
        cr.append(b"short")
    assert cr == before


def test_copy_is_independent():
    cr = CompactRange()
    cr.extend(leaves(3))
    snapshot = cr.copy()
    cr.append(leaf_hash(b"more"))
    assert snapshot.size == 3 and cr.size == 4
    assert snapshot != cr


def test_extend_keeps_the_leaves_before_a_refused_one_and_stays_consistent():
    hashes = leaves(6)
    cr = CompactRange()
    with pytest.raises(ValueError, match="leaf hash for leaf 4 is not 32 bytes"):
        cr.extend([*hashes[:4], "not bytes", hashes[5]])
    assert cr.size == 4
    assert cr.root() == tree_root(4, subtree_of(hashes))
    CompactRange.from_bytes(cr.to_bytes())


def test_a_full_compact_range_refuses_another_leaf():
    full = CompactRange((1 << 64) - 1, [leaf_hash(b"%d" % i) for i in range(64)])
    with pytest.raises(ValueError, match="compact range is full"):
        full.append(leaf_hash(b"one more"))
    with pytest.raises(ValueError, match="compact range is full"):
        full.extend([leaf_hash(b"one more")])
    assert full.size == (1 << 64) - 1
