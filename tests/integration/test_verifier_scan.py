"""The scan reads entries as one COPY row per 256-group, each column an array (verifier/scan.py):
a change to any column of any entry, at either edge of a group or of a chunk, must still be
caught and pinpointed, and a group whose entries are all gone must still show as missing.

The log: 1,000 entries with idempotency keys, signed at the end. Each test tampers as a
superuser (the append-only triggers off) and verifies with `workers=2`: with chunks of 256
entries this process and a helper share four chunks, so group, chunk and process boundaries
all fall inside the log; with larger chunks this process scans alone.
"""

from __future__ import annotations

import pytest

from indelible.store.appender import append_batch
from indelible.store.signing import sign_checkpoint
from indelible.verifier import verify_log

from .ledger_helpers import command, verifier_of

pytestmark = pytest.mark.storage

SIZE = 1000


@pytest.fixture
def log(conn, tenant, signer, kept):
    append_batch(conn, tenant, [command(i, key=f"key-{i}") for i in range(SIZE)])
    sign_checkpoint(conn, tenant, signer, kept)
    return tenant


def _verify(app_url, tenant, signer, chunk):
    return verify_log(app_url, tenant, verifier_of(signer), workers=2, chunk=chunk)


def test_an_untouched_log_verifies_through_groups_chunks_and_processes(app_url, log, signer):
    for chunk in (256, 512, 1024):
        report = _verify(app_url, log, signer, chunk)
        assert report.ok, report.to_text()
        assert report.entries_checked == SIZE


# (column, the change, the column's name in the finding)
CHANGES = [
    ("event_id", "gen_random_uuid()", "event_id"),
    ("stream_id", "stream_id || 'x'", "stream_id"),
    ("stream_version", "stream_version + 100", "stream_version"),
    ("type", "'discrepancy.resolved'", "type"),
    ("recorded_at", "recorded_at + interval '1 microsecond'", "recorded_at"),
    ("actor_id", "'someone-else'", "actor_id"),
    ("idempotency_key", "'another-key'", "idempotency_key"),
    ("idempotency_key", "NULL", "idempotency_key"),
]


@pytest.mark.parametrize("seq", [255, 256, 511, 999])  # group and chunk edges, the last entry
@pytest.mark.parametrize(("column", "change", "name"), CHANGES,
                         ids=[f"{c}={v}" for c, v, _ in CHANGES])
def test_a_changed_column_is_pinpointed_at_every_edge(app_url, log, rogue, signer, seq, column,
                                                      change, name):
    rogue.execute(f"UPDATE ledger_entries SET {column} = {change} "
                  "WHERE tenant_id = %s AND seq = %s", (log, seq))
    report = _verify(app_url, log, signer, chunk=256)
    (finding,) = report.findings
    assert (finding.check, finding.seq) == ("column", seq), report.to_text()
    assert f"column {name} is" in finding.detail


@pytest.mark.parametrize("seq", [255, 256, 999])
def test_a_changed_leaf_hash_column_is_pinpointed(app_url, log, rogue, signer, seq):
    rogue.execute("UPDATE ledger_entries SET leaf_hash = sha256(leaf_hash) "
                  "WHERE tenant_id = %s AND seq = %s", (log, seq))
    report = _verify(app_url, log, signer, chunk=512)
    (finding,) = report.findings
    assert (finding.check, finding.seq) == ("leaf_hash", seq), report.to_text()


@pytest.mark.parametrize("seq", [256, 511])
def test_a_changed_entry_byte_is_pinpointed(app_url, log, rogue, signer, seq):
    rogue.execute("UPDATE ledger_entries SET entry = overlay(entry PLACING '9' FROM 60 FOR 1) "
                  "WHERE tenant_id = %s AND seq = %s", (log, seq))
    report = _verify(app_url, log, signer, chunk=256)
    assert report.first_bad_seq == seq, report.to_text()
    assert {("leaf_hash", seq), ("prev", seq + 1)} <= {(f.check, f.seq) for f in report.findings}


