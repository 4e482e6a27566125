"""Tenant isolation by row-level security: closed where the server allows it, checked on start.

The request role (`indelible_api`) is held to one tenant by fail-closed policies on every
tenant table. Those policies may only be made fail-closed once the service's own role
(`indelible_app`) can bypass them, since it binary-COPYs into `ledger_entries`; granting
BYPASSRLS takes a superuser (or, on PostgreSQL ≥ 16, a role that itself has BYPASSRLS and
ADMIN OPTION on `indelible_app`). A managed server's migrating role often has neither, and
migration 8 then left the policies open. Rather than run quietly with the second wall missing,
`close_gaps` retries on every migration (the grant may have been given since) and the service
refuses to start while `gaps` reports anything, unless the operator has accepted it.
"""

from __future__ import annotations

import psycopg

from indelible.store.schema import APP_ROLE, TENANT_TABLES, fail_closed_policies

ACCEPT_VARIABLE = "INDELIBLE_ACCEPT_WEAK_TENANT_ISOLATION"

GRANTS_NEEDED = (
    f"a superuser must run `ALTER ROLE {APP_ROLE} BYPASSRLS` (or migrate once as a superuser, "
    f"or as a role with BYPASSRLS and ADMIN OPTION on {APP_ROLE} on PostgreSQL 16 or later); "
    "the next start then closes the policies itself"
)


# The tenant filter as PostgreSQL prints it back in pg_policies.
FAIL_CLOSED = "(tenant_id = current_setting('indelible.tenant'::text, true))"


class WeakIsolationError(RuntimeError):
    """Row-level security does not hold the request role to one tenant, and nobody accepted it."""


def gaps(conn: psycopg.Connection) -> list[str]:
    """What is missing for fail-closed tenant isolation; empty when it holds."""
    found = []
    (bypass,) = conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = %s",
                             (APP_ROLE,)).fetchone() or (False,)
    if not bypass:
        found.append(f"role {APP_ROLE} lacks BYPASSRLS, so the policies cannot be fail-closed")
    # Permissive policies are OR-ed: one that lets more through (a stray `USING (true)`)
    # opens the table whatever the others say, so every one must be exactly ours.
    rows = conn.execute("""
        SELECT c.relname, c.relrowsecurity,
               coalesce(bool_and(p.qual = %s AND p.with_check = %s), false) AS closed
        FROM pg_class c
        LEFT JOIN pg_policies p ON p.schemaname = 'public' AND p.tablename = c.relname
                               AND p.permissive = 'PERMISSIVE'
        WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s)
        GROUP BY c.relname, c.relrowsecurity""",
        (FAIL_CLOSED, FAIL_CLOSED, list(TENANT_TABLES))).fetchall()
    for table, enabled, closed in sorted(rows):
        if not enabled:
            found.append(f"table {table} has no row-level security")
        elif not closed:
            found.append(f"table {table} has a policy that is not the fail-closed tenant "
                         "filter (rows of other tenants, or of none, may show)")
    return found


def close_gaps(conn: psycopg.Connection) -> None:
    """Grant BYPASSRLS and close the policies where this login may; leave the rest for `gaps`."""
    if not gaps(conn):
        return
    try:
        with conn.transaction():
            conn.execute(f"ALTER ROLE {APP_ROLE} BYPASSRLS")
    except psycopg.errors.InsufficientPrivilege:
        pass  # reported by `gaps`, with the grant that would fix it
    (bypass,) = conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = %s",
                             (APP_ROLE,)).fetchone()
    if bypass:
        with conn.transaction():
            conn.execute(fail_closed_policies())


def require_isolation(conninfo: str, *, accepted: bool) -> list[str]:
    """Refuse to serve without fail-closed isolation unless accepted; returns accepted gaps."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        found = gaps(conn)
    if found and not accepted:
        raise WeakIsolationError(
            "tenant isolation is incomplete: " + "; ".join(found) + ". To fix it, "
            + GRANTS_NEEDED + f". To run anyway, set {ACCEPT_VARIABLE}=true.")
    return found
