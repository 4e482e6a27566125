"""Proofs read in one planned statement (with or without a shared SubtreeCache) equal the
tile-by-tile walk they replaced, at tile edges and across the level-16 boundary; what is
missing or edited in storage is still reported, and a cached hash never makes a proof pass."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible import audit, proofs
from indelible.proofs import Cosigner, leaf_hash
from indelible.proofs.cosignature import split_note
from indelible.store.appender import append_batch
from indelible.store.cosignatures import insert_cosignature
from indelible.store.errors import LogIntegrityError, UnknownLogError
from indelible.store.logs import create_log
from indelible.store.signing import sign_checkpoint
from indelible.store.tree import StoredTree, SubtreeCache

from .ledger_helpers import command, superuser

pytestmark = pytest.mark.storage

BIG = 65_536 + 300  # past the first level-16 node, so all three stored levels are read
EDGES = [1, 2, 255, 256, 257, 511, 512, 513, 767, 768, 769, 65_535, 65_536, 65_537, 65_791,
         65_792, 65_793, BIG]


@pytest.fixture(scope="module")
def big_log(app_url):
    """(connection, tenant) of one log of BIG entries shared by the read-only tests here."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        tenant = f"t-{secrets.token_hex(5)}"
        create_log(conn, tenant, base_origin="test.indelible.local/log")
        for lo in range(0, BIG, 10_000):
            append_batch(conn, tenant, [command(i) for i in range(lo, min(BIG, lo + 10_000))])
        yield conn, tenant


def _tile_walk(conn, tenant: str) -> StoredTree:
    """The reads proofs made before planning: whole tiles, one statement each."""
    return StoredTree(conn, tenant)


