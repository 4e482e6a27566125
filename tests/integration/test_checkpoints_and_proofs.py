"""Checkpoints signed from the store, and proofs the store produces, checked by the pure verifiers."""

from __future__ import annotations

import random

import pytest

from indelible import audit, proofs
from indelible.proofs import CompactRange, leaf_hash
from indelible.store.appender import append_batch
from indelible.store.checkpoints import all_checkpoints, latest_checkpoint
from indelible.store.signing import sign_checkpoint
from indelible.store.errors import LogIntegrityError
from indelible.store.logs import read_head
from indelible.store.tree import StoredTree

from .ledger_helpers import command, superuser, verifier_of

pytestmark = pytest.mark.storage


def _grow(conn, tenant, signer, kept, sizes):
    """Append up to each size in turn and sign a checkpoint there."""
    for size in sizes:
        have = read_head(conn, tenant).size
        append_batch(conn, tenant, [command(i) for i in range(have, size)])
        sign_checkpoint(conn, tenant, signer, kept)


def test_a_checkpoint_is_a_signed_note_over_the_origin_size_and_root(conn, tenant, signer, kept):
    out = append_batch(conn, tenant, [command(i) for i in range(10)])
    stored = sign_checkpoint(conn, tenant, signer, kept)

    checkpoint = proofs.open_checkpoint(stored.note, verifier_of(signer),
                                        origin=f"test.indelible.local/log/{tenant}")
    expected = CompactRange()
    expected.extend(o.leaf_hash for o in out)
    assert (checkpoint.size, checkpoint.root_hash) == (10, expected.root())
    assert (stored.size, stored.root_hash, stored.key_id) == (10, expected.root(), signer.key_id)


def test_nothing_is_signed_when_the_log_did_not_grow(conn, tenant, signer, kept):
    assert sign_checkpoint(conn, tenant, signer, kept) is None  # empty log
    append_batch(conn, tenant, [command(0)])
    assert sign_checkpoint(conn, tenant, signer, kept) is not None
    assert sign_checkpoint(conn, tenant, signer, kept) is None
    assert len(all_checkpoints(conn, tenant)) == 1


def test_signing_refuses_when_stored_hashes_contradict_the_signed_history(conn, owner_url, tenant, signer, kept):
    _grow(conn, tenant, signer, kept, [300])
    append_batch(conn, tenant, [command(i) for i in range(300, 600)])
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE merkle_nodes SET hash = sha256(hash) WHERE tenant_id = %s AND idx = 0",
                      (tenant,))
    with pytest.raises(LogIntegrityError, match="refusing to sign"):
        sign_checkpoint(conn, tenant, signer, kept)
    assert latest_checkpoint(conn, tenant).size == 300


def test_every_entry_has_a_valid_inclusion_proof_at_every_checkpointed_size(conn, tenant, signer, kept):
    sizes = [1, 2, 3, 7, 8, 255, 256, 257, 511, 700]
    _grow(conn, tenant, signer, kept, sizes)
    leaves = [bytes(h) for (h,) in conn.execute(
        "SELECT leaf_hash FROM ledger_entries WHERE tenant_id = %s ORDER BY seq", (tenant,))]
    tree = StoredTree(conn, tenant)
    for checkpoint in all_checkpoints(conn, tenant):
        indexes = range(checkpoint.size) if checkpoint.size < 20 else random.sample(range(checkpoint.size), 20)
        for index in indexes:
            proof = tree.inclusion_proof(index, checkpoint.size)
            proofs.verify_inclusion(index, checkpoint.size, leaves[index], proof, checkpoint.root_hash)


def test_consistency_proofs_hold_between_any_two_checkpointed_sizes(conn, tenant, signer, kept):
    _grow(conn, tenant, signer, kept, [1, 5, 64, 256, 300, 513])
    checkpoints = all_checkpoints(conn, tenant)
    tree = StoredTree(conn, tenant)
    for old in checkpoints:
        for new in checkpoints:
            if old.size <= new.size:
                proof = tree.consistency_proof(old.size, new.size)
                proofs.verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)


def test_proofs_use_stored_level_16_hashes_beyond_65536_entries(conn, tenant, signer, kept):
    _grow(conn, tenant, signer, kept, [65_536 + 1000])
    (level16,) = conn.execute("SELECT count(*) FROM merkle_nodes WHERE tenant_id = %s "
                              "AND level = 16", (tenant,)).fetchone()
    assert level16 == 1
    found = audit.entry_proof(conn, tenant, 12_345)
    proofs.verify_inclusion(12_345, found.checkpoint.size, leaf_hash(found.entry), found.proof,
                            found.checkpoint.root_hash)
    checkpoint, entry = proofs.verify_tlog_proof(found.tlog_proof(), verifier_of(signer))
    assert entry == found.entry and checkpoint.size == 66_536


def test_an_entry_beyond_the_latest_checkpoint_has_no_proof_yet(conn, tenant, signer, kept):
    _grow(conn, tenant, signer, kept, [3])
    append_batch(conn, tenant, [command(3)])
    with pytest.raises(audit.NotFoundError, match="not covered by the checkpoint .size 3."):
        audit.entry_proof(conn, tenant, 3)


def test_an_entry_can_be_proved_against_an_earlier_checkpoint(conn, tenant, signer, kept):
    _grow(conn, tenant, signer, kept, [10, 20])
    found = audit.entry_proof(conn, tenant, 4, size=10)
    checkpoint, _ = proofs.verify_tlog_proof(found.tlog_proof(), verifier_of(signer))
    assert checkpoint.size == 10
    with pytest.raises(audit.NotFoundError, match="no checkpoint of size 15"):
        audit.entry_proof(conn, tenant, 4, size=15)
