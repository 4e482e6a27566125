"""Evidence files, stored content-addressed by SHA-256 per tenant (append-only)."""

from __future__ import annotations

import hashlib

import psycopg

MAX_FILE = 25 * 1024 * 1024  # bytes per file


def store_file(conn: psycopg.Connection, tenant: str, content: bytes) -> str:
    """Store the bytes (once per tenant and hash) and return their SHA-256 in hex."""
    digest = hashlib.sha256(content).digest()
    conn.execute("INSERT INTO evidence_files (tenant_id, sha256, size, content) "
                 "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                 (tenant, digest, len(content), content))
    return digest.hex()


def load_file(conn: psycopg.Connection, tenant: str, sha256_hex: str) -> bytes | None:
    row = conn.execute("SELECT content FROM evidence_files WHERE tenant_id = %s AND sha256 = %s",
                       (tenant, bytes.fromhex(sha256_hex))).fetchone()
    return bytes(row[0]) if row else None
