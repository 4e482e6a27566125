"""The web console's sign-in sessions (table `console_sessions`, migration 20).

The request role reaches the table only through three functions the migration defines, which
hold the timeouts: a session is opened with its absolute lifetime, resumed only while neither
the idle nor the absolute timeout has passed and it was not revoked, and revoked at sign-out.
The cookie's value is never stored, only its SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg


@dataclass(frozen=True)
class StoredSession:
    tenant: str
    method: str  # how the person signed in, e.g. "api_key"
    subject: str  # what that method re-checks at each request
    csrf_token: str
    expires_at: datetime  # the absolute timeout


def session_hash(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode("utf-8")).digest()


def open_session(conn: psycopg.Connection, cookie: str, *, tenant: str, method: str,
                 subject: str, csrf_token: str, lifetime: timedelta) -> datetime:
    """Record a new session; returns when it ends at the latest."""
    (expires,) = conn.execute("SELECT indelible_console_session_open(%s, %s, %s, %s, %s, %s)",
                              (session_hash(cookie), tenant, method, subject, csrf_token,
                               lifetime)).fetchone()
    return expires


def resume_session(conn: psycopg.Connection, cookie: str, *,
                   idle: timedelta) -> StoredSession | None:
    """The live session this cookie names, or None (unknown, idle too long, expired, revoked)."""
    row = conn.execute("SELECT * FROM indelible_console_session_resume(%s, %s)",
                       (session_hash(cookie), idle)).fetchone()
    return StoredSession(*row) if row else None


def revoke_session(conn: psycopg.Connection, tenant: str, cookie: str) -> bool:
    """End the tenant's session now; False when it was unknown or already ended."""
    row = conn.execute("SELECT indelible_console_session_revoke(%s, %s)",
                       (tenant, session_hash(cookie))).fetchone()
    return bool(row and row[0])
