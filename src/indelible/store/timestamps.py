"""RFC 3161 timestamp tokens of checkpoints, stored append-only beside them.

The table has fail-closed row-level security: every function here works within one tenant,
and sets it for the transaction, so it works the same for the service's role with or
without BYPASSRLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg


def _scope(conn: psycopg.Connection, tenant: str) -> None:
    conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))


def tokens(conn: psycopg.Connection, tenant: str, sizes: list[int]) -> dict[int, bytes]:
    """The tokens stored for those checkpoint sizes (sizes without one are absent)."""
    with conn.transaction():
        _scope(conn, tenant)
        rows = conn.execute("SELECT size, token FROM checkpoint_timestamps WHERE tenant_id = %s "
                            "AND size = ANY(%s)", (tenant, sizes)).fetchall()
    return {size: bytes(token) for size, token in rows}


def token(conn: psycopg.Connection, tenant: str, size: int) -> bytes | None:
    return tokens(conn, tenant, [size]).get(size)


def untimestamped(conn: psycopg.Connection, tenant: str, limit: int) -> list[tuple[int, str]]:
    """(size, signed note) of checkpoints that have no token yet, newest first: a new
    checkpoint is dated at once, older ones are caught up after a TSA outage."""
    with conn.transaction():
        _scope(conn, tenant)
        return conn.execute(
            "SELECT c.size, c.note FROM checkpoints c WHERE c.tenant_id = %s AND NOT EXISTS "
            "(SELECT 1 FROM checkpoint_timestamps t WHERE t.tenant_id = c.tenant_id "
            "AND t.size = c.size) ORDER BY c.size DESC LIMIT %s", (tenant, limit)).fetchall()


def insert_token(conn: psycopg.Connection, tenant: str, size: int, token: bytes, tsa_url: str,
                 gen_time: datetime) -> None:
    with conn.transaction():
        _scope(conn, tenant)
        conn.execute("INSERT INTO checkpoint_timestamps (tenant_id, size, token, tsa_url, "
                     "gen_time) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (tenant, size, token, tsa_url, gen_time))


@dataclass(frozen=True)
class TimestampStatus:
    latest_checkpoint: int | None  # size
    latest_timestamped: int | None  # size of the newest checkpoint with a token
    latest_gen_time: datetime | None
    missing: int  # checkpoints without a token

    def to_json(self) -> dict:
        return {"latest_checkpoint_size": self.latest_checkpoint,
                "latest_timestamped_size": self.latest_timestamped,
                "latest_timestamp": self.latest_gen_time.isoformat() if self.latest_gen_time
                else None, "checkpoints_without_token": self.missing}


def status(conn: psycopg.Connection, tenant: str) -> TimestampStatus:
    with conn.transaction():
        _scope(conn, tenant)
        latest, missing = conn.execute(
            "SELECT max(c.size), count(*) FILTER (WHERE t.size IS NULL) FROM checkpoints c "
            "LEFT JOIN checkpoint_timestamps t ON (t.tenant_id, t.size) = (c.tenant_id, c.size) "
            "WHERE c.tenant_id = %s", (tenant,)).fetchone()
        row = conn.execute("SELECT size, gen_time FROM checkpoint_timestamps WHERE tenant_id = %s "
                           "ORDER BY size DESC LIMIT 1", (tenant,)).fetchone()
    return TimestampStatus(latest, row[0] if row else None, row[1] if row else None, missing)


def all_tokens(conn: psycopg.Connection, tenant: str) -> list[tuple[int, str, bytes]]:
    """(size, signed note, token) of every timestamped checkpoint, for verification."""
    with conn.transaction():
        _scope(conn, tenant)
        return [(size, note, bytes(tok)) for size, note, tok in conn.execute(
            "SELECT c.size, c.note, t.token FROM checkpoint_timestamps t JOIN checkpoints c "
            "ON (c.tenant_id, c.size) = (t.tenant_id, t.size) WHERE t.tenant_id = %s "
            "ORDER BY t.size", (tenant,))]
