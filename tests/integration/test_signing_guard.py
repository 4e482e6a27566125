"""The checkpointer does not trust the database it guards (issue 8, item 2).

What it signed is kept outside the database (`KeptCheckpoints`); a superuser who deletes
checkpoint rows and rewrites the tail gets nothing signed, and a checkpoint signed by a key
nobody recorded stops the signer until a rotation is recorded in the tenant's log.
"""

from __future__ import annotations

import logging
import os
import stat

import pytest

from indelible import proofs
from indelible.kept import KeptCheckpoints, KeptStateError
from indelible.proofs import Checkpoint, NoteSigner
from indelible.store.appender import append_batch
from indelible.store.checkpointer import Checkpointer
from indelible.store.checkpoints import all_checkpoints, latest_checkpoint
from indelible.store.errors import LogIntegrityError
from indelible.store.key_rotation import KeyRotationError, check_previous, rotate_command
from indelible.store.logs import read_head
from indelible.store.signing import ForeignKeyError, sign_checkpoint
from indelible.store.tenants import OPERATOR

from .ledger_helpers import command, superuser, truncate_log

pytestmark = pytest.mark.storage


@pytest.fixture
def mine(tmp_path):
    return KeptCheckpoints(tmp_path / "signed-checkpoints")


@pytest.fixture
def signed_log(conn, tenant, signer, mine):
    """300 entries, signed at 100, 200 and 300."""
    for start in (0, 100, 200):
        append_batch(conn, tenant, [command(i) for i in range(start, start + 100)])
        sign_checkpoint(conn, tenant, signer, mine)
    return tenant


def _sizes(conn, tenant):
    return [c.size for c in all_checkpoints(conn, tenant)]


@pytest.mark.parametrize("keep_rows_up_to", [100, 150])
def test_a_rewritten_tail_with_its_checkpoints_deleted_is_refused_and_nothing_is_signed(
        app_url, owner_url, conn, signed_log, signer, mine, caplog, keep_rows_up_to):
    tenant = signed_log
    with superuser(owner_url) as rogue:
        truncate_log(rogue, conn, tenant, keep_rows_up_to)
        forged = [command(10_000 + i) for i in range(400)]  # longer than what was signed
        append_batch(conn, tenant, forged)
    before = _sizes(conn, tenant)
    checkpointer = Checkpointer(conninfo=app_url, signer=signer, kept=mine, interval=0, entries=1)
    with caplog.at_level(logging.CRITICAL):
        checkpointer.run_once(conn)  # every tenant of the suite's database is due
    assert _sizes(conn, tenant) == before  # nothing new signed
    alarms = [r.getMessage() for r in caplog.records
              if r.levelno == logging.CRITICAL and repr(tenant) in r.getMessage()]
    assert alarms and alarms[0].startswith("INTEGRITY ALARM")
    assert "does not extend the checkpoint signed at size 300" in alarms[0]
    with pytest.raises(LogIntegrityError, match="INTEGRITY ALARM.*refusing to sign"):
        sign_checkpoint(conn, tenant, signer, mine)


def test_a_log_cut_below_what_was_signed_is_refused(owner_url, conn, signed_log, signer, mine):
    tenant = signed_log
    with superuser(owner_url) as rogue:
        truncate_log(rogue, conn, tenant, 250)
    with pytest.raises(LogIntegrityError, match="commits to 300: signed entries were removed"):
        sign_checkpoint(conn, tenant, signer, mine)


def test_an_untouched_log_keeps_being_signed(conn, signed_log, signer, mine):
    append_batch(conn, signed_log, [command(i) for i in range(300, 350)])
    assert sign_checkpoint(conn, signed_log, signer, mine).size == 350
    assert mine.get(signed_log).note == latest_checkpoint(conn, signed_log).note


def test_the_kept_checkpoint_is_a_private_file_written_whole(conn, signed_log, mine):
    path = mine.path(signed_log)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(mine.directory.stat().st_mode) == 0o700
    assert path.read_text() == latest_checkpoint(conn, signed_log).note
    assert not [p for p in os.listdir(mine.directory) if not p.endswith((".checkpoint", ".lock"))]
    path.chmod(0o664)
    with pytest.raises(KeptStateError, match="writable by others"):
        mine.get(signed_log)


def test_a_crash_after_keeping_and_before_publishing_does_not_wedge_the_signer(
        conn, signed_log, signer, mine):
    tenant = signed_log
    append_batch(conn, tenant, [command(i) for i in range(300, 320)])
    head = read_head(conn, tenant)
    # Signed and kept, then the process died before the row committed.
    mine.put(tenant, proofs.sign_checkpoint(
        Checkpoint(head.origin, 320, head.frontier.root()), signer))
    assert _sizes(conn, tenant)[-1] == 300

    assert sign_checkpoint(conn, tenant, signer, mine) is None
    assert _sizes(conn, tenant)[-1] == 320  # the kept note, published
    append_batch(conn, tenant, [command(i) for i in range(320, 330)])
    assert sign_checkpoint(conn, tenant, signer, mine).size == 330


def test_with_nothing_kept_a_stored_checkpoint_under_our_key_is_adopted_with_a_warning(
        conn, signed_log, signer, tmp_path, caplog):
    fresh = KeptCheckpoints(tmp_path / "fresh")
    append_batch(conn, signed_log, [command(i) for i in range(300, 310)])
    with caplog.at_level(logging.WARNING):
        assert sign_checkpoint(conn, signed_log, signer, fresh).size == 310
    assert any("adopting the stored checkpoint at size 300" in r.getMessage()
               for r in caplog.records)
    assert fresh.get(signed_log).size == 310


def test_a_stored_checkpoint_whose_row_disagrees_with_its_note_is_an_alarm(
        owner_url, conn, signed_log, signer, tmp_path):
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE checkpoints SET root_hash = sha256(root_hash) "
                      "WHERE tenant_id = %s AND size = 300", (signed_log,))
    append_batch(conn, signed_log, [command(300)])
    with pytest.raises(LogIntegrityError, match="disagrees with its signed note"):
        sign_checkpoint(conn, signed_log, signer, KeptCheckpoints(tmp_path / "fresh"))


def test_checkpoints_signed_by_another_key_refuse_until_a_rotation_is_recorded(
        conn, signed_log, signer, tmp_path):
    tenant = signed_log
    other = NoteSigner.generate(signer.name)  # a second instance with a key of its own
    theirs = KeptCheckpoints(tmp_path / "other-instance")
    append_batch(conn, tenant, [command(i) for i in range(300, 310)])
    with pytest.raises(ForeignKeyError, match="signing-key rotate"):
        sign_checkpoint(conn, tenant, other, theirs)
    assert _sizes(conn, tenant)[-1] == 300

    # The rotation names the right previous key, or is refused.
    with pytest.raises(KeyRotationError, match="not signed by the previous key"):
        check_previous(conn, tenant, NoteSigner.generate(signer.name).verifier_key_text())
    check_previous(conn, tenant, signer.verifier_key_text())
    rotation = rotate_command(previous=signer.verifier_key_text(), signer=other,
                              reason="moved signing to the new host", by=OPERATOR)
    (recorded,) = append_batch(conn, tenant, [rotation])
    assert recorded.seq == 310

    assert sign_checkpoint(conn, tenant, other, theirs).size == 311
    append_batch(conn, tenant, [command(311)])
    with pytest.raises(ForeignKeyError, match="was retired by the rotation at seq 310"):
        sign_checkpoint(conn, tenant, signer, KeptCheckpoints(tmp_path / "old-instance"))
