"""Done means (issue 11): a new user sets "high open → notify the compliance manager, then
escalate to critical" (seconds instead of hours), opens a discrepancy, and sees both
firings, in order and once, in its history — through the real `indelible up`, HTTP and CLI."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from .cli_helpers import indelible
from .test_http import running_service

RULES_YAML = """\
rules:
  - id: high-notify
    name: "High open: tell compliance"
    severity: high
    statuses: [open, acknowledged]
    after: PT2S
    priority: 10
    action:
      type: notify
      target: compliance_manager
      message: "{external_ref} ({currency} {difference}) is still open"
  - id: high-escalate
    name: "High open: escalate"
    severity: high
    after: PT4S
    priority: 20
    action: {type: escalate, severity: critical}
"""


@pytest.fixture
def service(tmp_path, owner_url, app_url):
    with running_service(tmp_path, owner_url, app_url, "esc") as s:
        yield s


def _history(client, discrepancy_id: str) -> list[dict]:
    return client.get(f"/v1/discrepancies/{discrepancy_id}/history").json()["entries"]


def test_both_firings_appear_once_and_in_order(service, tmp_path):
    analyst, manager, auditor = (service.key(r) for r in ("analyst", "compliance_manager", "auditor"))
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_YAML)
    done = indelible(service.env, "rules", "set", "--tenant", service.tenant, "--file",
                     str(rules_file), "--reason", "demo thresholds")
    assert done.returncode == 0, done.stderr
    assert "version 1" in done.stdout
    shown = orjson.loads(indelible(service.env, "rules", "show", "--tenant", service.tenant).stdout)
    assert [r["after"] for r in shown["rules"]] == ["PT2S", "PT4S"]
    assert auditor.get("/v1/escalation-rules").json()["version"] == 1

    opened = analyst.post("/v1/discrepancies", json={
        "external_ref": "po-7", "source": "stripe", "kind": "amount_mismatch",
        "expected_amount": "9850.00", "actual_amount": "10000.00", "currency": "EUR",
        "detected_at": "2026-11-23T05:00:00Z", "severity": "high"})
    assert opened.status_code in (200, 201), opened.text
    discrepancy = opened.json()["id"]

    deadline = time.monotonic() + 60  # the engine inside `indelible up` fires on its own
    while time.monotonic() < deadline:
        types = [e["type"] for e in _history(auditor, discrepancy)]
        if "discrepancy.transitioned" in types:
            break
        time.sleep(0.5)
    # Nothing new on demand, by HTTP or CLI: every firing is recorded once.
    again = manager.post("/v1/escalations/run")
    assert again.status_code == 200, again.text
    assert again.json()["fired"] == []
    cli = indelible(service.env, "escalate", "--tenant", service.tenant)
    assert cli.returncode == 0, cli.stderr
    assert orjson.loads(cli.stdout)["fired"] == []

    entries = _history(auditor, discrepancy)
    assert [e["type"] for e in entries] == [
        "discrepancy.opened", "escalation.fired", "escalation.fired",
        "discrepancy.severity_changed", "discrepancy.transitioned"]
    notify, escalate = entries[1]["data"], entries[2]["data"]
    assert (notify["rule_id"], notify["action"], notify["target"]) == (
        "high-notify", "notify", "compliance_manager")
    assert notify["message"] == "po-7 (EUR 150.00) is still open"
    assert (escalate["rule_id"], escalate["severity"]) == ("high-escalate", "critical")
    for fired in (notify, escalate):
        assert fired["rules_version"] == 1 and fired["due_at"] <= fired["fired_at"]
        assert fired["period_start_seq"] == entries[0]["seq"]
    assert entries[4]["data"]["to"] == "escalated"
    case = auditor.get(f"/v1/discrepancies/{discrepancy}").json()
    assert (case["status"], case["severity"]) == ("escalated", "critical")

    view = auditor.get(f"/v1/discrepancies/{discrepancy}/escalation").json()
    assert view["status"] == "escalated" and view["watching"] == []
    assert [h["rule_id"] for h in view["history"]] == ["high-notify", "high-escalate"]


def test_bad_or_stale_rules_are_refused_with_the_rule_the_field_and_the_reason(service, tmp_path):
    manager, analyst = service.key("compliance_manager"), service.key("analyst")
    bad = {"rules": [{"id": "r1", "name": "x", "severity": "high", "after": "PT4X",
                      "action": {"type": "notify", "target": "compliance_manager",
                                 "message": "hi"}}],
           "reason": "r", "expected_version": 0}
    refused = manager.put("/v1/escalation-rules", json=bad)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.rules[r1].after"
    assert "PT4X" in refused.json()["errors"][0]["rule"]
    assert analyst.put("/v1/escalation-rules", json=bad).status_code == 403
    good = {**bad, "rules": [{**bad["rules"][0], "after": "PT4H"}]}
    assert manager.put("/v1/escalation-rules", json=good).status_code == 200
    stale = manager.put("/v1/escalation-rules", json=good)
    assert stale.status_code == 409 and stale.json()["current_version"] == 1

    path = tmp_path / "bad.json"
    path.write_text(orjson.dumps({"rules": [{**bad["rules"][0], "severity": "urgent"}]}).decode())
    cli = indelible(service.env, "rules", "set", "--tenant", service.tenant, "--file", str(path),
                    "--reason", "x")
    assert cli.returncode == 2 and "rules[r1].severity" in cli.stderr

    preview = manager.post("/v1/escalation-rules/preview", json={"rules": good["rules"]})
    assert preview.status_code == 200 and preview.json()["counts"]["due_now"] == 0


def _readme_demo() -> str:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## Escalation: rules"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_demo_runs_as_written(service, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = tmp_path / "repo"
    (repo / ".venv").mkdir(parents=True)
    (repo / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    script = _readme_demo().replace("http://127.0.0.1:8080", service.base)
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=repo,
                            env=service.env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    out = result.stdout
    history = next(line for line in out.splitlines() if '"entries"' in line)
    import json

    document, _ = json.JSONDecoder().raw_decode(history)  # the view follows on the same line
    types = [e["type"] for e in document["entries"]]
    assert types == ["discrepancy.opened", "escalation.fired", "escalation.fired",
                     "discrepancy.severity_changed", "discrepancy.transitioned"]
    assert '"fired": []' in out  # the pass on demand found nothing new


def test_calendar_and_pauses_over_http(service):
    manager, analyst, admin = (service.key(r) for r in ("compliance_manager", "analyst", "admin"))
    assert manager.get("/v1/business-calendar").json()["default"] is True
    bad = admin.put("/v1/business-calendar", json={"time_zone": "Mars/Base", "reason": "x",
                                                   "expected_version": 0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.time_zone"
    set_ = admin.put("/v1/business-calendar", json={
        "time_zone": "Europe/Vienna", "holidays": ["2026-12-24"], "reason": "office",
        "expected_version": 0})
    assert set_.status_code == 200, set_.text
    assert (set_.json()["version"], set_.json()["time_zone"]) == (1, "Europe/Vienna")

    case = analyst.post("/v1/discrepancies", json={
        "external_ref": "p-1", "source": "bank", "kind": "amount_mismatch", "severity": "high",
        "expected_amount": "1.00", "actual_amount": "2.00", "currency": "EUR",
        "detected_at": "2026-11-23T05:00:00Z"}).json()["id"]
    path = f"/v1/discrepancies/{case}/escalation"
    body = {"reason": "waiting for the bank", "until": "2099-01-01T00:00:00Z"}
    assert analyst.post(path + "/pause", json=body).status_code == 403
    assert manager.post(path + "/pause", json=body).status_code == 422  # more than a year
    body["until"] = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    paused = manager.post(path + "/pause", json=body)
    assert paused.status_code == 200 and paused.json()["type"] == "escalation.paused"
    assert manager.get(path).json()["paused_until"] is not None
    resumed = manager.post(path + "/resume", json={"reason": "bank answered"})
    assert resumed.status_code == 200 and resumed.json()["type"] == "escalation.resumed"
    again = manager.post(path + "/resume", json={"reason": "twice"})
    assert again.status_code == 409 and "not paused" in again.json()["detail"]
    assert [h["type"] for h in manager.get(path).json()["history"]] == [
        "escalation.paused", "escalation.resumed"]