@pytest.mark.parametrize("chunk", [256, 1024])  # the group alone in its chunk, or inside one
def test_a_whole_group_deleted_is_pinpointed(app_url, log, rogue, signer, chunk):
    rogue.execute("DELETE FROM ledger_entries WHERE tenant_id = %s AND seq >= 256 AND seq < 512",
                  (log,))
    report = _verify(app_url, log, signer, chunk)
    assert report.first_bad_seq == 256, report.to_text()
    assert any(f.check == "seq" and f.seq == 256 and "256..511 are missing" in f.detail
               for f in report.findings)
    assert report.entries_checked == SIZE - 256


def test_progress_rises_to_the_whole_log_while_this_process_and_a_helper_scan(app_url, log,
                                                                              signer):
    seen = []
    report = verify_log(app_url, log, verifier_of(signer), workers=2, chunk=256,
                        progress=lambda done, size: seen.append((done, size)))
    assert report.ok, report.to_text()
    assert seen[-1] == (SIZE, SIZE)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_a_column_narrowed_by_a_rogue_is_read_by_its_values_not_its_bytes(app_url, conn,
                                                                           tenant, rogue,
                                                                           signer, kept):
    # stream_version made int4 and one set to 0: read as the int8 the COPY expects, its 4
    # bytes would run on into the next element's length, 4: the version the entry claims.
    append_batch(conn, tenant, [command(i, stream="test/one") for i in range(8)])
    sign_checkpoint(conn, tenant, signer, kept)
    (seq,) = conn.execute("SELECT seq FROM ledger_entries WHERE tenant_id = %s "
                          "AND stream_version = 4", (tenant,)).fetchone()
    (check,) = rogue.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                             "WHERE conname = 'ledger_entries_stream_version_check'").fetchone()
    rogue.execute("ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_stream_version_check,"
                  " ALTER COLUMN stream_version TYPE int4")
    try:
        rogue.execute("UPDATE ledger_entries SET stream_version = 0 "
                      "WHERE tenant_id = %s AND seq = %s", (tenant, seq))
        report = _verify(app_url, tenant, signer, chunk=256)
    finally:  # the schema as it was, for the tests after this one
        rogue.execute("UPDATE ledger_entries SET stream_version = 4 "
                      "WHERE tenant_id = %s AND seq = %s", (tenant, seq))
        rogue.execute("ALTER TABLE ledger_entries ALTER COLUMN stream_version TYPE int8, "
                      f"ADD CONSTRAINT ledger_entries_stream_version_check {check}")
    (finding,) = report.findings
    assert (finding.check, finding.seq) == ("column", seq), report.to_text()
    assert "column stream_version is 0" in finding.detail


@pytest.mark.parametrize("column, check", [("entry", "entry"), ("event_id", "column")])
def test_a_column_a_rogue_set_to_null_is_reported_not_raised(app_url, log, rogue, signer,
                                                             column, check):
    rogue.execute(f"ALTER TABLE ledger_entries ALTER COLUMN {column} DROP NOT NULL")
    try:
        saved = rogue.execute(f"SELECT {column} FROM ledger_entries WHERE tenant_id = %s "
                              "AND seq = 300", (log,)).fetchone()[0]
        rogue.execute(f"UPDATE ledger_entries SET {column} = NULL WHERE tenant_id = %s "
                      "AND seq = 300", (log,))
        report = _verify(app_url, log, signer, chunk=256)
    finally:  # the schema as it was, for the tests after this one
        rogue.execute(f"UPDATE ledger_entries SET {column} = %s WHERE tenant_id = %s "
                      "AND seq = 300", (saved, log))
        rogue.execute(f"ALTER TABLE ledger_entries ALTER COLUMN {column} SET NOT NULL")
    assert not report.ok
    assert (check, 300) in {(f.check, f.seq) for f in report.findings}, report.to_text()
    assert "first bad seq: 300" in report.to_text(), report.to_text()
