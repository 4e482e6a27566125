"""Raw PostgreSQL doing the least work the ledger's job needs: the yardsticks.

Writes go to a scratch table `bench.raw_entries`, created as `LIKE ledger_entries INCLUDING
ALL`, so it has the same columns, types, CHECK constraints, primary key and the three unique
indexes: PostgreSQL pays the same per-row index maintenance as for the ledger, and nothing
else (no hashing, no Merkle nodes, no log-head lock, no validation). It is dropped and
recreated every run: it is not evidence. Reads run against the ledger's own rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psycopg
from psycopg import sql

from indelible.store.copy_rows import EntryRows

SCHEMA = "bench"
TABLE = "raw_entries"
COLUMNS = ("tenant_id, seq, entry, leaf_hash, event_id, stream_id, stream_version, type, "
           "recorded_at, actor_id, idempotency_key")
_COPY_IN = f"COPY {SCHEMA}.{TABLE} ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
# The columns the verifier's scan selects (verifier/scan.py), so the server does the same
# work per row for the baseline as for verification.
_SCAN_COLUMNS = """seq, entry, leaf_hash, event_id, stream_id, stream_version, type, recorded_at,
       actor_id, idempotency_key"""


def recreate_scratch_table(owner_url: str) -> None:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
        conn.execute(f"CREATE TABLE {SCHEMA}.{TABLE} (LIKE public.ledger_entries INCLUDING ALL)")


def copy_in_batches(owner_url: str, rows: Sequence[tuple], batch: int) -> float:
    """Seconds to binary-COPY `rows` into the scratch table, one commit per `batch` rows.

    The binary payloads are built before the clock starts (with the appender's own encoder),
    so the baseline is PostgreSQL's ingest alone: the strictest yardstick there is.
    """
    payloads = [_payload(rows[lo:lo + batch]) for lo in range(0, len(rows), batch)]
    with psycopg.connect(owner_url, autocommit=True) as conn:
        started = time.perf_counter()
        for payload in payloads:
            with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY_IN) as copy:
                copy.write(payload)
        return time.perf_counter() - started


def _payload(rows: Sequence[tuple]) -> bytes:
    encoder = EntryRows(rows[0][0], rows[0][8])
    for _, seq, entry, leaf, event_id, stream, version, type_, _, actor, key in rows:
        encoder.add(seq, entry, leaf, event_id.bytes, stream, version, type_, actor, key)
    return encoder.payload()


def single_insert_latencies(owner_url: str, rows: Sequence[tuple]) -> list[float]:
    """Seconds per row for one-row INSERT + COMMIT, one after the other on one connection."""
    insert = f"INSERT INTO {SCHEMA}.{TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
    samples = []
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for row in rows:
            started = time.perf_counter()
            conn.execute(insert, row)  # autocommit: the statement is its own transaction
            samples.append(time.perf_counter() - started)
    return samples


def copy_out(app_url: str, tenant: str) -> tuple[int, float]:
    """(rows, seconds) to COPY the tenant's entries out in binary, every byte read by us."""
    # No ORDER BY: the heap's own order (which is seq order for an append-only table) is
    # the cheapest way out, so the baseline is never slowed by the index the verifier uses.
    query = sql.SQL("COPY (SELECT {} FROM ledger_entries WHERE tenant_id = {}) "
                    "TO STDOUT (FORMAT BINARY)").format(sql.SQL(_SCAN_COLUMNS), sql.Literal(tenant))
    with psycopg.connect(app_url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(query) as copy:
            for _ in copy:  # raw buffers: the cheapest way a client can take the rows
                pass
        seconds = time.perf_counter() - started
        return cur.rowcount, seconds


def point_select_latencies(conn: psycopg.Connection, tenant: str,
                           seqs: Sequence[int]) -> list[float]:
    """Seconds per primary-key SELECT of one entry row (entry bytes and leaf hash)."""
    samples = []
    for seq in seqs:
        started = time.perf_counter()
        conn.execute("SELECT entry, leaf_hash FROM ledger_entries WHERE tenant_id = %s "
                     "AND seq = %s", (tenant, seq)).fetchone()
        samples.append(time.perf_counter() - started)
    return samples
