"""The recorded verification runs the console's auditor page lists (store/verification_runs.py):
newest first, read from the entries themselves, only the tenant's own."""

from __future__ import annotations

import pytest

from indelible.entry import Actor, NewEntry
from indelible.store.appender import append_batch
from indelible.store.verification_runs import STREAM, latest

pytestmark = pytest.mark.storage
VERIFIER = Actor("indelible-verifier", "system", "system")


def _run(size: int, result: str = "passed") -> NewEntry:
    return NewEntry(STREAM, "verification.completed", VERIFIER, {
        "kind": "full", "from_seq": 0, "to_seq": size - 1, "size": size, "root": "cm9vdA==",
        "signed_size": size, "duration_ms": 12, "result": result, "entries_checked": size,
        "findings": 0})


def test_runs_are_listed_newest_first_with_their_seq(conn, tenant):
    append_batch(conn, tenant, [_run(1)])
    append_batch(conn, tenant, [_run(2, "passed"), _run(3, "unsigned")])
    runs = latest(conn, tenant, limit=2)
    assert [r.data["size"] for r in runs] == [3, 2]
    assert [r.seq for r in runs] == [2, 1]
    assert runs[0].type == "verification.completed" and runs[0].at.endswith("Z")


def test_another_tenants_runs_are_not_listed(conn, tenant):
    from tests.conftest import BASE_ORIGIN
    from indelible.store.logs import create_log

    other = f"{tenant}-other"
    create_log(conn, other, base_origin=BASE_ORIGIN)
    append_batch(conn, other, [_run(1)])
    assert latest(conn, tenant) == []
