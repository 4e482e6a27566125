"""A full run's verdict is taken from all its findings, not the few it sends on.

A superuser who also scribbles over many indexed columns (derived data, sorted first by
seq) must not push the one finding that breaks the chain out of the list the service reads,
and so get a `verification.completed` recorded over a log that does not verify.
"""

from __future__ import annotations

import pytest

from indelible.monitor.follow import Finding
from indelible.monitor.worker import MAX_FINDINGS, run_full
from indelible.store.appender import append_batch
from indelible.store.signing import sign_checkpoint

from .ledger_helpers import command, superuser, verifier_of

pytestmark = pytest.mark.storage


def test_a_chain_break_behind_many_derived_findings_is_still_reported(
        app_url, owner_url, conn, tenant, signer, kept):
    for start in (0, 300):
        append_batch(conn, tenant, [command(i) for i in range(start, start + 300)])
        sign_checkpoint(conn, tenant, signer, kept)
    edited = "convert_to(replace(convert_from(entry, 'UTF8'), '\"420.25\"', '\"4.25\"'), 'UTF8')"
    with superuser(owner_url) as rogue:
        rogue.execute(f"UPDATE ledger_entries SET entry = {edited}, leaf_hash = "
                      f"sha256('\\x00'::bytea || {edited}) WHERE tenant_id = %s AND seq = 420",
                      (tenant,))
        # Many harmless-looking findings that sort before seq 420.
        rogue.execute("UPDATE ledger_entries SET type = 'x' || type WHERE tenant_id = %s "
                      "AND seq < 100", (tenant,))
    run = run_full(app_url, tenant, [verifier_of(signer)])
    assert run["finding_count"] > MAX_FINDINGS
    assert len(run["findings"]) <= MAX_FINDINGS
    checks = {f.check for f in run["findings"]}
    assert checks & {"prev", "leaf_hash", "checkpoint"}, checks
    assert all(isinstance(f, Finding) for f in run["findings"])
