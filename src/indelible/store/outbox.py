"""The outbox: the outbound integrations' delivery queue (operational, not evidence).

Rows are inserted by the append hook in the transaction of the entry that causes them, so an
event exists exactly when its entry committed. Dispatchers claim due rows with
`FOR UPDATE SKIP LOCKED` (any number of them, in any processes, never the same row twice at
once) and hold a lease: a dispatcher killed mid-delivery leaves a row whose lease runs out,
and the next claim takes it again. A row's `attempts` at the claim is the fencing token the
outcome's update is conditioned on, so a late answer from an expired lease cannot undo a
newer outcome. Every outcome is also a ledger entry (outbound/outcomes.py), written in the
same transaction as the row's update.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

CHANNEL = "indelible_outbox"  # NOTIFY on commit of new rows: dispatchers wake at once
STATES = ("pending", "sending", "delivered", "parked")


@dataclass(frozen=True)
class Queued:
    tenant: str
    integration: str
    event: str
    source_seq: int
    stream: str
    webhook_id: str


@dataclass(frozen=True)
class Claimed:
    id: int
    tenant: str
    integration: str
    event: str
    source_seq: int
    stream: str
    webhook_id: str
    round: int
    attempt: int  # this attempt's number in its round (1-based): the fencing token
    body: bytes | None


def enqueue(conn: psycopg.Connection, rows: list[Queued]) -> None:
    """Queue events (inside the appending transaction); one already queued is left as is.
    One round trip: the rows as arrays, and the NOTIFY (delivered at commit, never for a
    rollback) in the same statement, since it runs while the log head is locked."""
    if not rows:
        return
    conn.execute(
        "WITH queued AS (INSERT INTO outbox (tenant_id, integration, event, source_seq, "
        "  stream_id, webhook_id) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], "
        "  %s::bigint[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING) "
        f"SELECT pg_notify('{CHANNEL}', '')",
        [list(column) for column in zip(*((r.tenant, r.integration, r.event, r.source_seq,
                                           r.stream, r.webhook_id) for r in rows))])


def claim(conn: psycopg.Connection, integration: str, limit: int, lease: float) -> list[Claimed]:
    """Take up to `limit` due rows of `integration` for `lease` seconds: pending ones whose
    time has come, and sending ones whose sender's lease ran out. Tenants for whom the
    integration is disabled are skipped."""
    rows = conn.execute(
        """UPDATE outbox o SET state = 'sending', attempts = o.attempts + 1,
               lease_until = now() + make_interval(secs => %(lease)s), updated_at = now()
           WHERE o.id IN (
               SELECT id FROM outbox q
               WHERE q.integration = %(i)s AND q.state IN ('pending', 'sending')
                 AND q.next_attempt_at <= now()
                 AND (q.state = 'pending' OR q.lease_until < now())
                 AND NOT EXISTS (SELECT 1 FROM outbox_disabled d
                                 WHERE d.tenant_id = q.tenant_id AND d.integration = q.integration)
               ORDER BY q.next_attempt_at, q.id LIMIT %(n)s FOR UPDATE SKIP LOCKED)
           RETURNING o.id, o.tenant_id, o.integration, o.event, o.source_seq, o.stream_id,
                     o.webhook_id, o.round, o.attempts, o.body""",
        {"i": integration, "n": limit, "lease": lease}).fetchall()
    return [Claimed(*r[:9], bytes(r[9]) if r[9] is not None else None) for r in rows]


def store_body(conn: psycopg.Connection, tenant: str, row_id: int, body: bytes) -> None:
    """Keep the body sent (for operators; each attempt renders it from the ledger again)."""
    conn.execute("UPDATE outbox SET body = %s WHERE tenant_id = %s AND id = %s AND body IS NULL",
                 (body, tenant, row_id))


def delivered(conn: psycopg.Connection, tenant: str, row_id: int, status: int) -> None:
    conn.execute("UPDATE outbox SET state = 'delivered', delivered_at = now(), last_status = %s, "
                 "last_error = NULL, lease_until = NULL, updated_at = now() "
                 "WHERE tenant_id = %s AND id = %s", (status, tenant, row_id))


def retry_later(conn: psycopg.Connection, tenant: str, row_id: int, attempt: int, delay: float,
                status: int | None, error: str) -> None:
    conn.execute("UPDATE outbox SET state = 'pending', lease_until = NULL, updated_at = now(), "
                 "next_attempt_at = now() + make_interval(secs => %s), last_status = %s, "
                 "last_error = %s WHERE tenant_id = %s AND id = %s AND state = 'sending' "
                 "AND attempts = %s", (delay, status, error, tenant, row_id, attempt))


def park(conn: psycopg.Connection, tenant: str, row_id: int, attempt: int, status: int | None,
         error: str) -> None:
    conn.execute("UPDATE outbox SET state = 'parked', lease_until = NULL, updated_at = now(), "
                 "last_status = %s, last_error = %s WHERE tenant_id = %s AND id = %s "
                 "AND state = 'sending' AND attempts = %s", (status, error, tenant, row_id, attempt))


def hold(conn: psycopg.Connection, row_id: int, attempt: int, tenant: str, integration: str,
         seq: int, status: int, error: str) -> None:
    """410: disable the integration for the tenant; the event waits, its attempt not counted."""
    conn.execute("INSERT INTO outbox_disabled (tenant_id, integration, seq, reason) "
                 "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                 (tenant, integration, seq, error))
    conn.execute("UPDATE outbox SET state = 'pending', attempts = attempts - 1, lease_until = NULL, "
                 "next_attempt_at = now(), last_status = %s, last_error = %s, updated_at = now() "
                 "WHERE tenant_id = %s AND id = %s AND state = 'sending' AND attempts = %s",
                 (status, error, tenant, row_id, attempt))


def release(conn: psycopg.Connection, tenant: str, row_id: int, attempt: int) -> None:
    """Give a claimed row back untried (the dispatcher is stopping)."""
    conn.execute("UPDATE outbox SET state = 'pending', attempts = attempts - 1, lease_until = NULL "
                 "WHERE tenant_id = %s AND id = %s AND state = 'sending' AND attempts = %s",
                 (tenant, row_id, attempt))


def disabled(conn: psycopg.Connection, tenant: str | None = None) -> list[dict]:
    where, args = ("WHERE tenant_id = %s", (tenant,)) if tenant else ("", ())
    rows = conn.execute("SELECT tenant_id, integration, seq, reason, disabled_at FROM "
                        f"outbox_disabled {where} ORDER BY tenant_id, integration", args)
    return [dict(zip(("tenant", "integration", "seq", "reason", "disabled_at"), r)) for r in rows]


def enable(conn: psycopg.Connection, tenant: str, integration: str) -> bool:
    """Lift a 410's disabling; False if it was not disabled."""
    return conn.execute("DELETE FROM outbox_disabled WHERE tenant_id = %s AND integration = %s",
                        (tenant, integration)).rowcount > 0


