"""The appender's lookups under the lock: they probe the index that matches them, even for a
tenant the planner's statistics do not know yet (every tenant of this suite: its name is
random), and a key no row can hold fails only its own command, never its batch."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest
from psycopg import sql as sql_text

from indelible.store import lookups
from indelible.store.appender import append_batch
from indelible.store.errors import InvalidEntryError
from indelible.store.group_commit import GroupCommitAppender

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


def test_a_refused_command_whose_key_cannot_be_stored_does_not_fail_its_batch(conn, tenant):
    bad = replace(command(1, key="nul\x00key"), data={"amount": 1.5})  # a float: refused

    good, refused = append_batch(conn, tenant, [command(0, key="fine"), bad])

    assert good.seq == 0
    assert isinstance(refused, InvalidEntryError) and "$.data.amount" in str(refused)


def test_a_key_the_database_cannot_store_is_refused_alone_by_the_group_commit(app_url, tenant):
    appender = GroupCommitAppender(conninfo=app_url)
    try:
        good, bad = appender.submit_many(tenant, [command(0, key="fine"),
                                                  command(1, key="nul\x00key")])
        assert good.result(30).seq == 0
        with pytest.raises(InvalidEntryError, match="the database refused this entry"):
            bad.result(30)
    finally:
        appender.close()
