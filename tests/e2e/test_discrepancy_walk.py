"""A new user's walk, through the real HTTP API: tenant and keys, a discrepancy opened,
refused a premature move, walked to resolved, its history and time travel, its inclusion
proof, and a clean `indelible verify`."""

from __future__ import annotations

import base64
import hashlib

import psycopg
import pytest

from indelible import proofs
from indelible.proofs import canonical_json
from indelible.store.tenants import create_tenant

from .cli_helpers import indelible
from .test_http import _checkpoint, running_service

OPEN = {"external_ref": "stripe-po-1042", "source": "stripe", "kind": "amount_mismatch",
        "expected_amount": "9850.00", "actual_amount": "10000.00", "currency": "EUR",
        "detected_at": "2026-11-23T05:00:00Z", "metadata": {"batch": "2026-11-22"}}


@pytest.fixture
def service(tmp_path, owner_url, app_url):
    with running_service(tmp_path, owner_url, app_url, "walk") as s:
        yield s


def test_a_discrepancy_walks_from_open_to_resolved_with_proofs(service):
    analyst, manager, auditor = (service.key(r) for r in ("analyst", "compliance_manager", "auditor"))

    opened = analyst.post("/v1/discrepancies", json=OPEN)
    assert opened.status_code == 201, opened.text
    d = opened.json()
    assert (d["status"], d["difference"], d["severity"]) == ("open", "150.00", "medium")
    again = analyst.post("/v1/discrepancies", json=OPEN)
    assert again.status_code == 200 and again.json()["id"] == d["id"]

    path = f"/v1/discrepancies/{d['id']}"
    assert analyst.post(f"{path}/transitions", json={"to": "acknowledged"}).status_code == 200
    premature = analyst.post(f"{path}/transitions",
                             json={"to": "resolved", "resolution_code": "corrected_in_ledger",
                                   "note": "fixed"})
    assert premature.status_code == 409
    problem = premature.json()
    assert (problem["current_status"], problem["requested"], problem["allowed"]) == (
        "acknowledged", "resolved", ["investigating"])
    assert d["id"] in problem["detail"]

    assert manager.post(f"{path}/assignment", json={"assignee": "ana"}).status_code == 200
    assert analyst.post(f"{path}/comments", json={"text": "Processor fee not booked"}).status_code == 201
    statement = b"%PDF-1.4 processor statement, fee line 150.00 EUR"
    attached = analyst.post(f"{path}/evidence", params={"name": "statement.pdf"}, content=statement,
                            headers={"Content-Type": "application/pdf"})
    assert attached.status_code == 201, attached.text
    assert attached.json()["sha256"] == hashlib.sha256(statement).hexdigest()
    assert auditor.get(f"/v1/evidence/{attached.json()['sha256']}").content == statement
    assert analyst.post(f"{path}/transitions", json={"to": "investigating"}).status_code == 200
    resolved = analyst.post(f"{path}/transitions", json={
        "to": "resolved", "resolution_code": "corrected_in_ledger", "note": "Fee booked"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert analyst.post(f"{path}/transitions", json={"to": "investigating"}).status_code == 409
    assert analyst.get(f"{path}/snapshot").status_code == 200

    history = auditor.get(f"{path}/history").json()["entries"]
    assert [(h["status_before"], h["status_after"]) for h in history] == [
        (None, "open"), ("open", "acknowledged"), ("acknowledged", "acknowledged"),
        ("acknowledged", "acknowledged"), ("acknowledged", "acknowledged"),
        ("acknowledged", "investigating"), ("investigating", "resolved")]
    assert history[4]["type"] == "discrepancy.evidence_attached"
    assert history[4]["data"]["media_type"] == "application/pdf"
    assert all(h["role"] and h["actor"] for h in history)
    then = auditor.get(path, params={"as_of": history[1]["seq"]}).json()
    assert then["status"] == "acknowledged" and then["assignee"] is None

    frozen = auditor.get(f"{path}/snapshot").json()
    assert frozen["discrepancy"]["status"] == "resolved" and frozen["seq"] == history[-1]["seq"]
    digest = hashlib.sha256(canonical_json([[h["seq"], h["leaf_hash"]] for h in history])).hexdigest()
    assert frozen["history"]["digest_sha256"] == digest

    last = history[-1]
    _checkpoint(auditor, service.tenant, size=last["seq"] + 1)
    proof = auditor.get(f"/v1/logs/{service.tenant}/entries/{last['seq']}",
                        params={"format": "tlog-proof"}).text
    _, entry = proofs.verify_tlog_proof(proof, service.verifier)
    assert proofs.leaf_hash(entry) == base64.b64decode(last["leaf_hash"])

    verified = indelible(service.env, "verify", "--tenant", service.tenant)
    assert verified.returncode == 0, verified.stdout


def test_bad_input_is_refused_naming_the_field(service):
    analyst = service.key("analyst")
    floats = analyst.post("/v1/discrepancies", json={**OPEN, "expected_amount": 9850.0})
    assert floats.status_code == 422 and floats.json()["errors"][0]["field"] == "body.expected_amount"
    yen = analyst.post("/v1/discrepancies", json={**OPEN, "currency": "JPY",
                                                  "expected_amount": "100.5"})
    assert yen.status_code == 422 and "JPY" in yen.json()["detail"]
    extra = analyst.post("/v1/discrepancies", json={**OPEN, "surprise": True})
    assert extra.status_code == 422


def test_auditors_may_read_but_not_change_and_other_tenants_see_nothing(service, app_url):
    analyst, auditor = service.key("analyst"), service.key("auditor")
    d = analyst.post("/v1/discrepancies", json=OPEN).json()
    path = f"/v1/discrepancies/{d['id']}"
    assert auditor.get(path).status_code == 200
    for method, url, body in (("post", "/v1/discrepancies", OPEN),
                              ("post", f"{path}/transitions", {"to": "acknowledged"}),
                              ("post", f"{path}/comments", {"text": "x"}),
                              ("post", f"{path}/assignment", {"assignee": "x"}),
                              ("post", f"{path}/severity", {"severity": "low", "reason": "x"}),
                              ("post", f"{path}/evidence?name=x.txt", None)):
        refused = getattr(auditor, method)(url, json=body)
        assert refused.status_code == 403, url

    other = f"{service.tenant}-o"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, other, base_origin="test.indelible.local/log")
    stranger = service.key("compliance_manager", tenant=other)
    assert stranger.get(path).status_code == 404
    assert stranger.get(f"{path}/snapshot").status_code == 404
    assert stranger.post(f"{path}/evidence", params={"name": "x.txt"}, content=b"x").status_code == 404
    assert stranger.get(f"{path}/history").status_code == 404
    assert stranger.post(f"{path}/transitions", json={"to": "acknowledged"}).status_code == 404
    assert analyst.get(path).json()["status"] == "open"  # nothing changed


def test_listing_filters_pages_stably_and_counts(service):
    analyst = service.key("analyst")
    made = []
    for i, (source, currency) in enumerate([("stripe", "EUR"), ("paypal", "USD"), ("bank", "JPY")] * 3):
        body = {**OPEN, "external_ref": f"ref-{i:02d}", "source": source, "currency": currency,
                "expected_amount": "100" if currency == "JPY" else "100.00",
                "actual_amount": "90" if currency == "JPY" else "90.00"}
        made.append(analyst.post("/v1/discrepancies", json=body).json()["id"])
    analyst.post(f"/v1/discrepancies/{made[0]}/transitions", json={"to": "acknowledged"})

    pages, cursor = [], None
    while True:
        page = analyst.get("/v1/discrepancies", params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        pages.append([d["id"] for d in page["items"]])
        # A new arrival between pages must not shift or repeat what was already listed.
        if len(pages) == 1:
            analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "late"})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    listed = [i for p in pages for i in p]
    assert listed == list(reversed(made)) and [len(p) for p in pages] == [4, 4, 1]

    stripe = analyst.get("/v1/discrepancies", params={"source": "stripe"}).json()["items"]
    assert {d["source"] for d in stripe} == {"stripe"} and len(stripe) == 4  # 3 + "late"
    acknowledged = analyst.get("/v1/discrepancies", params={"status": "acknowledged"}).json()
    assert [d["id"] for d in acknowledged["items"]] == [made[0]]
    by_text = analyst.get("/v1/discrepancies", params={"q": "REF-0"}).json()["items"]
    assert len(by_text) == 9
    assert analyst.get("/v1/discrepancies", params={"opened_after": "2999-01-01T00:00:00Z"}).json()["items"] == []

    counts = analyst.get("/v1/discrepancy-counts").json()
    assert counts["total"] == 10 and counts["by_status"]["acknowledged"] == 1
    assert counts["by_status"]["open"] == 9 and sum(counts["by_severity"].values()) == 10

    bad = analyst.get("/v1/discrepancies", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"
    assert analyst.get("/v1/discrepancies", params={"status": "lost"}).status_code == 422


def test_every_endpoint_with_another_tenants_key_leaks_nothing_and_changes_nothing(service, app_url):
    analyst, admin = service.key("analyst"), service.key("admin")
    d = analyst.post("/v1/discrepancies", json=OPEN).json()
    path = f"/v1/discrepancies/{d['id']}"
    sha = analyst.post(f"{path}/evidence", params={"name": "a.txt"}, content=b"ours",
                       headers={"Content-Type": "text/plain"}).json()["sha256"]
    key_id = admin.post("/v1/api-keys", json={"role": "auditor"}).json()["key_id"]

    other = f"{service.tenant}-s"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, other, base_origin="test.indelible.local/log")
    stranger, stranger_admin = service.key("compliance_manager", tenant=other), service.key("admin", tenant=other)

    assert stranger.get("/v1/discrepancies").json()["items"] == []
    assert stranger.get("/v1/discrepancy-counts").json()["total"] == 0
    assert key_id not in {k["key_id"] for k in stranger_admin.get("/v1/api-keys").json()["keys"]}
    for method, url, kwargs in (
            ("get", path, {}), ("get", f"{path}?as_of=1", {}), ("get", f"{path}/history", {}),
            ("get", f"{path}/snapshot", {}), ("get", f"/v1/evidence/{sha}", {}),
            ("post", f"{path}/transitions", {"json": {"to": "acknowledged"}}),
            ("post", f"{path}/assignment", {"json": {"assignee": "mallory"}}),
            ("post", f"{path}/comments", {"json": {"text": "mine now"}}),
            ("post", f"{path}/severity", {"json": {"severity": "low", "reason": "x"}}),
            ("post", f"{path}/evidence?name=x.txt", {"content": b"x"}),
            ("get", f"/v1/logs/{service.tenant}/checkpoint", {}),
            ("get", f"/v1/logs/{service.tenant}/entries/0", {})):
        assert getattr(stranger, method)(url, **kwargs).status_code == 404, url
    assert stranger_admin.delete(f"/v1/api-keys/{key_id}").status_code == 404

    after = analyst.get(path).json()
    assert (after["version"], after["status"], after["assignee"], after["comments"]) == (
        d["version"] + 1, "open", None, 0)  # + our own evidence entry, nothing of theirs
    assert service.key("admin").get("/v1/api-keys").json()["keys"][-1]["revoked_seq"] is None


def test_the_auditor_role_cannot_manage_keys(service):
    auditor, admin = service.key("auditor"), service.key("admin")
    key_id = admin.post("/v1/api-keys", json={"role": "analyst"}).json()["key_id"]
    assert auditor.post("/v1/api-keys", json={"role": "admin"}).status_code == 403
    assert auditor.get("/v1/api-keys").status_code == 403
    assert auditor.delete(f"/v1/api-keys/{key_id}").status_code == 403


def test_an_idempotency_key_replays_its_own_request_and_is_refused_for_another(service):
    analyst = service.key("analyst")
    a = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "idem-a"}).json()["id"]
    b = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "idem-b"}).json()["id"]
    key = {"Idempotency-Key": "retry-1"}

    first = analyst.post(f"/v1/discrepancies/{a}/transitions", json={"to": "acknowledged"}, headers=key)
    again = analyst.post(f"/v1/discrepancies/{a}/transitions", json={"to": "acknowledged"}, headers=key)
    assert first.status_code == again.status_code == 200 and again.json()["seq"] == first.json()["seq"]

    other = analyst.post(f"/v1/discrepancies/{b}/transitions", json={"to": "acknowledged"}, headers=key)
    assert other.status_code == 422 and "retry-1" in other.json()["detail"]
    assert (other.json()["seq"], other.json()["discrepancy_id"]) == (first.json()["seq"], a)
    assert analyst.get(f"/v1/discrepancies/{b}").json()["status"] == "open"

    # The service's own keys are out of a client's reach, whatever it sends.
    sneaky = analyst.post(f"/v1/discrepancies/{b}/comments", json={"text": "x"},
                          headers={"Idempotency-Key": "tenant.created"})
    assert sneaky.status_code == 201 and sneaky.json()["seq"] > 0


def test_an_idempotency_key_reused_for_another_request_is_refused_on_every_route(service):
    analyst, manager = service.key("analyst"), service.key("compliance_manager")
    d = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "idem-c"}).json()["id"]
    path = f"/v1/discrepancies/{d}"
    key = {"Idempotency-Key": "note-1"}
    noted = analyst.post(f"{path}/comments", json={"text": "called the bank"}, headers=key)
    assert noted.status_code == 201
    history = analyst.get(f"{path}/history").json()["entries"]

    # A comment's key sent with a transition: refused, and the move is not applied.
    moved = analyst.post(f"{path}/transitions", json={"to": "acknowledged"}, headers=key)
    assert moved.status_code == 422, moved.text
    problem = moved.json()
    assert moved.headers["content-type"].startswith("application/problem+json")
    assert (problem["idempotency_key"], problem["seq"], problem["discrepancy_id"]) == (
        "note-1", noted.json()["seq"], d)
    assert "note-1" in problem["detail"] and str(noted.json()["seq"]) in problem["detail"]
    for route, body in (("comments", {"text": "called the bank twice"}),
                        ("assignment", {"assignee": "ana"})):
        assert analyst.post(f"{path}/{route}", json=body, headers=key).status_code == 422
    assert manager.post(f"{path}/severity", json={"severity": "high", "reason": "regulator"},
                        headers={"Idempotency-Key": "sev-1"}).status_code == 200
    again = manager.post(f"{path}/severity", json={"severity": "critical", "reason": "regulator"},
                         headers={"Idempotency-Key": "sev-1"})
    assert again.status_code == 422 and again.json()["idempotency_key"] == "sev-1"
    attached = analyst.post(f"{path}/evidence", params={"name": "a.pdf"}, content=b"one",
                            headers=key)
    assert attached.status_code == 422

    # The same request replayed gets the original answer and appends nothing.
    replayed = analyst.post(f"{path}/comments", json={"text": "called the bank"}, headers=key)
    assert replayed.status_code == 201 and replayed.json() == noted.json()
    after = analyst.get(f"{path}/history").json()["entries"]
    assert len(after) == len(history) + 1  # only the manager's severity change
    assert analyst.get(path).json()["status"] == "open"


def test_a_different_move_under_the_same_key_on_the_same_discrepancy_is_refused(service):
    analyst = service.key("analyst")
    d = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "idem-d"}).json()["id"]
    key = {"Idempotency-Key": "move-1"}
    first = analyst.post(f"/v1/discrepancies/{d}/transitions", json={"to": "acknowledged"},
                         headers=key)
    assert first.status_code == 200
    second = analyst.post(f"/v1/discrepancies/{d}/transitions", json={"to": "investigating"},
                          headers=key)
    assert second.status_code == 422 and second.json()["seq"] == first.json()["seq"]
    assert analyst.get(f"/v1/discrepancies/{d}").json()["status"] == "acknowledged"


def test_an_idempotency_key_on_opening_replays_the_original_and_refuses_another_body(service):
    analyst = service.key("analyst")
    key = {"Idempotency-Key": "open-1"}
    body = {**OPEN, "external_ref": "idem-e"}
    first = analyst.post("/v1/discrepancies", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = analyst.post("/v1/discrepancies", json=body, headers=key)
    assert again.status_code == 201 and again.json() == first.json()
    history = analyst.get(f"/v1/discrepancies/{first.json()['id']}/history").json()["entries"]
    for other in ({**body, "actual_amount": "10001.00"}, {**body, "external_ref": "idem-f"}):
        refused = analyst.post("/v1/discrepancies", json=other, headers=key)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["seq"], refused.json()["discrepancy_id"]) == (
            history[0]["seq"], first.json()["id"])
    assert analyst.get("/v1/discrepancies", params={"q": "idem-f"}).json()["items"] == []
    history = analyst.get(f"/v1/discrepancies/{first.json()['id']}/history").json()["entries"]
    assert [h["type"] for h in history] == ["discrepancy.opened"]


def test_a_conflicting_re_report_is_recorded_as_an_amendment(service):
    analyst, auditor = service.key("analyst"), service.key("auditor")
    body = {**OPEN, "external_ref": "amend-1"}
    first = analyst.post("/v1/discrepancies", json=body).json()
    amended = analyst.post("/v1/discrepancies", json={**body, "actual_amount": "10050.00",
                                                     "currency": "USD"})
    assert amended.status_code == 200, amended.text
    d = amended.json()
    assert (d["id"], d["actual_amount"], d["currency"], d["difference"], d["severity"]) == (
        first["id"], "10050.00", "USD", "200.00", first["severity"])
    again = analyst.post("/v1/discrepancies", json={**body, "actual_amount": "10050.00",
                                                   "currency": "USD"})
    assert again.status_code == 200 and again.json() == d  # the amended report again: nothing
    history = auditor.get(f"/v1/discrepancies/{d['id']}/history").json()["entries"]
    assert [h["type"] for h in history] == ["discrepancy.opened", "discrepancy.amended"]
    assert history[1]["data"]["changed"] == ["actual_amount", "currency"]
    assert history[1]["data"]["before"]["actual_amount"] == "10000.00"
    listed = auditor.get("/v1/discrepancies", params={"q": "amend-1"}).json()["items"]
    assert [(i["actual_amount"], i["currency"]) for i in listed] == [("10050.00", "USD")]


def test_the_longest_source_and_external_ref_are_accepted(service):
    analyst = service.key("analyst")
    body = {**OPEN, "source": "s" * 64, "external_ref": "r" * 200}
    assert analyst.post("/v1/discrepancies", json=body).status_code == 201
    assert analyst.post("/v1/discrepancies", json=body).status_code == 200


def test_an_uppercase_uuid_in_a_path_names_the_same_discrepancy(service):
    analyst = service.key("analyst")
    opened = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "upper-1"}).json()
    upper = opened["id"].upper()
    found = analyst.get(f"/v1/discrepancies/{upper}")
    assert found.status_code == 200 and found.json()["id"] == opened["id"]
    moved = analyst.post(f"/v1/discrepancies/{upper}/transitions", json={"to": "acknowledged"})
    assert moved.status_code == 200, moved.text
    assert analyst.get(f"/v1/discrepancies/{opened['id']}").json()["status"] == "acknowledged"
