"""Reports generated over a real ledger: figures checked against the ledger, PDFs read back,
reproducible bytes, the report.generated entry, the job queue's claims."""

from __future__ import annotations

import hashlib
import secrets

import orjson
import psycopg
import pytest

from indelible.bootstrap import projections
from indelible.entry import Actor
from indelible.proofs import NoteVerifier
from indelible.store import reports as store
from indelible.store.appender import append_batch
from indelible.store.signing import sign_checkpoint
from indelible.usecases import reports
from indelible.usecases.principal import Principal

from .report_helpers import around_now, pdf_text, seed

pytestmark = pytest.mark.storage
AUDITOR = Principal("", "key:audit", "auditor")


@pytest.fixture
def signing(signer, kept):
    key = signer.verifier_key_text()
    return reports.Signing(NoteVerifier.from_key_text(key), key,
                           sign_now=lambda conn, tenant: sign_checkpoint(conn, tenant, signer, kept))


def _append(conn):
    def append(tenant, command):
        (out,) = append_batch(conn, tenant, [command], model=projections())
        if isinstance(out, BaseException):
            raise out
        return out
    return append


def _job(conn, tenant, body, *, queued: bool = False) -> store.Job:
    """A job as POST /v1/reports makes it; unless `queued`, marked done at once, since the
    test generates it itself (no worker of a service sharing this database should)."""
    who = Principal(tenant, "key:audit", "auditor")
    with conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        job = reports.request_report(conn, _append(conn), who, body)
    if not queued:
        store.finish(conn, job, "done")
    return job


def test_a_report_states_the_ledgers_figures_and_its_pdf_says_them(app_url, conn,
                                                                  registered_tenant, signing):
    tenant = registered_tenant
    ids = seed(conn, tenant, 9, comments=2)
    _fire_escalation(conn, tenant, ids[1])
    job = _job(conn, tenant, around_now())
    made = reports.generate(app_url, job, append=_append(conn), signing=signing)

    files = {name: content for name, _, content in made.files}
    assert set(files) == {"report.pdf", "report.html", "report.json"}
    doc = orjson.loads(files["report.json"])
    s = doc["summary"]
    assert s["discrepancies"] == 9
    assert s["by_status"] == {"open": 3, "acknowledged": 3, "investigating": 0, "resolved": 3,
                              "escalated": 0, "auto_closed": 0}
    assert s["by_source"] == {"bank": 3, "paypal": 3, "stripe": 3}
    # Each currency at its own scale: EUR two places, JPY none, KWD three.
    assert s["amounts_by_currency"]["EUR"] == {"count": 3, "expected": "29550.00",
                                               "actual": "30000.00", "difference": "450.00",
                                               "absolute": "450.00"}
    assert s["amounts_by_currency"]["JPY"]["difference"] == "1500"
    assert s["amounts_by_currency"]["KWD"]["difference"] == "-0.750"
    assert s["time_to_acknowledge"]["count"] == 6 and s["time_to_resolve"]["count"] == 3
    assert s["escalations_fired"] == 1
    assert [d["escalations_fired"] for d in doc["discrepancies"] if d["id"] == ids[1]] == [1]
    with conn.cursor() as cur:  # every entry of those streams, and nothing else
        (entries,) = cur.execute("SELECT count(*) FROM ledger_entries WHERE tenant_id = %s "
                                 "AND stream_id LIKE 'disc/%%'", (tenant,)).fetchone()
    assert s["entries"] == entries == 9 + 9 * 2 + 6 + 3 + 3 + 1
    assert doc["verification"]["at_generation"]["result"] == "verified"
    assert doc["checkpoint"]["size"] == made.tree_size

    text = pdf_text(files["report.pdf"])
    for needle in ("Compliance report", tenant, "29550.00", "-0.750", "Signed checkpoint",
                   "Verification", "verified", "Contents", "page 1 of",
                   doc["discrepancies"][0]["timeline"][0]["leaf_hash"]):
        assert needle in text, needle
    assert "<svg" in files["report.html"].decode()

    (row,) = conn.execute("SELECT type, entry FROM ledger_entries WHERE tenant_id = %s AND seq = %s",
                          (tenant, made.seq)).fetchall()
    entry = orjson.loads(bytes(row[1]))
    assert row[0] == "report.generated" and entry["actor"]["role"] == "auditor"
    assert {f["name"]: f["sha256"] for f in entry["data"]["files"]} == {
        n: hashlib.sha256(c).hexdigest() for n, c in files.items()}
    assert entry["data"]["covered"]["tree_size"] == made.tree_size
    stored = store.read_file(conn, tenant, job.report_id, "report.pdf")
    assert stored[1] == files["report.pdf"]


