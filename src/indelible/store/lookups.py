"""The appender's lookups under the log-head lock: statements sent in its pipeline.

Each lookup probes an index once per key or stream: `unnest` of the keys, then a LATERAL
subquery with LIMIT, which PostgreSQL never flattens into a join (flattened, with
statistics that underestimated a tenant, PostgreSQL 18 hash-joined 2,000 idempotency keys
against a scan of the tenant's whole log: 55 ms at 132k entries, against 1.8 ms as probes).

The probes run with generic plans (`GENERIC_PLANS` … `USUAL_PLANS` around them, in the
same pipeline). With the tenant's name in hand, the planner estimates its rows from
statistics; a tenant those do not know yet (a new one, or one grown since the last ANALYZE)
looks like a handful of rows, and every index starting with tenant_id looks as good as the
right one: PostgreSQL 18 then probed each key by scanning the tenant's (tenant_id,
event_id) index with a filter, so each batch cost in proportion to the whole log (3.5 s
for 2,000 keys, 4.0 s for their streams, at 6,000 entries; quadratic as the log grows).
A generic plan estimates a tenant as an average one and takes the index that matches both
equalities (3.6 ms and 17 ms on the same rows). Each names its tenant with a plain
equality, which is also what Citus routes by (docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"
USUAL_PLANS = "SET LOCAL plan_cache_mode = DEFAULT"

BY_KEY = (  # the entry each idempotency key names
    "SELECT e.idempotency_key, e.seq, e.event_id, e.stream_id, e.stream_version, "
    "       e.leaf_hash, e.recorded_at, e.entry "
    "FROM unnest(%(keys)s::text[]) AS k, LATERAL ("
    "  SELECT * FROM ledger_entries WHERE tenant_id = %(t)s AND idempotency_key = k "
    "  LIMIT 1) AS e")
VERSIONS = (  # one backward probe per stream down (tenant_id, stream_id, stream_version)
    "SELECT s, v.stream_version FROM unnest(%(keys)s::text[]) AS s, LATERAL ("
    "  SELECT stream_version FROM ledger_entries WHERE tenant_id = %(t)s AND stream_id = s"
    "  ORDER BY stream_version DESC LIMIT 1) AS v")


def send_by_request(conn: psycopg.Connection, tenant: str, keys: list[str]):
    if not keys:
        return None
    return conn.execute(
        "SELECT e.request_key, e.seq, e.event_id, e.stream_id, e.stream_version, e.leaf_hash, "
        "       e.recorded_at, e.entry "
        "FROM unnest(%(keys)s::text[]) AS k, LATERAL ("
        "  SELECT r.request_key, l.* FROM request_keys r JOIN ledger_entries l"
        "    ON l.tenant_id = %(t)s AND l.seq = r.seq"
        "  WHERE r.tenant_id = %(t)s AND r.request_key = k LIMIT 1) AS e",
        {"keys": keys, "t": tenant})


def send_by_key(conn: psycopg.Connection, tenant: str, keys: list[str]):
    if not keys:
        return None
    return conn.execute(BY_KEY, {"keys": keys, "t": tenant})


def send_versions(conn: psycopg.Connection, tenant: str, streams: list[str]):
    if not streams:
        return None
    return conn.execute(VERSIONS, {"keys": streams, "t": tenant})


@contextmanager
def generic_plans(conn: psycopg.Connection) -> Iterator[None]:
    """Statements sent inside run with generic plans, in one pipeline with the two SETs
    (one round trip): for probes with a bound tenant outside the appender's own pipeline
    (the models' loads, the escalation watch). Fetch their results after the block."""
    with conn.pipeline():
        conn.execute(GENERIC_PLANS)
        yield
        conn.execute(USUAL_PLANS)


def fetch_versions(conn: psycopg.Connection, tenant: str, streams: list[str]) -> dict[str, int]:
    with generic_plans(conn):
        found = send_versions(conn, tenant, streams)
    return dict(found.fetchall())
