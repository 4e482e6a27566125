"""Every statement the package sends names its tenant, so the schema can run on Citus
(docs/scale-out.md): a statement on a tenant table that does not pin `tenant_id` fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from indelible.store.schema import MIGRATIONS
from tests.unit.tenant_sql import REFERENCE_TABLES, check_statement, scan, tenant_tables

SRC = Path(__file__).resolve().parents[2] / "src" / "indelible"

# Statements that deliberately span tenants, each with why that is right. None is on the
# request path except the token lookup, which runs before the tenant is known. Keyed by
# (module path, a snippet of the statement); a stale entry fails the suite too.
ALLOWED: dict[tuple[str, str], str] = {
    ("indelible/store/checkpointer.py", "FROM log_heads h"):
        "background scan for logs with unsigned entries, every 0.25 s: on Citus a multi-shard "
        "read of one small row per tenant",
    ("indelible/store/tenants.py", "FROM tenants t JOIN log_heads h"):
        "`indelible tenant list`, an operator listing of every tenant (multi-shard read)",
    ("indelible/store/discrepancies.py", "FROM discrepancies WHERE __fmt__"):
        "the WHERE list is built at run time by _where(), whose first term is always "
        "`tenant_id = %s` (test_discrepancy_filters_start_with_the_tenant checks it)",
    ("indelible/store/reports.py", "FROM report_jobs WHERE status IN"):
        "the report worker claims the oldest queued job of any tenant (FOR UPDATE SKIP LOCKED; "
        "the tenant filter is spliced in at run time when one is given): background, multi-shard",
    ("indelible/store/reports.py", "WHERE type = 'report.generated'"):
        "verifying a report file by its hash when the operator names no tenant; with a tenant "
        "`AND tenant_id = %s` is appended at run time",
    ("indelible/store/reports.py", "FROM report_schedules WHERE NOT cancelled"):
        "the scheduler's scan for due schedules of every tenant (background, multi-shard)",
    ("indelible/monitor/worker.py", "SELECT tenant_id, origin, size FROM log_heads"):
        "the continuous verifier's look for logs that grew, every 0.25 s (background, "
        "multi-shard; each log is then read by tenant_id)",
    ("indelible/monitor/worker.py", "SELECT tenant_id FROM log_heads"):
        "the full-verification scheduler's list of tenants (background, multi-shard)",
    ("indelible/store/signing_health.py", "FROM log_heads h"):
        "checkpoint age of every tenant for a Prometheus scrape (background, multi-shard)",
    ("indelible/bench/verifier_ab.py", "SELECT tenant_id, size FROM log_heads"):
        "the benchmark's sample of every log's head, to measure the verifier's lag",
    ("indelible/store/outbox.py", "UPDATE outbox o SET state = 'sending'"):
        "an outbox dispatcher claims due events of any tenant (FOR UPDATE SKIP LOCKED, a "
        "lease): background, multi-shard, like the report worker's claim",
    ("indelible/store/outbox.py", "FROM outbox WHERE __fmt__"):
        "`indelible outbox list` without --tenant lists every tenant's events; with a tenant "
        "(and always over HTTP) `tenant_id = %s` is the first term spliced in at run time",
    ("indelible/store/outbox.py", "FROM outbox __fmt__ GROUP BY"):
        "outbox counts by state: every tenant's for the operator's list, else `WHERE "
        "tenant_id = %s` spliced in at run time",
    ("indelible/store/outbox.py", "FROM outbox_disabled __fmt__"):
        "integrations a 410 disabled: every tenant's for the operator's list, else `WHERE "
        "tenant_id = %s` spliced in at run time",
    ("indelible/store/outbox.py", "FROM outbox WHERE id = $1"):
        "`indelible outbox show ID`: an operator looks one event up by the id the list printed "
        "(one multi-shard index probe)",
    ("indelible/timestamping/worker.py", "FROM log_heads ORDER BY tenant_id"):
        "the timestamper's background look for tenants whose checkpoints lack an RFC 3161 "
        "token, once a second: one small row per tenant (multi-shard); each tenant's "
        "checkpoints and tokens are then read with its tenant_id",
    ("indelible/store/cosignatures.py", "FROM log_heads h"):
        "a witness feeder's background look for every tenant's latest checkpoint that witness "
        "has not cosigned (one index probe per tenant, multi-shard); each tenant's rows are "
        "joined on its tenant_id",
    ("indelible/store/queues.py", "FROM outbox GROUP BY"):
        "/metrics' outbox queue length per tenant at scrape time (background, multi-shard)",
    ("indelible/store/queues.py", "FROM report_jobs WHERE status IN ('queued', 'running') GROUP"):
        "/metrics' report queue length per tenant at scrape time (background, multi-shard)",
    ("migration 11 (indelible_authenticate)", "token_hash = hash"):
        "finding a bearer token's key before the tenant is known: one multi-shard index probe "
        "on Citus (docs/scale-out.md, 'Authentication'); its join to the ledger is on tenant_id",
}

TENANT = tenant_tables(MIGRATIONS) - REFERENCE_TABLES


def test_every_statement_on_a_tenant_table_filters_by_tenant_id():
    findings, _ = scan(SRC, MIGRATIONS, ALLOWED)
    assert not findings, "statements that do not pin tenant_id:\n" + "\n".join(map(str, findings))


def test_every_allowance_is_still_needed():
    _, used = scan(SRC, MIGRATIONS, ALLOWED)
    assert set(ALLOWED) == used, f"stale allowances: {set(ALLOWED) - used}"


def test_the_scan_finds_the_packages_sql():
    """The check must see the appender's and the read models' statements, or it proves nothing."""
    from tests.unit.tenant_sql import sql_in_source

    found = [sql for path in SRC.rglob("*.py") for _, sql in sql_in_source(path, SRC.parent)]
    assert len(found) > 60
    assert any("COPY ledger_entries (tenant_id" in s for s in found)
    assert any("FROM log_heads" in s and "tenant_id = $1" in s for s in found)


def test_the_tenant_tables_come_from_the_migrations():
    assert {"ledger_entries", "log_heads", "merkle_nodes", "checkpoints", "api_keys",
            "discrepancies", "request_keys", "evidence_files"} <= TENANT


def test_discrepancy_filters_start_with_the_tenant():
    from indelible.store.discrepancies import Filters, _where

    where, args = _where("acme", Filters(status="open", ref_contains="x"))
    assert where[0] == "tenant_id = %s" and args[0] == "acme"


@pytest.mark.parametrize("sql, problem", [
    ("SELECT entry FROM ledger_entries WHERE seq = $1", "'ledger_entries'"),
    ("SELECT entry FROM ledger_entries WHERE tenant_id = $1 OR seq = 1", "'ledger_entries'"),
    ("SELECT entry FROM ledger_entries WHERE tenant_id = ANY($1)", "'ledger_entries'"),
    ("SELECT e.entry FROM ledger_entries e JOIN api_keys k ON k.key_id = e.event_id "
     "WHERE e.tenant_id = $1", "'k'"),
    ("SELECT 1 FROM ledger_entries WHERE (tenant_id, seq) >= ($1, 0)", "'ledger_entries'"),
    ("SELECT 1 FROM log_heads WHERE tenant_id = $1 AND EXISTS "
     "(SELECT 1 FROM checkpoints c WHERE c.size = 3)", "'c'"),
    ("UPDATE discrepancies SET status = 'open' WHERE id = $1", "updates"),
    ("DELETE FROM api_keys WHERE key_id = $1", "deletes from"),
    ("INSERT INTO merkle_nodes (level, idx, hash) VALUES ($1, $2, $3)", "inserts into"),
    ("COPY ledger_entries (seq, entry) FROM STDIN", "copies"),
    ("SELECT FROM WHERE", "cannot be parsed"),
])
def test_a_statement_that_does_not_name_its_tenant_is_found(sql, problem):
    problems = check_statement(sql, TENANT)
    assert problems and any(problem in p for p in problems), problems


@pytest.mark.parametrize("sql", [
    "SELECT entry FROM ledger_entries WHERE tenant_id = $1 AND seq = $2",
    "SELECT e.entry FROM ledger_entries e JOIN api_keys k ON k.tenant_id = e.tenant_id "
    "WHERE e.tenant_id = $1::text",
    "SELECT r.seq FROM request_keys r JOIN ledger_entries e "
    "ON (e.tenant_id, e.seq) = (r.tenant_id, r.seq) WHERE r.tenant_id = $1",
    "SELECT h.size FROM log_heads h WHERE h.tenant_id = $1 AND EXISTS "
    "(SELECT 1 FROM checkpoints c WHERE c.tenant_id = h.tenant_id)",
    "INSERT INTO merkle_nodes (tenant_id, level, idx, hash) VALUES ($1, $2, $3, $4)",
    "SELECT name FROM tenants",
])
def test_a_statement_pinned_to_its_tenant_passes(sql):
    assert check_statement(sql, TENANT) == []
