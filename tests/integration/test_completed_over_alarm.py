"""No `verification.completed` over a log the incremental verifier saw broken.

A superuser deletes the unsigned tail the follower already read and makes log_heads, the
Merkle nodes and the checkpoints agree: the recheck names the missing entries, but the
next full run finds a consistent (shorter) log. Recording it as checked would put a
"verified" entry in the trail on top of the forged history.
"""

from __future__ import annotations

import time

import pytest

from indelible.monitor.follow import TenantFollower
from indelible.monitor.service import COMPLETED, ContinuousVerification, VerificationConfig
from indelible.monitor.worker import run_full
from indelible.store.appender import append_batch
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.logs import read_head
from indelible.store.signing import sign_checkpoint

from .ledger_helpers import command, superuser, truncate_log, verifier_of

pytestmark = pytest.mark.storage


def test_a_full_run_after_a_chain_alarm_records_no_completed_entry(
        app_url, owner_url, conn, tenant, signer, kept, tmp_path):
    from indelible.bootstrap import projections

    append_batch(conn, tenant, [command(i) for i in range(20)])
    sign_checkpoint(conn, tenant, signer, kept)
    append_batch(conn, tenant, [command(i) for i in range(20, 30)])
    follower = TenantFollower(tenant, read_head(conn, tenant).origin, [verifier_of(signer)])
    assert follower.advance(conn) == [] and follower.next_seq == 30
    with superuser(owner_url) as rogue:
        truncate_log(rogue, conn, tenant, 20)
    findings = follower.recheck(conn)
    assert {f.check for f in findings} == {"seq"}
    appender = GroupCommitAppender(conninfo=app_url, model=projections())
    try:
        service = ContinuousVerification(VerificationConfig(
            app_url, signer.verifier_key_text(), tmp_path / "alarms.jsonl"), appender=appender)
        for finding in findings:
            service._handle("finding", finding)
        run = run_full(app_url, tenant, [verifier_of(signer)])
        assert run["findings"] == []  # the forged log is consistent in itself
        service._handle("completed", run)
        time.sleep(1.0)  # appends are submitted, not awaited
    finally:
        appender.close()
    (count,) = conn.execute("SELECT count(*) FROM ledger_entries WHERE tenant_id = %s AND "
                            "type = %s", (tenant, COMPLETED)).fetchone()
    assert count == 0
