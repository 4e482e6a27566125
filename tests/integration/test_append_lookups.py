"""The appender's lookups probe the index that matches them, even for a tenant the planner's
statistics do not know yet (every tenant of this suite: its name is random)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql as sql_text

from indelible.store import lookups
from indelible.store.appender import append_batch

from .ledger_helpers import command

pytestmark = pytest.mark.storage

_AS_PREPARED = {"%(t)s": "$1", "%(keys)s": "$2"}


def _plan(conn, tenant: str, sql: str, values: list[str], plans: str) -> str:
    """The plan PostgreSQL picks for `sql` with these parameters under `plans` (a SET)."""
    for placeholder, parameter in _AS_PREPARED.items():
        sql = sql.replace(placeholder, parameter)
    with conn.transaction():
        conn.execute(f"PREPARE lookup (text, text[]) AS {sql}")
        conn.execute(plans)
        rows = conn.execute(sql_text.SQL("EXPLAIN EXECUTE lookup ({}, {})").format(
            sql_text.Literal(tenant), sql_text.Literal(values))).fetchall()
        conn.execute("DEALLOCATE lookup")
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("sql, index", [
    (lookups.BY_KEY, "ledger_entries_tenant_id_idempotency_key_key"),
    (lookups.VERSIONS, "ledger_entries_tenant_id_stream_id_stream_version_key"),
])
def test_the_lookups_probe_the_index_matching_both_equalities(conn, owner_url, tenant, sql,
                                                              index):
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("ANALYZE ledger_entries")  # statistics from before this tenant's rows
    append_batch(conn, tenant, [command(i, key=f"k-{i}") for i in range(2000)])

    plan = _plan(conn, tenant, sql, ["k-1", "k-2"], lookups.GENERIC_PLANS)

    assert index in plan and "Filter" not in plan, plan
