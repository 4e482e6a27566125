"""Four engines in separate processes, against one tenant on real PostgreSQL, while two
more processes keep moving its discrepancies: every firing appears once, no move applies
to a status it was not valid for, and verification passes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import psycopg
import pytest

from indelible.store.signing import sign_checkpoint
from indelible.verifier import verify_log
from indelible.verifier.models import verify_models
from indelible.verifier.report import VerificationReport

from .ledger_helpers import verifier_of
from .test_escalation import Harness

pytestmark = pytest.mark.storage

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 6.0
RULES = {"rules": [
    {"id": "notify-1s", "name": "tell", "severity": "*", "after": "PT1S", "priority": 1,
     "statuses": ["open", "acknowledged", "investigating"],
     "action": {"type": "notify", "target": "compliance_manager", "message": "{external_ref}"}},
    {"id": "escalate-2s", "name": "escalate", "severity": "high", "after": "PT2S",
     "statuses": ["open", "acknowledged", "investigating"],
     "action": {"type": "escalate", "severity": "critical"}},
    {"id": "close-3s", "name": "close", "severity": "low", "after": "PT3S",
     "action": {"type": "auto_close", "reason": "stale"}},
]}


def _worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.integration.escalation_workers", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_four_engines_and_busy_people_leave_one_coherent_trail(app_url, registered_tenant,
                                                                signer, kept):
    h = Harness(app_url, registered_tenant)
    h.set_rules(RULES)
    for i in range(30):
        h.open(f"c-{i}", severity=("high", "low", "medium")[i % 3])
    workers = [_worker("engine", app_url, h.tenant, str(SECONDS)) for _ in range(4)]
    workers += [_worker("mover", app_url, h.tenant, str(SECONDS), str(seed)) for seed in (1, 2)]
    fired = []
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        if out.strip():
            fired.append(int(out))
    assert sum(fired) > 0 and len(fired) == 4

    rows = h.conn.execute("SELECT seq, stream_id, entry FROM ledger_entries WHERE tenant_id = %s "
                          "AND stream_id LIKE 'disc/%%' ORDER BY seq", (h.tenant,)).fetchall()
    firings = Counter()
    period, status = {}, {}
    for seq, stream, entry in rows:
        e = orjson.loads(bytes(entry))
        if e["type"] in ("discrepancy.opened", "discrepancy.transitioned"):
            period[stream], status[stream] = seq, e["data"].get("to", "open")
        if e["type"] == "escalation.fired":
            d = e["data"]
            firings[(stream, d["rule_id"], d["rule_version"], d["period_start_seq"])] += 1
            # It obeyed the period the discrepancy was in when it was recorded.
            assert (d["period_start_seq"], d["period_status"]) == (period[stream], status[stream])
            assert d["due_at"] <= d["fired_at"]
    assert firings and set(firings.values()) == {1}, firings.most_common(3)
    assert sum(fired) == sum(firings.values())

    report = VerificationReport(tenant=h.tenant, origin="-")
    verify_models(app_url, h.tenant, report)  # every move legal for the status it left
    assert report.ok, report.findings
    with psycopg.connect(app_url, autocommit=True) as conn:
        sign_checkpoint(conn, h.tenant, signer, kept)
    full = verify_log(app_url, h.tenant, verifier_of(signer), workers=1)
    assert full.ok, full.findings
    h.conn.close()
