"""A superuser who bypasses the triggers is caught by verification, and pinpointed.

The log: 1,000 entries appended in batches of 100, a checkpoint signed after each batch, and
an auditor who kept a copy of every checkpoint outside the database. Each test then tampers
as a superuser (session_replication_role = replica disables the triggers) and verifies.
"""

from __future__ import annotations

import pytest

from indelible.entry import Actor, NewEntry
from indelible import proofs
from indelible.proofs import Checkpoint, NoteSigner
from indelible.store.appender import append_batch
from indelible.store.checkpoints import all_checkpoints
from indelible.store.logs import read_head
from indelible.store.signing import sign_checkpoint
from indelible.verifier import verify_log

from .ledger_helpers import command, truncate_log, verifier_of

pytestmark = pytest.mark.storage

SIZE, BATCH = 1000, 100


@pytest.fixture
def log(conn, tenant, signer, kept):
    for start in range(0, SIZE, BATCH):
        append_batch(conn, tenant, [command(i) for i in range(start, start + BATCH)])
        sign_checkpoint(conn, tenant, signer, kept)
    kept_by_auditor = [c.note for c in all_checkpoints(conn, tenant)]
    return tenant, kept_by_auditor


def _verify(app_url, tenant, signer, trusted=()):
    # Small chunks and two workers: chunk boundaries are exercised in every scenario.
    return verify_log(app_url, tenant, verifier_of(signer), trusted_notes=trusted,
                      workers=2, chunk=256)


def test_an_untouched_log_verifies(app_url, log, signer):
    tenant, trusted = log
    report = _verify(app_url, tenant, signer, trusted)
    assert report.ok, report.to_text()
    assert (report.entries_checked, report.checkpoints_checked, report.trusted_checked) == (1000, 10, 10)


def test_changing_one_byte_of_an_entry_is_pinpointed(app_url, log, rogue, signer):
    tenant, _ = log
    rogue.execute("UPDATE ledger_entries SET entry = overlay(entry PLACING '9' FROM 60 FOR 1) "
                  "WHERE tenant_id = %s AND seq = 437", (tenant,))
    report = _verify(app_url, tenant, signer)
    assert report.first_bad_seq == 437, report.to_text()
    assert {("leaf_hash", 437), ("prev", 438)} <= {(f.check, f.seq) for f in report.findings}


def test_changing_only_an_indexed_column_is_pinpointed(app_url, log, rogue, signer):
    tenant, _ = log
    rogue.execute("UPDATE ledger_entries SET type = 'discrepancy.resolved' "
                  "WHERE tenant_id = %s AND seq = 512", (tenant,))
    report = _verify(app_url, tenant, signer)
    assert report.first_bad_seq == 512
    (finding,) = report.findings
    assert finding.check == "column" and "type" in finding.detail


def test_deleting_a_middle_entry_is_pinpointed(app_url, log, rogue, signer):
    tenant, _ = log
    rogue.execute("DELETE FROM ledger_entries WHERE tenant_id = %s AND seq = 300", (tenant,))
    report = _verify(app_url, tenant, signer)
    assert report.first_bad_seq == 300
    assert ("seq", 300) in {(f.check, f.seq) for f in report.findings}


def test_dropping_the_tail_is_pinpointed(app_url, log, rogue, signer):
    tenant, _ = log
    rogue.execute("DELETE FROM ledger_entries WHERE tenant_id = %s AND seq >= 950", (tenant,))
    report = _verify(app_url, tenant, signer)
    assert report.first_bad_seq == 950
    assert any(f.check == "seq" and "950..999 are missing" in f.detail for f in report.findings)


def test_dropping_the_tail_and_covering_it_up_is_caught_by_the_auditors_checkpoint(
        app_url, log, rogue, signer, conn):
    tenant, trusted = log
    truncate_log(rogue, conn, tenant, 900)
    assert _verify(app_url, tenant, signer).ok  # the database alone now looks consistent

    report = _verify(app_url, tenant, signer, trusted)
    assert report.first_bad_seq == 900
    assert any(f.check == "trusted" and "entries were removed" in f.detail for f in report.findings)


