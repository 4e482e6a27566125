"""SubtreeCache: what it keeps, for whom, and that it stays bounded."""

from __future__ import annotations

from indelible.store.tree import SubtreeCache

HASH = bytes(range(32))


def test_only_subtrees_at_level_8_and_above_are_kept():
    cache = SubtreeCache()
    cache.put("acme", (7, 3), HASH)
    cache.put("acme", (8, 3), HASH)
    assert cache.get("acme", (7, 3)) is None
    assert cache.get("acme", (8, 3)) == HASH
    assert len(cache) == 1


def test_the_same_subtree_of_another_tenant_is_not_served():
    cache = SubtreeCache()
    cache.put("acme", (16, 0), HASH)
    assert cache.get("globex", (16, 0)) is None


def test_a_full_cache_starts_over_instead_of_growing():
    cache = SubtreeCache(limit=4)
    for index in range(4):
        cache.put("acme", (8, index), HASH)
    assert len(cache) == 4
    cache.put("acme", (8, 4), HASH)
    assert len(cache) == 1 and cache.get("acme", (8, 4)) == HASH
    assert cache.get("acme", (8, 0)) is None
