"""Tenants: a log, a row, and an entry saying who created it and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from indelible.entry import Actor, NewEntry
from indelible.store.appender import append_batch
from indelible.store.errors import AppendRefusedError
from indelible.store.logs import check_tenant, create_log

OPERATOR = Actor("operator", "admin", "operator")  # for code acting on no one's behalf


@dataclass(frozen=True)
class TenantSummary:
    tenant: str
    name: str  # the display name
    created_at: datetime
    log_size: int  # entries
    checkpoint_size: int | None  # entries covered by the latest signed checkpoint; None: none yet


def create_tenant(conn: psycopg.Connection, tenant: str, *, base_origin: str,
                  name: str | None = None, by: Actor = OPERATOR) -> bool:
    """Create the tenant; False if it existed. Safe to re-run after a crash part-way."""
    check_tenant(tenant)
    with conn.transaction():
        created = create_log(conn, tenant, base_origin=base_origin)
        conn.execute("INSERT INTO tenants (tenant_id, name) VALUES (%s, %s) "
                     "ON CONFLICT (tenant_id) DO NOTHING", (tenant, name or tenant))
    # The idempotency key makes the entry appear exactly once, even if a previous run
    # committed the rows above and died before appending it.
    (outcome,) = append_batch(conn, tenant, [NewEntry(
        stream="tenant", type="tenant.created", actor=by, idempotency_key="tenant.created",
        data={"tenant": tenant, "name": name or tenant})])
    if isinstance(outcome, AppendRefusedError):
        raise outcome
    return created


def tenant_exists(conn: psycopg.Connection, tenant: str) -> bool:
    return conn.execute("SELECT 1 FROM tenants WHERE tenant_id = %s", (tenant,)).fetchone() is not None


def list_tenants(conn: psycopg.Connection) -> list[TenantSummary]:
    """Every tenant with its log size and the size of its latest signed checkpoint."""
    rows = conn.execute(
        "SELECT t.tenant_id, t.name, t.created_at, h.size, "
        "(SELECT max(c.size) FROM checkpoints c WHERE c.tenant_id = t.tenant_id) "
        "FROM tenants t JOIN log_heads h USING (tenant_id) ORDER BY t.tenant_id")
    return [TenantSummary(*row) for row in rows]
