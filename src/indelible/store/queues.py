"""How long the service's work queues are, per tenant, for /metrics: the outbox (issue 12)
and the report jobs (issue 13). Both are operational tables, read at scrape time."""

from __future__ import annotations

import psycopg


def outbox_counts(conn: psycopg.Connection) -> list[tuple[str, str, str, int]]:
    """(tenant, integration, state, count) of every outbox row."""
    return conn.execute("SELECT tenant_id, integration, state, count(*) FROM outbox "
                        "GROUP BY tenant_id, integration, state").fetchall()


def report_job_counts(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """(tenant, status, count) of the report jobs not yet done."""
    return conn.execute("SELECT tenant_id, status, count(*) FROM report_jobs "
                        "WHERE status IN ('queued', 'running') "
                        "GROUP BY tenant_id, status").fetchall()
