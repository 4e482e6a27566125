"""What a report says, computed from ledger entries alone. Pure: no I/O.

`CaseBuilder` folds one discrepancy's entries (in seq order) into its timeline rows and its
state; `summarise` computes the figures a compliance officer reads first. Every figure
is an integer, a decimal string or a string: no floats, so the JSON file is byte-stable
and the same entries always give the same report.

Entry types the domain does not know appear in the timeline with the status unchanged;
`escalation.fired` entries (the escalation engine's, on the discrepancy's own stream) are
counted as escalations fired.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from indelible import domain

ESCALATION_FIRED = "escalation.fired"
CLOSED = (domain.Status.RESOLVED.value, domain.Status.AUTO_CLOSED.value)
AGE_BUCKETS = (("< 1 day", 1), ("1-7 days", 7), ("7-30 days", 30), ("30-90 days", 90),
               ("> 90 days", None))  # label, upper bound in days (exclusive)


@dataclass(frozen=True)
class TimelineRow:
    seq: int
    at: str  # the entry's own RFC 3339 UTC time
    type: str
    actor: str
    role: str
    status_before: str | None
    status_after: str
    note: str
    leaf_hash: str  # hex

    def to_json(self) -> dict:
        return {"seq": self.seq, "at": self.at, "type": self.type, "actor": self.actor,
                "role": self.role, "status_before": self.status_before,
                "status_after": self.status_after, "note": self.note,
                "leaf_hash": self.leaf_hash}


@dataclass
class CaseBuilder:
    """One discrepancy, entry by entry."""

    state: domain.Discrepancy | None = None
    timeline: list[TimelineRow] = field(default_factory=list)
    escalations: int = 0
    acknowledged_at: str | None = None  # first move to acknowledged
    closed_at: str | None = None  # first move to resolved or auto_closed

    def add(self, seq: int, document: dict, leaf: bytes) -> None:
        kind, data = document["type"], document.get("data") or {}
        before = self.state.status.value if self.state else None
        if kind in _FOLDED:
            self.state = domain.evolve(self.state, domain.Event(kind, data), at=document["at"])
        if kind == ESCALATION_FIRED:
            self.escalations += 1
        after = self.state.status.value if self.state else "unknown"
        if after != before:
            if after == domain.Status.ACKNOWLEDGED.value and self.acknowledged_at is None:
                self.acknowledged_at = document["at"]
            if after in CLOSED and self.closed_at is None:
                self.closed_at = document["at"]
        actor = document.get("actor") or {}
        self.timeline.append(TimelineRow(seq, document["at"], kind, actor.get("id", ""),
                                         actor.get("role", ""), before, after,
                                         describe(kind, data), leaf.hex()))

    def to_json(self) -> dict:
        d = self.state.to_dict()
        fields = {k: d[k] for k in ("id", "external_ref", "source", "kind", "currency",
                                    "expected_amount", "actual_amount", "difference",
                                    "severity", "status", "assignee", "detected_at",
                                    "opened_at", "updated_at", "resolution_code",
                                    "resolution_note", "transaction_refs")}
        return fields | {"escalations_fired": self.escalations,
                         "acknowledged_at": self.acknowledged_at, "closed_at": self.closed_at,
                         "timeline": [row.to_json() for row in self.timeline]}


_FOLDED = {t.value for t in domain.EventType}


def describe(kind: str, data: dict) -> str:
    """The note a reader wants beside an entry: what it said, in a line."""
    if kind == domain.EventType.OPENED:
        return (f"{data.get('kind')}: expected {data.get('expected_amount')} "
                f"{data.get('currency')}, actual {data.get('actual_amount')}")
    if kind == domain.EventType.TRANSITIONED:
        parts = [data.get("reason"), data.get("resolution_code"), data.get("note")]
        return " - ".join(str(p) for p in parts if p)
    if kind == domain.EventType.ASSIGNED:
        return f"assigned to {data.get('to') or 'nobody'}"
    if kind == domain.EventType.COMMENTED:
        return str(data.get("text", ""))
    if kind == domain.EventType.SEVERITY_CHANGED:
        return f"severity {data.get('from')} -> {data.get('to')}: {data.get('reason', '')}"
    if kind == domain.EventType.EVIDENCE_ATTACHED:
        return f"evidence {data.get('name')} (sha256 {str(data.get('sha256', ''))[:16]}...)"
    if kind == domain.EventType.AMENDED:
        after = data.get("after") or {}
        return (f"re-reported: expected {after.get('expected_amount')} "
                f"{after.get('currency')}, actual {after.get('actual_amount')}")
    if kind == ESCALATION_FIRED:
        action = data.get("action", "")
        detail = data.get("message") or data.get("severity") or ""
        return f"rule {data.get('rule_name', data.get('rule_id', '?'))}: {action} {detail}".strip()
    return str(data.get("reason") or data.get("note") or "")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def percentile(samples: list[int], p: int) -> int | None:
    """Nearest-rank percentile: always an observed value; None for no samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


