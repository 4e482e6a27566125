"""The incremental verifier's checks, one by one, against real PostgreSQL.

A log of 600 entries, signed at 300 and 600; the follower reads it from storage and proves
each checkpoint from the entries alone; then a superuser breaks one thing at a time.
"""

from __future__ import annotations

import pytest

from indelible import proofs
from indelible.monitor.follow import TenantFollower
from indelible.proofs import NoteSigner
from indelible.store.appender import append_batch
from indelible.store.logs import read_head
from indelible.store.signing import sign_checkpoint

from .ledger_helpers import command, verifier_of

pytestmark = pytest.mark.storage


@pytest.fixture
def log(conn, tenant, signer, kept):
    for start in (0, 300):
        append_batch(conn, tenant, [command(i) for i in range(start, start + 300)])
        sign_checkpoint(conn, tenant, signer, kept)
    return tenant


def _follower(conn, tenant, signer, window=50) -> TenantFollower:
    return TenantFollower(tenant, read_head(conn, tenant).origin, [verifier_of(signer)],
                          window=window)


def _follow(conn, follower) -> list:
    findings = []
    for _ in range(5):
        findings += follower.advance(conn)
    return findings


def test_an_untouched_log_is_followed_to_its_last_checkpoint(conn, log, signer):
    follower = _follower(conn, log, signer)
    assert _follow(conn, follower) == []
    assert (follower.next_seq, follower.signed_size, follower.tail) == (600, 600, [])
    assert follower.recheck(conn) == [] and follower.recheck(conn, deep=True) == []
    append_batch(conn, log, [command(i) for i in range(600, 610)])
    assert follower.advance(conn) == [] and follower.next_seq == 610


def test_an_entry_changed_after_it_was_read_is_named_by_the_recheck(conn, log, signer, rogue):
    follower = _follower(conn, log, signer)
    _follow(conn, follower)
    rogue.execute("UPDATE ledger_entries SET entry = overlay(entry PLACING '9' FROM 60 FOR 1) "
                  "WHERE tenant_id = %s AND seq = 590", (log,))
    (finding,) = follower.recheck(conn)  # the row's version moved: only it is re-hashed
    assert (finding.check, finding.seq) == ("leaf_hash", 590)
    assert follower.recheck(conn, deep=True) == [finding]
    rogue.execute("DELETE FROM ledger_entries WHERE tenant_id = %s AND seq = 599", (log,))
    assert {(f.check, f.seq) for f in follower.recheck(conn)} == {("leaf_hash", 590), ("seq", 599)}


def test_an_entry_changed_before_it_was_read_halts_the_follower_there(conn, log, signer, rogue):
    edited = "convert_to(replace(convert_from(entry, 'UTF8'), '\"420.25\"', '\"4.25\"'), 'UTF8')"
    rogue.execute(f"UPDATE ledger_entries SET entry = {edited}, leaf_hash = "
                  f"sha256('\\x00'::bytea || {edited}) WHERE tenant_id = %s AND seq = 420", (log,))
    follower = _follower(conn, log, signer)
    (finding,) = _follow(conn, follower)
    # Its own leaf hash was rewritten to match: the next entry's link names the break.
    assert (finding.check, finding.seq) == ("prev", 421)
    assert follower.halted is finding and follower.signed_size == 300


def test_a_gap_is_named(conn, log, signer, rogue):
    rogue.execute("DELETE FROM ledger_entries WHERE tenant_id = %s AND seq = 100", (log,))
    (finding,) = _follow(conn, _follower(conn, log, signer))
    assert (finding.check, finding.seq, finding.detail) == ("seq", 100, "entries 100..100 are missing")


def test_a_checkpoint_that_no_longer_matches_the_entries_is_named(conn, log, signer, rogue):
    # Whoever holds the key signs a root the entries do not hash to (say, of a forked
    # history): the follower recomputes the root at that size and names the range.
    append_batch(conn, log, [command(i) for i in range(600, 610)])
    origin = read_head(conn, log).origin
    note = proofs.sign_checkpoint(proofs.Checkpoint(origin, 610, b"\x01" * 32), signer)
    rogue.execute("INSERT INTO checkpoints (tenant_id, size, root_hash, note, key_id) "
                  "VALUES (%s, 610, %s, %s, %s)", (log, b"\x01" * 32, note, signer.key_id))
    follower = _follower(conn, log, signer)
    (finding,) = _follow(conn, follower)
    assert (finding.check, finding.seq, finding.seq_end) == ("checkpoint", 600, 610)
    assert "do not hash to the root signed at size 610" in finding.detail
    assert follower.signed_size == 600


def test_a_checkpoint_signed_by_another_key_is_not_trusted(conn, tenant, kept, tmp_path):
    from indelible.kept import KeptCheckpoints

    stranger = NoteSigner.generate("test.indelible.local/log")
    append_batch(conn, tenant, [command(i) for i in range(10)])
    sign_checkpoint(conn, tenant, stranger, KeptCheckpoints(tmp_path))
    follower = TenantFollower(tenant, read_head(conn, tenant).origin,
                              [verifier_of(NoteSigner.generate("test.indelible.local/log"))])
    (finding,) = _follow(conn, follower)
    assert (finding.check, finding.seq, finding.seq_end) == ("checkpoint", 0, 10)
    assert "not signed by a key this log trusts" in finding.detail


def test_a_vacuum_full_moves_every_row_but_raises_no_alarm(conn, log, signer, rogue):
    follower = _follower(conn, log, signer)
    _follow(conn, follower)
    rogue.execute("BEGIN")
    rogue.execute("UPDATE ledger_entries SET entry = entry || ' '::bytea WHERE tenant_id = %s "
                  "AND seq = 598", (log,))
    rogue.execute("ROLLBACK")  # an update that never committed is no change
    rogue.execute("VACUUM FULL ledger_entries")
    assert follower.recheck(conn) == [] and follower.recheck(conn, deep=True) == []
