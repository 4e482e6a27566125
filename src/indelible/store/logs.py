"""Tenant logs: creating one and reading its head."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import psycopg

from indelible.proofs import CompactRange
from indelible.store.errors import UnknownLogError

# The one definition of a tenant name: the schema's CHECK, HTTP paths and this check use it.
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_TENANT = re.compile(TENANT_PATTERN)


class InvalidTenantError(ValueError):
    pass


@dataclass(frozen=True)
class LogHead:
    tenant: str
    origin: str
    size: int
    last_leaf_hash: bytes | None
    frontier: CompactRange


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise InvalidTenantError(
            f"tenant {tenant!r} is not a valid slug: lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit, at most 63 characters")
    return tenant


def origin_for(base_origin: str, tenant: str) -> str:
    return f"{base_origin}/{tenant}"


def create_log(conn: psycopg.Connection, tenant: str, *, base_origin: str) -> bool:
    """Create the tenant's empty log; False if it already existed."""
    check_tenant(tenant)
    cur = conn.execute(
        "INSERT INTO log_heads (tenant_id, origin, frontier) VALUES (%s, %s, %s) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        (tenant, origin_for(base_origin, tenant), CompactRange().to_bytes()))
    return cur.rowcount == 1


HEAD_SQL = "SELECT origin, size, last_leaf_hash, frontier FROM log_heads WHERE tenant_id = %s"


def read_head(conn: psycopg.Connection, tenant: str, *, lock: bool = False) -> LogHead:
    return head_of(tenant, conn.execute(HEAD_SQL + (" FOR UPDATE" if lock else ""),
                                        (tenant,)).fetchone())


def head_of(tenant: str, row: tuple | None) -> LogHead:
    """The LogHead of a row HEAD_SQL selected (the appender sends it in a pipeline)."""
    if row is None:
        raise UnknownLogError(tenant)
    origin, size, last, frontier = row
    return LogHead(tenant, origin, size, bytes(last) if last else None,
                   CompactRange.from_bytes(bytes(frontier)))


@dataclass(frozen=True)
class LogEnd:
    size: int  # entries in the log
    latest_at: datetime | None  # when the latest entry was recorded; None: the log is empty


def log_end(conn: psycopg.Connection, tenant: str) -> LogEnd:
    """How far the log reaches, in seqs and in time (what `as_of` may ask about)."""
    row = conn.execute("SELECT seq, recorded_at FROM ledger_entries WHERE tenant_id = %s "
                       "ORDER BY seq DESC LIMIT 1", (tenant,)).fetchone()
    return LogEnd(0, None) if row is None else LogEnd(row[0] + 1, row[1])
