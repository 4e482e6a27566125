"""engines.json is changed one process at a time (issue 8 review: a create racing a revoke)."""

from __future__ import annotations

import multiprocessing

from indelible import nats_auth


def _issue(store_dir, index):
    nats_auth.engine_credential(store_dir, tenant="acme", name=f"engine-{index}",
                                prefix="recon.discrepancies")


def test_credentials_issued_at_once_by_many_processes_are_all_kept(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_issue, args=(tmp_path, i)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(e.name for e in nats_auth.engines(tmp_path)) == [f"engine-{i}" for i in range(8)]
