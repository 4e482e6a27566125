"""What the console's dashboard shows at a glance: how many cases sit in which status and
severity, how long the unfinished ones have been open, and whether the log is signed up to
date. Read-only queries over the read model and the log; every one names its tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from indelible import domain
from indelible.store.checkpoints import StoredCheckpoint, latest_checkpoint
from indelible.store.logs import log_end

# Age bands of unfinished cases, in days since they were opened (lower bound inclusive).
AGE_BANDS: tuple[tuple[str, int], ...] = (("under 1 day", 0), ("1–7 days", 1),
                                          ("7–30 days", 7), ("over 30 days", 30))
UNFINISHED = tuple(s.value for s in domain.Status if s not in domain.TERMINAL)


@dataclass(frozen=True)
class Ageing:
    severity: str
    unfinished: int
    bands: tuple[int, ...]  # counts per AGE_BANDS
    oldest_opened_at: datetime | None


@dataclass(frozen=True)
class Integrity:
    log_size: int
    latest_at: datetime | None  # when the newest entry was recorded
    checkpoint: StoredCheckpoint | None

    @property
    def unsigned(self) -> int:
        """Entries no signed checkpoint covers yet."""
        return self.log_size - (self.checkpoint.size if self.checkpoint else 0)


@dataclass(frozen=True)
class Overview:
    matrix: dict[str, dict[str, int]]  # {status: {severity: count}}, zeros included
    ageing: list[Ageing]  # unfinished cases per severity, most severe first


def overview(conn: psycopg.Connection, tenant: str) -> Overview:
    """Counts by status and severity, and the ageing of unfinished cases, in one pass over
    the tenant's discrepancies (at 100,000 cases two passes cost twice as much)."""
    bands = ", ".join(
        f"count(*) FILTER (WHERE opened_at <= now() - interval '{low} days'"
        + (f" AND opened_at > now() - interval '{high} days')" if high is not None else ")")
        for (_, low), high in zip(AGE_BANDS, [b for _, b in AGE_BANDS[1:]] + [None]))
    matrix = {s.value: {v.value: 0 for v in domain.Severity} for s in domain.Status}
    open_count = {v.value: 0 for v in domain.Severity}
    band_counts = {v.value: [0] * len(AGE_BANDS) for v in domain.Severity}
    oldest: dict[str, datetime] = {}
    for status, severity, n, *per_band, first in conn.execute(
            f"SELECT status, severity, count(*), {bands}, min(opened_at) FROM discrepancies "
            "WHERE tenant_id = %s GROUP BY status, severity", (tenant,)):
        matrix[status][severity] = n
        if status in UNFINISHED:
            open_count[severity] += n
            band_counts[severity] = [a + b for a, b in zip(band_counts[severity], per_band)]
            oldest[severity] = min(oldest.get(severity, first), first)
    ageing = [Ageing(s.value, open_count[s.value], tuple(band_counts[s.value]), oldest.get(s.value))
              for s in reversed(domain.Severity)]
    return Overview(matrix, ageing)


def escalated(conn: psycopg.Connection, tenant: str, *, limit: int = 10) -> list[dict]:
    """Cases now escalated, the most recently changed first (escalated by a manager or, once
    escalation rules run, by the engine)."""
    rows = conn.execute("SELECT state FROM discrepancies WHERE tenant_id = %s AND status = "
                        "'escalated' ORDER BY updated_at DESC LIMIT %s", (tenant, limit))
    return [r[0] for r in rows]


def due_next(conn: psycopg.Connection, tenant: str, *, limit: int = 10) -> list[dict]:
    """Cases whose next escalation-rule check comes soonest: the escalation engine's watch
    index (the earliest moment a rule may act; the case page shows each rule's due time)."""
    rows = conn.execute(
        "SELECT w.next_check_at, d.state FROM escalation_watch w JOIN discrepancies d "
        "ON d.tenant_id = w.tenant_id AND d.id = w.discrepancy_id WHERE w.tenant_id = %s "
        "AND w.next_check_at IS NOT NULL ORDER BY w.next_check_at LIMIT %s", (tenant, limit))
    return [{**state, "next_check_at": at} for at, state in rows]


def integrity(conn: psycopg.Connection, tenant: str) -> Integrity:
    end = log_end(conn, tenant)
    return Integrity(end.size, end.latest_at, latest_checkpoint(conn, tenant))