def _fire_escalation(conn, tenant, discrepancy_id):
    """An `escalation.fired` entry as the escalation engine (issue 11) records it."""
    from indelible.entry import NewEntry
    (out,) = append_batch(conn, tenant, [NewEntry(
        stream=f"disc/{discrepancy_id}", type="escalation.fired",
        actor=Actor("engine:escalation", "system", "system"),
        data={"rule_id": "r-48h", "rule_name": "48 hours unanswered", "rules_version": 1,
              "rule_version": 1, "action": "notify", "period_start_seq": 1,
              "due_at": "2026-11-25T05:00:00.000000Z", "fired_at": "2026-11-25T05:00:01.000000Z",
              "target": "compliance@example.com", "message": "po-1 waits"})],
        model=projections())
    assert not isinstance(out, BaseException), out


def test_the_same_parameters_over_the_same_range_give_the_same_bytes(app_url, conn,
                                                                    registered_tenant, signing):
    tenant = registered_tenant
    seed(conn, tenant, 4, comments=1)
    body = around_now()
    first = reports.generate(app_url, _job(conn, tenant, body), append=_append(conn),
                             signing=signing)
    seed(conn, tenant, 2, prefix="later")  # the ledger grows meanwhile
    again = reports.generate(app_url, _job(conn, tenant, body), append=_append(conn),
                             signing=signing, tree_size=first.tree_size)
    assert again.report_id != first.report_id
    assert [c for *_, c in again.files] == [c for *_, c in first.files]
    pdf = dict((n, c) for n, _, c in first.files)["report.pdf"]
    matches = reports.verify_report_file(conn, pdf)
    assert {(m.tenant, m.seq, m.name) for m in matches} == {(tenant, first.seq, "report.pdf"),
                                                          (tenant, again.seq, "report.pdf")}
    assert reports.verify_report_file(conn, pdf + b" ") == []


def test_filters_narrow_the_discrepancies_and_another_tenants_are_never_read(
        app_url, conn, registered_tenant, signing):
    from indelible.store.tenants import create_tenant
    other = f"t-{secrets.token_hex(5)}"
    create_tenant(conn, other, base_origin="test.indelible.local/log")
    seed(conn, other, 3, prefix="other")
    ids = seed(conn, registered_tenant, 6)
    body = around_now() | {"formats": ["json"],
                           "filters": {"status": ["resolved", "open"], "currency": ["EUR"]}}
    made = reports.generate(app_url, _job(conn, registered_tenant, body), append=_append(conn),
                            signing=signing)
    doc = orjson.loads(made.files[0][2])
    # As a set: two discrepancies opened in the same instant may come in either id order.
    assert sorted(d["id"] for d in doc["discrepancies"]) == sorted([ids[0], ids[3]])  # EUR, resolved
    only = around_now() | {"formats": ["json"], "filters": {"discrepancy_ids": [ids[1]]}}
    doc = orjson.loads(reports.generate(app_url, _job(conn, registered_tenant, only),
                                        append=_append(conn), signing=signing).files[0][2])
    assert [d["id"] for d in doc["discrepancies"]] == [ids[1]]