def duration_stats(seconds: list[int]) -> dict:
    return {"count": len(seconds), "median_seconds": percentile(seconds, 50),
            "p90_seconds": percentile(seconds, 90)}


def summarise(cases: list[dict], *, period_from: datetime, period_to: datetime,
              as_of: datetime) -> dict:
    """Counts, amounts, durations and escalations over `cases` (CaseBuilder.to_json())."""
    amounts: dict[str, dict] = {}
    for c in cases:
        cur = c["currency"]
        a = amounts.setdefault(cur, {"count": 0, "expected": Decimal(0), "actual": Decimal(0),
                                     "difference": Decimal(0), "absolute": Decimal(0)})
        a["count"] += 1
        a["expected"] += Decimal(c["expected_amount"])
        a["actual"] += Decimal(c["actual_amount"])
        a["difference"] += Decimal(c["difference"])
        a["absolute"] += abs(Decimal(c["difference"]))
    to_ack = [_seconds(c["opened_at"], c["acknowledged_at"]) for c in cases if c["acknowledged_at"]]
    to_close = [_seconds(c["opened_at"], c["closed_at"]) for c in cases if c["closed_at"]]
    return {
        "discrepancies": len(cases),
        "entries": sum(len(c["timeline"]) for c in cases),
        "by_status": _counts(cases, "status", [s.value for s in domain.Status]),
        "by_severity": _counts(cases, "severity", [s.value for s in domain.Severity]),
        "by_source": _counts(cases, "source", []),
        "amounts_by_currency": {
            cur: {"count": a["count"]} | {k: domain.format_amount(a[k], cur) for k in
                                          ("expected", "actual", "difference", "absolute")}
            for cur, a in sorted(amounts.items())},
        "time_to_acknowledge": duration_stats(to_ack),
        "time_to_resolve": duration_stats(to_close),
        "escalations_fired": sum(c["escalations_fired"] for c in cases),
        "per_day": per_day(cases, period_from, period_to),
        "ageing": ageing(cases, as_of),
        "ageing_as_of": as_of.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _counts(cases: list[dict], key: str, order: list[str]) -> dict[str, int]:
    found = Counter(c[key] for c in cases)
    return {k: found.get(k, 0) for k in order} | {k: found[k] for k in sorted(found)
                                                   if k not in order}


def _seconds(start: str, end: str) -> int:
    return int((parse_time(end) - parse_time(start)).total_seconds())


def per_day(cases: list[dict], period_from: datetime, period_to: datetime) -> list[dict]:
    """Discrepancies opened and closed on each UTC day of the period."""
    opened = Counter(c["opened_at"][:10] for c in cases)
    closed = Counter(c["closed_at"][:10] for c in cases if c["closed_at"])
    days, day = [], period_from.date()
    while datetime.combine(day, datetime.min.time(), timezone.utc) < period_to:
        key = day.isoformat()
        days.append({"day": key, "opened": opened.get(key, 0), "resolved": closed.get(key, 0)})
        day += timedelta(days=1)
    return days


def ageing(cases: list[dict], as_of: datetime) -> dict[str, dict[str, int]]:
    """Discrepancies still not closed at `as_of`, by severity and age since opening."""
    table = {s.value: {label: 0 for label, _ in AGE_BUCKETS} for s in domain.Severity}
    for c in cases:
        if c["closed_at"] and parse_time(c["closed_at"]) <= as_of:
            continue
        age_days = (as_of - parse_time(c["opened_at"])).total_seconds() / 86400
        for label, upper in AGE_BUCKETS:
            if upper is None or age_days < upper:
                table.setdefault(c["severity"], {b: 0 for b, _ in AGE_BUCKETS})[label] += 1
                break
    return table


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock
