"""The tenant's severity policy through the real HTTP API and CLI: who may set it, how a bad
or stale change is refused, and which rule each new discrepancy's severity came from."""

from __future__ import annotations

import orjson
import pytest

from .cli_helpers import cli_env, indelible
from .test_http import running_service

USD = {"medium": "500.00", "high": "10000.00", "critical": "250000.00"}


def report(ref: str, currency: str, expected: str, actual: str, **extra) -> dict:
    return {"external_ref": ref, "source": "bank", "kind": "amount_mismatch",
            "expected_amount": expected, "actual_amount": actual, "currency": currency,
            "detected_at": "2026-11-23T05:00:00Z", **extra}


@pytest.fixture
def service(tmp_path, owner_url, app_url):
    with running_service(tmp_path, owner_url, app_url, "policy") as s:
        yield s


def test_a_manager_sets_the_policy_and_new_reports_follow_it(service, tmp_path):
    analyst, manager, auditor = (service.key(r) for r in ("analyst", "compliance_manager", "auditor"))
    initial = auditor.get("/v1/severity-policy").json()
    assert (initial["thresholds"], initial["version"], initial["seq"]) == ({}, 0, None)
    assert initial["unlisted_currencies"]["thresholds_minor_units"]["medium"] == 10_000

    change = {"thresholds": {"USD": USD}, "reason": "Risk committee, 2026-11", "expected_version": 0}
    refused = analyst.put("/v1/severity-policy", json=change)
    assert refused.status_code == 403 and "compliance_manager" in refused.json()["detail"]
    bad = manager.put("/v1/severity-policy", json={**change, "thresholds": {
        "USD": {**USD, "high": "400.00"}}})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{"field": "body.thresholds.USD.high",
                                     "rule": "must be greater than medium (500.00)"}]

    set_ = manager.put("/v1/severity-policy", json=change)
    assert set_.status_code == 200, set_.text
    policy = set_.json()
    assert (policy["thresholds"], policy["version"], policy["reason"]) == (
        {"USD": USD}, 1, "Risk committee, 2026-11")
    assert auditor.get("/v1/severity-policy").json() == policy
    stale = manager.put("/v1/severity-policy", json=change)
    assert stale.status_code == 409 and stale.json()["current_version"] == 1

    # 300.00 USD: low under the policy (the built-in rule would say medium); EUR is unlisted.
    usd = analyst.post("/v1/discrepancies", json=report("w-1", "USD", "1000.00", "1300.00")).json()
    eur = analyst.post("/v1/discrepancies", json=report("w-2", "EUR", "1000.00", "1300.00")).json()
    told = analyst.post("/v1/discrepancies", json=report("w-3", "USD", "1000.00", "1300.00",
                                                          severity="critical")).json()
    assert (usd["severity"], eur["severity"], told["severity"]) == ("low", "medium", "critical")
    bases = [opening(auditor, d["id"]) for d in (usd, eur, told)]
    assert bases == [{"severity_basis": "tenant_policy", "severity_policy_seq": policy["seq"]},
                     {"severity_basis": "built_in"}, {"severity_basis": "reported"}]

    # The operator's CLI reads and changes the same ledger-held policy.
    shown = orjson.loads(indelible(service.env, "severity-policy", "show", "--tenant",
                                   service.tenant).stdout)
    assert shown == policy
    path = tmp_path / "policy.json"
    path.write_bytes(orjson.dumps({"thresholds": {"USD": {**USD, "medium": "250.00"}}}))
    changed = indelible(service.env, "severity-policy", "set", "--tenant", service.tenant,
                        "--file", str(path), "--reason", "lower the bar")
    assert changed.returncode == 0, changed.stderr
    assert "version 2" in changed.stdout
    assert auditor.get("/v1/severity-policy").json()["thresholds"]["USD"]["medium"] == "250.00"
    later = analyst.post("/v1/discrepancies", json=report("w-4", "USD", "1000.00", "1300.00")).json()
    assert later["severity"] == "medium"
    assert analyst.get(f"/v1/discrepancies/{usd['id']}").json()["severity"] == "low"  # kept


def opening(client, discrepancy_id: str) -> dict:
    """The severity_* fields of the discrepancy's opening entry."""
    data = client.get(f"/v1/discrepancies/{discrepancy_id}/history").json()["entries"][0]["data"]
    return {k: v for k, v in data.items() if k.startswith("severity_")}


def test_the_cli_refuses_a_bad_policy_file_naming_the_field(tmp_path, owner_url):
    env = cli_env(tmp_path / "data", owner_url)
    path = tmp_path / "policy.json"
    for content, error in [
        (b'{"thresholds": {"JPY": {"medium": "0.5", "high": "2", "critical": "3"}}}',
         "thresholds.JPY.medium: 0.5 has 1 decimal place but JPY allows 0"),
        (b'{"thresholds": ', "Invalid value for --file: not JSON"),
    ]:
        path.write_bytes(content)
        refused = indelible(env, "severity-policy", "set", "--tenant", "acme",
                            "--file", str(path), "--reason", "r")
        assert refused.returncode == 2
        assert error in refused.stderr