def test_a_tampered_entry_makes_the_verification_section_say_failed(
        app_url, conn, owner_url, registered_tenant, signing, signer, kept):
    from .ledger_helpers import superuser
    tenant = registered_tenant
    seed(conn, tenant, 2)
    sign_checkpoint(conn, tenant, signer, kept)
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE ledger_entries SET entry = convert_to(replace(convert_from(entry, "
                      "'UTF8'), 'po-0', 'po-X'), 'UTF8') WHERE tenant_id = %s AND seq = 1", (tenant,))
    made = reports.generate(app_url, _job(conn, tenant, around_now() | {"formats": ["json"]}),
                            append=_append(conn), signing=signing)
    check = orjson.loads(made.files[0][2])["verification"]["at_generation"]
    assert check["result"] == "FAILED" and check["leaf_hashes"] is False
    assert "seq 1" in check["first_problem"]


def test_two_workers_never_hold_the_same_job_and_a_dead_claim_is_taken_again(
        app_url, conn, registered_tenant):
    job = _job(conn, registered_tenant, around_now(), queued=True)
    first = psycopg.connect(app_url, autocommit=True)
    with psycopg.connect(app_url, autocommit=True) as second:
        claimed = _claimed_by(first, "worker-1", registered_tenant)
        assert claimed.report_id == job.report_id and claimed.attempts == 1
        assert _claimed_by(second, "worker-2", registered_tenant) is None  # held: skipped
        first.close()  # the worker dies: its connection, and so its lock, goes
        again = _claimed_by(second, "worker-2", registered_tenant)
        assert again is not None and again.attempts == 2
        store.finish(second, again, "done")
        store.release(second, again)


def _claimed_by(conn, worker, tenant):
    return store.claim(conn, worker, tenant)  # only this test's tenant: others' jobs stay


def test_a_due_schedule_queues_its_report_once_and_moves_to_the_next_period(
        app_url, conn, registered_tenant):
    from datetime import datetime, timezone

    tenant = registered_tenant
    who = Principal(tenant, "key:mgr", "compliance_manager")
    made = reports.set_schedule(_append(conn), who, {"every": "monthly", "formats": ["json"]})
    (kind,) = conn.execute("SELECT type FROM ledger_entries WHERE tenant_id = %s AND seq = %s",
                           (tenant, made.set_seq)).fetchone()
    assert kind == "report.schedule_set" and made.next_run_at > datetime.now(timezone.utc)
    with psycopg.connect(app_url) as owner:  # pretend the month has ended
        owner.execute("UPDATE report_schedules SET next_run_at = '2026-11-01T00:00:00Z' "
                      "WHERE tenant_id = %s", (tenant,))
        owner.commit()
    assert reports.enqueue_due_schedules(conn, _append(conn)) >= 1
    jobs = [j for j in store.list_jobs(conn, tenant) if j.schedule_id == made.schedule_id]
    assert [j.parameters["request"]["from"] for j in jobs] == ["2026-10-01T00:00:00Z"]
    assert store.get_schedule(conn, tenant, made.schedule_id).next_run_at.month == 12
    reports.cancel_schedule(_append(conn), conn, who, made.schedule_id)
    assert store.get_schedule(conn, tenant, made.schedule_id).cancelled


def test_report_files_are_append_only(app_url, conn, owner_url, registered_tenant, signing):
    made = reports.generate(app_url, _job(conn, registered_tenant, around_now() | {
        "formats": ["json"]}), append=_append(conn), signing=signing)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        for sql in ("UPDATE report_files SET content = 'x' WHERE report_id = %s",
                    "DELETE FROM report_files WHERE report_id = %s"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(sql, (made.report_id,))


def test_report_verify_refuses_a_row_a_superuser_rewrote_to_record_another_file(
        app_url, conn, owner_url, registered_tenant, signing, signer, kept):
    """The report.generated row is the database's word; only the signed log's is proof."""
    from .ledger_helpers import superuser
    tenant = registered_tenant
    seed(conn, tenant, 2)
    made = reports.generate(app_url, _job(conn, tenant, around_now() | {"formats": ["json"]}),
                            append=_append(conn), signing=signing)
    sign_checkpoint(conn, tenant, signer, kept)  # the report's own entry is now covered
    genuine = made.files[0][2]
    proved = reports.verify_report_file(conn, genuine, tenant, signing.verifier)
    assert [(m.seq, m.proof) for m in proved] == [(made.seq, "proved")]
    forged = genuine.replace(b'"', b"'", 1)
    old, new = hashlib.sha256(genuine).hexdigest(), hashlib.sha256(forged).hexdigest()
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE ledger_entries SET entry = convert_to(replace(convert_from(entry, "
                      "'UTF8'), %s, %s), 'UTF8') WHERE tenant_id = %s AND seq = %s",
                      (old, new, tenant, made.seq))
    assert reports.verify_report_file(conn, forged, tenant) != []  # the row alone is fooled
    assert reports.verify_report_file(conn, forged, tenant, signing.verifier) == []


def test_a_report_file_a_superuser_rewrote_is_not_served(app_url, conn, owner_url,
                                                        registered_tenant, signing):
    from .ledger_helpers import superuser
    tenant = registered_tenant
    seed(conn, tenant, 2)
    made = reports.generate(app_url, _job(conn, tenant, around_now() | {"formats": ["json"]}),
                            append=_append(conn), signing=signing)
    name, _, genuine = made.files[0]
    assert reports.report_file(conn, tenant, made.report_id, name)[1] == genuine
    forged = genuine.replace(b'"', b"'", 1)
    with superuser(owner_url) as rogue:  # the bytes and the row's own digest, both
        rogue.execute("UPDATE report_files SET content = %s, sha256 = %s WHERE tenant_id = %s "
                      "AND report_id = %s AND name = %s",
                      (forged, hashlib.sha256(forged).digest(), tenant, made.report_id, name))
    with pytest.raises(reports.ReportIntegrityError, match="report.generated entry records"):
        reports.report_file(conn, tenant, made.report_id, name)


def _edit_queued_job(owner_url, tenant, report_id):
    """A superuser rewrites a queued job: another requester, another filter, another range."""
    from .ledger_helpers import superuser
    with superuser(owner_url) as rogue:
        rogue.execute(
            "UPDATE report_jobs SET requested_by = 'key:ceo', parameters = jsonb_set(jsonb_set("
            "jsonb_set(parameters, '{actor,id}', '\"key:ceo\"'), '{actor,role}', "
            "'\"compliance_manager\"'), '{request,filters,source}', '[\"stripe\"]') "
            "|| '{\"tree_size\": 1}' WHERE tenant_id = %s AND report_id = %s",
            (tenant, report_id))


def test_a_queued_job_a_superuser_edited_renders_what_the_ledger_recorded_as_asked(
        app_url, conn, owner_url, registered_tenant, signing):
    """What was asked, and by whom, is the report.requested entry, not the job row."""
    tenant = registered_tenant
    seed(conn, tenant, 6)
    job = _job(conn, tenant, around_now() | {"formats": ["json"],
                                             "filters": {"source": ["bank"]}}, queued=True)
    (asked_seq, asked) = conn.execute(
        "SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s AND stream_id = %s "
        "AND type = 'report.requested'", (tenant, f"report/{job.report_id}")).fetchone()
    asked = orjson.loads(bytes(asked))
    assert asked["actor"]["id"] == "key:audit"
    assert asked["data"]["parameters"]["filters"]["source"] == ["bank"]
    _edit_queued_job(owner_url, tenant, job.report_id)
    claimed = _claimed_by(conn, "worker-1", tenant)
    assert claimed.report_id == job.report_id
    assert claimed.parameters["actor"]["id"] == "key:ceo"  # the row says what the rogue wrote
    try:
        reports.run_job(app_url, conn, claimed, append=_append(conn), signing=signing)
    finally:
        store.release(conn, claimed)
    done = store.get_job(conn, tenant, job.report_id)
    assert done.status == "done", done.failure
    entry = orjson.loads(store.generated_entry(conn, tenant, f"report/{job.report_id}"))
    assert entry["actor"]["id"] == "key:audit" and entry["actor"]["role"] == "auditor"
    assert entry["data"]["parameters"] == asked["data"]["parameters"]
    assert entry["data"]["requested_seq"] == asked_seq and done.entry_seq > asked_seq
    assert entry["data"]["covered"]["tree_size"] > asked_seq  # not the rogue's tree_size 1
    _, document = reports.report_file(conn, tenant, job.report_id, "report.json")
    sources = {d["source"] for d in orjson.loads(document)["discrepancies"]}
    assert sources == {"bank"}
    from indelible.verifier.models import verify_models
    from indelible.verifier.report import VerificationReport
    checked = VerificationReport(tenant, "")  # the models pass takes the new entry type
    verify_models(app_url, tenant, checked)
    assert checked.models_checked and checked.ok, checked.to_text()


def test_a_job_whose_request_entry_a_superuser_rewrote_fails_naming_it(
        app_url, conn, owner_url, registered_tenant, signing):
    """Rewriting the report.requested row itself breaks its leaf hash: nothing is rendered."""
    from .ledger_helpers import superuser
    tenant = registered_tenant
    seed(conn, tenant, 2)
    job = _job(conn, tenant, around_now() | {"formats": ["json"]}, queued=True)
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE ledger_entries SET entry = convert_to(replace(convert_from(entry, "
                      "'UTF8'), 'key:audit', 'key:ceo!'), 'UTF8') WHERE tenant_id = %s "
                      "AND stream_id = %s", (tenant, f"report/{job.report_id}"))
    claimed = _claimed_by(conn, "worker-1", tenant)
    try:
        reports.run_job(app_url, conn, claimed, append=_append(conn), signing=signing)
    finally:
        store.release(conn, claimed)
    done = store.get_job(conn, tenant, job.report_id)
    assert done.status == "failed"
    assert "report.requested entry" in done.failure and "leaf hash" in done.failure
    assert store.generated_entry(conn, tenant, f"report/{job.report_id}") is None


def test_a_scheduled_run_is_requested_in_the_ledger_by_its_schedule(
        app_url, conn, owner_url, registered_tenant):
    from .ledger_helpers import superuser
    tenant = registered_tenant
    who = Principal(tenant, "key:mgr", "compliance_manager")
    made = reports.set_schedule(_append(conn), who, {"every": "monthly", "formats": ["json"]})
    with superuser(owner_url) as owner:
        owner.execute("UPDATE report_schedules SET next_run_at = '2026-11-01T00:00:00Z' "
                      "WHERE tenant_id = %s AND schedule_id = %s", (tenant, made.schedule_id))
    assert reports.enqueue_due_schedules(conn, _append(conn)) >= 1
    (job,) = [j for j in store.list_jobs(conn, tenant) if j.schedule_id == made.schedule_id]
    asked = reports.requested(conn, tenant, job.report_id)
    assert asked.actor.id == f"schedule:{made.schedule_id}"
    assert asked.request.to_json()["from"] == "2026-10-01T00:00:00Z"
    reports.cancel_schedule(_append(conn), conn, who, made.schedule_id)