def requeue(conn: psycopg.Connection, tenant: str, ids: Iterable[int] | None = None,
            integration: str | None = None) -> list[str]:
    """Parked rows (the given ones, or all of the tenant's) start a new round now; returns
    their webhook ids."""
    rows = conn.execute(
        "UPDATE outbox SET state = 'pending', round = round + 1, attempts = 0, "
        "next_attempt_at = now(), updated_at = now() WHERE tenant_id = %(t)s "
        "AND state = 'parked' AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s)) "
        "AND (%(i)s::text IS NULL OR integration = %(i)s) RETURNING webhook_id",
        {"t": tenant, "ids": list(ids) if ids is not None else None, "i": integration}).fetchall()
    if rows:
        conn.execute(f"NOTIFY {CHANNEL}")
    return [r[0] for r in rows]


_COLUMNS = ("id", "tenant_id", "integration", "event", "source_seq", "stream_id", "webhook_id",
            "state", "round", "attempts", "next_attempt_at", "last_status", "last_error",
            "created_at", "updated_at", "delivered_at")


@dataclass(frozen=True)
class Row:
    id: int
    tenant: str
    integration: str
    event: str
    source_seq: int
    stream: str
    webhook_id: str
    state: str
    round: int
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


def rows(conn: psycopg.Connection, tenant: str | None = None, *, state: str | None = None,
         integration: str | None = None, limit: int = 100, before_id: int | None = None) -> list[Row]:
    """Newest first."""
    where, args = ["true"], []
    for column, value in (("tenant_id", tenant), ("state", state), ("integration", integration)):
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    if before_id is not None:
        where.append("id < %s")
        args.append(before_id)
    found = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM outbox WHERE {' AND '.join(where)} "
                         "ORDER BY id DESC LIMIT %s", (*args, limit))
    return [Row(*r) for r in found]


def get(conn: psycopg.Connection, row_id: int) -> tuple[Row, bytes | None] | None:
    r = conn.execute(f"SELECT {', '.join(_COLUMNS)}, body FROM outbox WHERE id = %s",
                     (row_id,)).fetchone()
    return (Row(*r[:-1]), bytes(r[-1]) if r[-1] is not None else None) if r else None


def counts(conn: psycopg.Connection, tenant: str | None = None) -> dict[str, dict[str, int]]:
    """{integration: {state: count}} with every state present."""
    where, args = ("WHERE tenant_id = %s", (tenant,)) if tenant else ("", ())
    found = conn.execute(f"SELECT integration, state, count(*) FROM outbox {where} "
                         "GROUP BY integration, state", args).fetchall()
    result: dict[str, dict[str, int]] = {}
    for integration, state, n in found:
        result.setdefault(integration, dict.fromkeys(STATES, 0))[state] = n
    return result


def sources(conn: psycopg.Connection, tenant: str, types: Iterable[str], from_seq: int = 0
            ) -> Iterable[tuple[int, UUID, str, str, bytes]]:
    """(seq, event id, stream, type, entry) of the tenant's entries of `types`, in seq order
    (what a backfill scans)."""
    with conn.cursor(name="outbox_backfill") as cur:
        cur.execute("SELECT seq, event_id, stream_id, type, entry FROM ledger_entries "
                    "WHERE tenant_id = %s AND type = ANY(%s) AND seq >= %s ORDER BY seq",
                    (tenant, list(types), from_seq))
        while batch := cur.fetchmany(1000):
            for seq, event_id, stream, kind, entry in batch:
                yield seq, event_id, stream, kind, bytes(entry)
