"""A real escalation reaches the Notification Hub: `indelible up` with the escalation engine
(issue 11) and the hub switched on, against a local receiver that checks signatures with the
reference library. A notify firing and an escalation each arrive once, as hub events with the
rule and its version, the target and the rendered message, the new severity and a link; each
delivery is an `outbox.delivered` entry in the discrepancy's history."""

from __future__ import annotations

import pytest

from indelible.outbound.webhooks import new_secret
from tests.webhook_receiver import Receiver

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _start
from .test_outbox_service import _client, _close_clients, _history_types, _tenant, _wait  # noqa: F401

pytestmark = pytest.mark.storage

RULES = """\
rules:
  - id: high-notify
    name: "High open: tell compliance"
    severity: high
    statuses: [open, acknowledged]
    after: PT1S
    priority: 10
    action:
      type: notify
      target: compliance_manager
      message: "{external_ref} ({currency} {difference}) is still open"
  - id: high-escalate
    name: "High open: escalate"
    severity: high
    after: PT2S
    priority: 20
    action: {type: escalate, severity: critical}
"""


def test_a_notify_firing_and_an_escalation_reach_the_hub_signed_once_each(
        tmp_path, owner_url, app_url):
    secret = new_secret()
    receiver = Receiver(secret).start()
    env = cli_env(tmp_path / "data", owner_url)
    env.update({"INDELIBLE_INGEST_ENABLED": "false", "INDELIBLE_CHECKPOINT_INTERVAL": "0.2",
                "INDELIBLE_NOTIFICATION_HUB_ENABLED": "true",
                "INDELIBLE_NOTIFICATION_HUB_URL": receiver.url,
                "INDELIBLE_NOTIFICATION_HUB_SECRET": secret,
                "INDELIBLE_PUBLIC_URL": "https://ledger.example",
                "INDELIBLE_OUTBOX_RETRY_SCHEDULE": "0 0.5 0.5", "INDELIBLE_OUTBOX_POLL": "0.2"})
    tenant = _tenant(app_url)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    done = indelible(env, "rules", "set", "--tenant", tenant, "--file", str(rules),
                     "--reason", "hub demo")
    assert done.returncode == 0, done.stderr
    process, base = _start(env, tmp_path / "service.log")
    try:
        analyst = _client(env, base, tenant, "analyst")
        opened = analyst.post("/v1/discrepancies", json={
            "external_ref": "po-hub", "source": "stripe", "kind": "amount_mismatch",
            "expected_amount": "9850.00", "actual_amount": "10000.00", "currency": "EUR",
            "detected_at": "2026-11-23T05:00:00Z", "severity": "high"})
        assert opened.status_code == 201, opened.text
        case = opened.json()["id"]
        receiver.wait_for(2, tenant=tenant, timeout=90)
        _wait(lambda: _history_types(analyst, case).count("outbox.delivered") == 2, timeout=60,
              what="both delivery entries")
        history = analyst.get(f"/v1/discrepancies/{case}/history").json()["entries"]
    finally:
        assert _interrupt(process) == 0
        receiver.stop()
    assert receiver.invalid == [] and receiver.duplicates_of(tenant) == []
    events = {e["type"]: e["data"] for e in receiver.of(tenant).values()}
    assert set(events) == {"escalation.notify", "escalation.escalated"}
    notify, escalated = events["escalation.notify"], events["escalation.escalated"]
    assert notify["rule"]["id"] == "high-notify" and notify["rule"]["rules_version"] == 1
    assert notify["rule"]["name"] == "High open: tell compliance"
    assert notify["target"] == "compliance_manager"
    assert notify["message"] == "po-hub (EUR 150.00) is still open"
    assert notify["discrepancy"]["link"] == f"https://ledger.example/v1/discrepancies/{case}"
    assert notify["discrepancy"]["id"] == case and "po-hub" in notify["discrepancy"]["summary"]
    assert escalated["severity"] == "critical" and escalated["rule"]["id"] == "high-escalate"
    assert escalated["discrepancy"]["status"] == "escalated"  # as the firing's commit left it
    fired = [e["seq"] for e in history if e["type"] == "escalation.fired"]
    assert sorted(d["source"]["seq"] for d in events.values()) == fired
    delivered = [e for e in history if e["type"] == "outbox.delivered"]
    assert {d["actor"] for d in delivered} == {"outbox:hub"}
