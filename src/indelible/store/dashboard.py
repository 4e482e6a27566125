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


def status_by_severity(conn: psycopg.Connection, tenant: str) -> dict[str, dict[str, int]]:
    """{status: {severity: count}}, every status and severity present (zeros included)."""
    matrix = {s.value: {v.value: 0 for v in domain.Severity} for s in domain.Status}
    for status, severity, n in conn.execute(
            "SELECT status, severity, count(*) FROM discrepancies WHERE tenant_id = %s "
            "GROUP BY status, severity", (tenant,)):
        matrix[status][severity] = n
    return matrix


def ageing(conn: psycopg.Connection, tenant: str) -> list[Ageing]:
    """Unfinished cases per severity (most severe first): counts by age band, and the oldest."""
    bands = ", ".join(
        f"count(*) FILTER (WHERE opened_at <= now() - interval '{low} days'"
        + (f" AND opened_at > now() - interval '{high} days')" if high is not None else ")")
        for (_, low), high in zip(AGE_BANDS, [b for _, b in AGE_BANDS[1:]] + [None]))
    rows = {r[0]: r for r in conn.execute(
        f"SELECT severity, count(*), {bands}, min(opened_at) FROM discrepancies "
        "WHERE tenant_id = %s AND status = ANY(%s) GROUP BY severity", (tenant, list(UNFINISHED)))}
    out = []
    for severity in reversed(domain.Severity):
        row = rows.get(severity.value)
        if row is None:
            out.append(Ageing(severity.value, 0, (0,) * len(AGE_BANDS), None))
        else:
            out.append(Ageing(severity.value, row[1], tuple(row[2:-1]), row[-1]))
    return out


def escalated(conn: psycopg.Connection, tenant: str, *, limit: int = 10) -> list[dict]:
    """Cases now escalated, the most recently changed first (escalated by a manager or, once
    escalation rules run, by the engine)."""
    rows = conn.execute("SELECT state FROM discrepancies WHERE tenant_id = %s AND status = "
                        "'escalated' ORDER BY updated_at DESC LIMIT %s", (tenant, limit))
    return [r[0] for r in rows]


def integrity(conn: psycopg.Connection, tenant: str) -> Integrity:
    end = log_end(conn, tenant)
    return Integrity(end.size, end.latest_at, latest_checkpoint(conn, tenant))