def _edge_indexes(size: int) -> set[int]:
    near = {0, 1, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, size // 2, size - 2, size - 1}
    return {i for i in near if 0 <= i < size}


def test_inclusion_proofs_equal_the_tile_walk_at_tile_edges(big_log):
    conn, tenant = big_log
    cache = SubtreeCache()
    for size in EDGES:
        for index in _edge_indexes(size):
            expected = proofs.inclusion_proof(index, size, _tile_walk(conn, tenant).subtree)
            assert StoredTree(conn, tenant).inclusion_proof(index, size) == expected, (index, size)
            assert StoredTree(conn, tenant, cache=cache).inclusion_proof(index, size) == expected


_SHARED = SubtreeCache(limit=512)  # small, so the random pairs also run through a start-over


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_inclusion_proofs_equal_the_tile_walk_at_random_pairs(big_log, data):
    conn, tenant = big_log
    size = data.draw(st.integers(1, BIG), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    expected = proofs.inclusion_proof(index, size, _tile_walk(conn, tenant).subtree)
    assert StoredTree(conn, tenant).inclusion_proof(index, size) == expected
    assert StoredTree(conn, tenant, cache=_SHARED).inclusion_proof(index, size) == expected


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_consistency_proofs_equal_the_tile_walk_at_random_pairs(big_log, data):
    conn, tenant = big_log
    size2 = data.draw(st.integers(1, BIG), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    expected = proofs.consistency_proof(size1, size2, _tile_walk(conn, tenant).subtree)
    assert StoredTree(conn, tenant, cache=_SHARED).consistency_proof(size1, size2) == expected


def test_consistency_proofs_and_roots_equal_the_tile_walk(big_log):
    conn, tenant = big_log
    cache = SubtreeCache()
    for size2 in EDGES:
        expected_root = proofs.tree_root(size2, _tile_walk(conn, tenant).subtree)
        assert StoredTree(conn, tenant).root(size2) == expected_root
        for size1 in [s for s in EDGES if s <= size2]:
            expected = proofs.consistency_proof(size1, size2, _tile_walk(conn, tenant).subtree)
            assert StoredTree(conn, tenant).consistency_proof(size1, size2) == expected
            assert StoredTree(conn, tenant, cache=cache).consistency_proof(size1, size2) == expected


def test_bad_sizes_are_refused_before_anything_is_read(big_log):
    conn, tenant = big_log
    with pytest.raises(ValueError, match="is not in a tree of size"):
        StoredTree(conn, tenant).inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="needs 0 < size1 <= size2"):
        StoredTree(conn, tenant).consistency_proof(0, 5)


def test_the_cache_keeps_only_upper_subtrees_and_keeps_tenants_apart(conn, tenant, big_log,
                                                                     signer, kept):
    big_conn, big_tenant = big_log
    cache = SubtreeCache()
    StoredTree(big_conn, big_tenant, cache=cache).inclusion_proof(3, BIG)
    assert cache.get(big_tenant, (8, 256)) is not None  # [65536, 65792): in every such proof
    assert cache.get(big_tenant, (0, 2)) is None  # the leaf's sibling: its proof's own
    # The same (level, index) subtrees of another tenant's log are its own.
    append_batch(conn, tenant, [command(i) for i in range(600)])
    stored = sign_checkpoint(conn, tenant, signer, kept)
    found = audit.entry_proof(conn, tenant, 3, cache=cache)
    proofs.verify_inclusion(3, 600, leaf_hash(found.entry), found.proof, stored.root_hash)


def _log_of(conn, tenant, signer, kept, size: int):
    append_batch(conn, tenant, [command(i) for i in range(size)])
    return sign_checkpoint(conn, tenant, signer, kept)


def test_a_missing_leaf_hash_is_still_reported(conn, owner_url, tenant, signer, kept):
    _log_of(conn, tenant, signer, kept, 600)
    with superuser(owner_url) as rogue:
        rogue.execute("DELETE FROM ledger_entries WHERE tenant_id = %s AND seq = 300", (tenant,))
    with pytest.raises(LogIntegrityError, match="stored hash level 0 index 300 is missing"):
        StoredTree(conn, tenant).inclusion_proof(301, 600)  # its sibling leaf
    with pytest.raises(LogIntegrityError, match="stored hash level 0 index 300 is missing"):
        StoredTree(conn, tenant).inclusion_proof(256, 600)  # one of the 32 under a sibling
    with pytest.raises(LogIntegrityError, match="stored hash level 0 index 300 is missing"):
        audit.entry_proof(conn, tenant, 301, cache=SubtreeCache())


def test_a_missing_merkle_node_is_still_reported(conn, owner_url, tenant, signer, kept):
    _log_of(conn, tenant, signer, kept, 600)
    with superuser(owner_url) as rogue:
        rogue.execute("DELETE FROM merkle_nodes WHERE tenant_id = %s AND level = 8 AND idx = 1",
                      (tenant,))
    with pytest.raises(LogIntegrityError, match="stored hash level 8 index 1 is missing"):
        audit.entry_proof(conn, tenant, 0, cache=SubtreeCache())
    with pytest.raises(LogIntegrityError, match="stored hash level 8 index 1 is missing"):
        audit.consistency(conn, tenant, 256, 600)


def test_an_entry_edited_after_the_cache_filled_never_gets_a_passing_proof(
        conn, owner_url, tenant, signer, kept):
    stored = _log_of(conn, tenant, signer, kept, 600)
    cache = SubtreeCache()
    for seq in (5, 300, 599):
        audit.entry_proof(conn, tenant, seq, cache=cache)
    with superuser(owner_url) as rogue:
        forged = b'{"forged":true}'
        rogue.execute("UPDATE ledger_entries SET entry = %s, leaf_hash = %s WHERE tenant_id = %s "
                      "AND seq = 300", (forged, leaf_hash(forged), tenant))
    found = audit.entry_proof(conn, tenant, 300, cache=cache)
    assert found.entry == forged  # the entry is read fresh, never from the cache
    with pytest.raises(proofs.ProofError):
        proofs.verify_inclusion(300, 600, leaf_hash(found.entry), found.proof, stored.root_hash)


def test_proof_requests_outside_the_log_are_refused_by_name(conn, tenant, signer, kept):
    with pytest.raises(audit.NotFoundError, match="has no signed checkpoint yet"):
        audit.entry_proof(conn, tenant, 0)
    _log_of(conn, tenant, signer, kept, 10)
    with pytest.raises(audit.NotFoundError, match=r"entry 2361183241434822606848 .* not covered"):
        audit.entry_proof(conn, tenant, 2**71)
    with pytest.raises(audit.NotFoundError, match=r"entry -1 .* valid seq is 0..9$"):
        audit.entry_proof(conn, tenant, -1)
    with pytest.raises(audit.NotFoundError, match=f"no checkpoint of size {2**70}"):
        audit.entry_proof(conn, tenant, 0, size=2**70)
    with pytest.raises(UnknownLogError):
        audit.entry_proof(conn, f"{tenant}-none", 0)
    assert audit.current_checkpoint(conn, tenant).size == 10


def test_what_a_proof_stands_on_is_read_under_the_tenants_row_level_security(
        conn, request_conn, tenant, signer, kept):
    """The request role sees no row of any tenant table unless the tenant is set (fail
    closed): a proof read on its bare autocommit connection shows the scoping reaches the
    checkpoint, cosignature and entry statement, and ends with it."""
    stored = _log_of(conn, tenant, signer, kept, 10)
    witness = Cosigner.generate("witness.test/rls")
    body, _ = split_note(stored.note)
    line = witness.cosign(body, 1_790_000_000).rstrip("\n")
    insert_cosignature(conn, tenant, 10, witness.key.key_text(), line, 1_790_000_000)
    checkpoint = audit.current_checkpoint(request_conn, tenant)
    assert checkpoint.size == 10 and line in checkpoint.note
    assert request_conn.execute("SELECT current_setting('indelible.tenant', true)").fetchone() \
        in [("",), (None,)]
    with request_conn.transaction():  # as the API reads: the tiles need the scope too
        request_conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        found = audit.entry_proof(request_conn, tenant, 4, cache=SubtreeCache())
    assert line in found.checkpoint.note
    proofs.verify_inclusion(4, 10, leaf_hash(found.entry), found.proof, stored.root_hash)