def test_swapping_two_entries_is_pinpointed(app_url, log, rogue, signer):
    tenant, _ = log
    rogue.execute("""
        UPDATE ledger_entries AS e SET entry = o.entry, leaf_hash = o.leaf_hash
        FROM ledger_entries AS o
        WHERE e.tenant_id = %(t)s AND o.tenant_id = %(t)s
          AND ((e.seq = 120 AND o.seq = 640) OR (e.seq = 640 AND o.seq = 120))""", {"t": tenant})
    report = _verify(app_url, tenant, signer)
    assert report.first_bad_seq == 120
    assert ("column", 120) in {(f.check, f.seq) for f in report.findings}


def test_a_rewritten_tail_signed_by_another_key_is_pinpointed(app_url, log, rogue, signer, conn):
    tenant, _ = log
    forger = NoteSigner.generate(signer.name)
    _rewrite_tail(rogue, conn, tenant, 700, forger)

    report = _verify(app_url, tenant, signer)
    assert report.first_bad_seq == 700, report.to_text()
    bad = [f for f in report.findings if f.check == "checkpoint"]
    assert bad and all("not valid under the trusted key" in f.detail for f in bad)


def test_a_rewritten_tail_re_signed_with_the_real_key_is_caught_only_by_the_auditors_checkpoint(
        app_url, log, rogue, signer, conn):
    tenant, trusted = log
    _rewrite_tail(rogue, conn, tenant, 700, signer)
    assert _verify(app_url, tenant, signer).ok  # hashes, links and signatures all hold

    report = _verify(app_url, tenant, signer, trusted)
    assert report.first_bad_seq == 700, report.to_text()
    finding = next(f for f in report.findings if f.check == "trusted")
    assert (finding.seq, finding.seq_end) == (700, 800) and "rewritten" in finding.detail


def test_a_rewrite_inside_a_checkpoint_interval_is_narrowed_to_that_interval(
        app_url, log, rogue, signer, conn):
    tenant, trusted = log
    _rewrite_tail(rogue, conn, tenant, 750, signer)
    report = _verify(app_url, tenant, signer, trusted)
    finding = next(f for f in report.findings if f.check == "trusted")
    # Roots are only signed every 100 entries: the rewrite lies in [700, 800), and no finer.
    assert (finding.seq, finding.seq_end) == (700, 800)


def _rewrite_tail(rogue, conn, tenant: str, start: int, key: NoteSigner) -> None:
    """Replace entries from `start` with forged ones whose hashes are all recomputed."""
    truncate_log(rogue, conn, tenant, start)
    thief = Actor("dba", "admin")
    forged = [NewEntry(stream=f"disc/{i}", type="discrepancy.resolved", actor=thief,
                       data={"n": i, "note": "nothing to see"}) for i in range(start, SIZE)]
    append_batch(conn, tenant, forged)
    # The forger signs with their own code: the service's signer would refuse (it keeps
    # what it signed outside the database; see test_signing_guard.py).
    head = read_head(conn, tenant)
    note = proofs.sign_checkpoint(Checkpoint(head.origin, head.size, head.frontier.root()), key)
    rogue.execute("INSERT INTO checkpoints (tenant_id, size, root_hash, note, key_id) "
                  "VALUES (%s, %s, %s, %s, %s)",
                  (tenant, head.size, head.frontier.root(), note, key.key_id))


def test_a_tampered_checkpoint_size_column_is_reported_not_a_crash(app_url, log, rogue, signer):
    tenant, _ = log
    rogue.execute("UPDATE checkpoints SET size = size + 1 WHERE tenant_id = %s AND size = 300",
                  (tenant,))
    report = _verify(app_url, tenant, signer)
    assert any(f.check == "checkpoint" and "disagree with its signed note" in f.detail
               for f in report.findings), report.to_text()


def test_verifying_while_entries_and_checkpoints_keep_arriving_finds_nothing(app_url, conn, log, signer, kept):
    import threading

    tenant, _ = log
    stop = threading.Event()

    def keep_appending():
        import psycopg

        with psycopg.connect(app_url, autocommit=True) as writer:
            i = SIZE
            while not stop.is_set():
                append_batch(writer, tenant, [command(j) for j in range(i, i + 5)])
                if i % 20 == 0:
                    sign_checkpoint(writer, tenant, signer, kept)
                i += 5

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        # Many quick single-process runs: the race is between the first few reads.
        reports = [verify_log(app_url, tenant, verifier_of(signer), workers=1, chunk=256)
                   for _ in range(30)]
    finally:
        stop.set()
        writer.join()
    assert all(r.ok for r in reports), [r.to_text() for r in reports if not r.ok]
