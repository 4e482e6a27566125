"""How far each tenant's checkpoints trail its log: for /metrics.

Read with the service role (every tenant), at scrape or probe time. Operational figures
only: nothing here decides or signs anything, so the `log_heads` size is fine to read.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

_LAG = """
SELECT h.tenant_id, h.size, coalesce(c.size, 0),
       extract(epoch FROM now() - c.signed_at)::float8,
       extract(epoch FROM now() - e.recorded_at)::float8
FROM log_heads h
LEFT JOIN LATERAL (SELECT size, signed_at FROM checkpoints WHERE tenant_id = h.tenant_id
                   ORDER BY size DESC LIMIT 1) c ON true
LEFT JOIN LATERAL (SELECT recorded_at FROM ledger_entries WHERE tenant_id = h.tenant_id
                   AND seq = coalesce(c.size, 0)) e ON h.size > coalesce(c.size, 0)
"""


@dataclass(frozen=True)
class SigningLag:
    tenant: str
    size: int  # entries in the log
    signed: int  # entries the latest checkpoint covers
    checkpoint_age: float | None  # seconds since the latest checkpoint; None: never signed
    oldest_unsigned_age: float | None  # seconds the oldest unsigned entry has waited


def signing_lag(conn: psycopg.Connection) -> list[SigningLag]:
    return [SigningLag(*row) for row in conn.execute(_LAG)]
