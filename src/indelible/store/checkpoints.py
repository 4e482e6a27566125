"""Signed checkpoints (DESIGN section 6), stored append-only.

Signing lives in `signing.py`: it never signs two inconsistent checkpoints, and what it has
signed is kept outside the database it guards. Ed25519 signatures are deterministic, so two
processes signing the same size produce the same note and `ON CONFLICT DO NOTHING` keeps one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True)
class StoredCheckpoint:
    tenant: str
    size: int
    root_hash: bytes
    note: str
    key_id: bytes
    signed_at: datetime


_COLUMNS = "tenant_id, size, root_hash, note, key_id, signed_at"


def _row(row) -> StoredCheckpoint:
    tenant, size, root, note, key_id, at = row
    return StoredCheckpoint(tenant, size, bytes(root), note, bytes(key_id), at)


def latest_checkpoint(conn: psycopg.Connection, tenant: str) -> StoredCheckpoint | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE tenant_id = %s "
                       "ORDER BY size DESC LIMIT 1", (tenant,)).fetchone()
    return _row(row) if row else None


def checkpoint_at(conn: psycopg.Connection, tenant: str, size: int) -> StoredCheckpoint | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE tenant_id = %s AND size = %s",
                       (tenant, size)).fetchone()
    return _row(row) if row else None


def all_checkpoints(conn: psycopg.Connection, tenant: str) -> list[StoredCheckpoint]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE tenant_id = %s "
                        "ORDER BY size", (tenant,))
    return [_row(r) for r in rows]


def insert_checkpoint(conn: psycopg.Connection, tenant: str, size: int, root: bytes, note: str,
                      key_id: bytes) -> None:
    conn.execute("INSERT INTO checkpoints (tenant_id, size, root_hash, note, key_id) "
                 "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                 (tenant, size, root, note, key_id))

