"""The second verification pass: what the service decides from, checked against the ledger.

A superuser edits a read-model row, a snapshot or an evidence file (or writes an illegal move
into the ledger itself, hashes and all): each is a finding naming the row or the entry.
"""

from __future__ import annotations

import pytest

from indelible import domain
from indelible.bootstrap import projections
from indelible.entry import Actor, NewEntry
from indelible.store import discrepancies as store
from indelible.store.api_keys import ApiKeys, issue_command, revoke_decision
from indelible.store.appender import Appended, append_batch
from indelible.store.evidence import store_file
from indelible.verifier.models import verify_models
from indelible.verifier.report import VerificationReport

from .ledger_helpers import superuser

pytestmark = pytest.mark.storage

ANALYST = domain.Actor("key:ana", "analyst")
ADMIN = Actor("key:admin", "admin")
BLOB = b"%PDF-1.7 the bank statement"


def _append(conn, tenant, *decisions):
    out = append_batch(conn, tenant, list(decisions), model=projections())
    assert all(isinstance(o, Appended) for o in out), out
    return out


def _move(d, to, **extra):
    return store.decision(d, domain.Transition(to=to, **extra), ANALYST)


@pytest.fixture
def ledger(conn, registered_tenant):
    """A key issued and revoked; a discrepancy with evidence, investigated and resolved."""
    tenant = registered_tenant
    _, issue = issue_command(role="auditor", name="Aud", by=ADMIN)
    append_batch(conn, tenant, [issue], model=ApiKeys())
    key_id = issue.data["key_id"]
    append_batch(conn, tenant, [revoke_decision(key_id, by=ADMIN)], model=ApiKeys())
    d = store.new_id()
    opening = domain.OpenDiscrepancy(external_ref="po-1", source="stripe", kind="amount_mismatch",
                                     expected_amount="9850.00", actual_amount="10000.00",
                                     currency="EUR", detected_at="2026-11-23T05:00:00Z")
    with conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        sha = store_file(conn, tenant, BLOB)
    _append(conn, tenant, store.decision(d, opening, ANALYST, store.open_key("stripe", "po-1")))
    _append(conn, tenant, store.decision(d, domain.AttachEvidence(
        sha256=sha, name="statement.pdf", size=len(BLOB), media_type="application/pdf"), ANALYST),
        _move(d, "investigating"),
        _move(d, "resolved", resolution_code="corrected_in_ledger", note="fee booked"))
    return tenant, key_id, d, sha


def _check(app_url, tenant) -> VerificationReport:
    report = VerificationReport(tenant, "")
    verify_models(app_url, tenant, report)
    assert report.models_checked
    return report


def test_models_rebuilt_from_an_untouched_ledger_agree_with_the_stored_rows(app_url, ledger):
    report = _check(app_url, ledger[0])
    assert report.ok, report.to_text()


def test_an_un_revoked_and_promoted_key_row_is_a_finding_naming_the_row(app_url, owner_url, ledger):
    tenant, key_id, _, _ = ledger
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE api_keys SET revoked_seq = NULL, revoked_at = NULL, "
                      "revoked_by = NULL, role = 'admin' WHERE key_id = %s", (key_id,))
    (finding,) = _check(app_url, tenant).findings
    assert finding.check == "read_model" and f"api_keys row (tenant {tenant}, key {key_id})" in finding.detail
    assert "role is 'admin' but the ledger says 'auditor'" in finding.detail
    assert "revoked_seq is None" in finding.detail


def test_an_edited_discrepancy_row_is_a_finding_naming_the_row(app_url, owner_url, ledger):
    tenant, _, d, _ = ledger
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE discrepancies SET status = 'open', actual_amount = 9850 "
                      "WHERE id = %s", (d,))
    (finding,) = _check(app_url, tenant).findings
    assert finding.check == "read_model" and f"discrepancies row (tenant {tenant}, id {d})" in finding.detail
    assert "status is 'open' but the ledger says 'resolved'" in finding.detail
    assert "actual_amount" in finding.detail


def test_an_edited_evidence_file_is_a_finding_naming_the_file_and_its_entry(app_url, owner_url, ledger):
    tenant, _, _, sha = ledger
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE evidence_files SET content = %s WHERE sha256 = %s",
                      (BLOB.replace(b"bank", b"fake"), bytes.fromhex(sha)))
    (finding,) = _check(app_url, tenant).findings
    assert finding.check == "evidence" and sha in finding.detail and finding.seq is not None


def test_an_edited_resolution_snapshot_is_a_finding(app_url, owner_url, ledger):
    tenant, _, d, _ = ledger
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE resolution_snapshots SET snapshot = convert_to(replace(convert_from("
                      "snapshot, 'UTF8'), 'fee booked', 'nothing'), 'UTF8') "
                      "WHERE discrepancy_id = %s", (d,))
    (finding,) = _check(app_url, tenant).findings
    assert finding.check == "snapshot" and d in finding.detail


def test_an_illegal_move_in_the_ledger_is_a_domain_finding_at_its_entry(app_url, conn, ledger):
    tenant = ledger[0]
    d = store.new_id()
    opening = domain.OpenDiscrepancy(external_ref="po-2", source="stripe", kind="amount_mismatch",
                                     expected_amount="1.00", actual_amount="2.00",
                                     currency="EUR", detected_at="2026-11-23T05:00:00Z")
    _append(conn, tenant, store.decision(d, opening, ANALYST, store.open_key("stripe", "po-2")))
    # Written past the domain (as whoever can append could): an analyst resolving at once.
    (bad,) = append_batch(conn, tenant, [NewEntry(
        stream=store.stream_of(d), type="discrepancy.transitioned", actor=Actor("key:x", "analyst"),
        data={"from": "open", "to": "resolved", "resolution_code": "other", "note": "gone"})])
    findings = _check(app_url, tenant).findings
    assert [(f.check, f.seq) for f in findings if f.check == "domain"] == [("domain", bad.seq)]
    assert "open -> resolved by role 'analyst' is not allowed" in findings[0].detail
