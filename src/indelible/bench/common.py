"""What every benchmark shares: timing statistics and the report (a table, or one JSON object).

A `Measurement` pairs the raw PostgreSQL baseline with our figure for the same statistics
(entries/s, or p50/p99 milliseconds) measured in the same run on the same server, and says
whether the issue's target holds. The ratio is always ours / baseline: above 1 is *better*
for a rate and *worse* for a latency, which the table spells out.
"""

from __future__ import annotations

import gc
import math
import os
import platform
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone


class BenchError(RuntimeError):
    """A benchmark could not produce a trustworthy figure (e.g. verification failed)."""


def percentile(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by the nearest-rank method: always an observed sample."""
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of `samples` (seconds), in milliseconds."""
    return {"p50": percentile(samples, 50) * 1000, "p99": percentile(samples, 99) * 1000}


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Exclude everything allocated so far (the prepared workload) from garbage collection.

    Hundreds of thousands of prepared commands and rows would otherwise be re-scanned by
    every full collection during the timed sections, a cost of the harness, not of the
    ledger; objects the ledger allocates while measured are still collected as usual.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


@dataclass(frozen=True)
class Measurement:
    """One comparison: the same statistics for the baseline and for the ledger."""

    name: str  # JSON key, e.g. "append_group_commit"
    title: str
    unit: str  # "entries/s" or "ms"
    baseline: dict[str, float]  # statistic -> value, e.g. {"rate": 180000.0}
    ours: dict[str, float]  # the same statistics as `baseline`
    baseline_what: str  # what the baseline did, one line
    ours_what: str
    target: str | None = None  # the target in words; None: no target, report only
    met: bool | None = None
    details: dict = field(default_factory=dict)  # sizes and counts a reader needs

    @property
    def ratio(self) -> dict[str, float]:
        return {k: self.ours[k] / v if v else float("inf") for k, v in self.baseline.items()}

    def to_json(self) -> dict:
        return {"title": self.title, "unit": self.unit, "baseline": _rounded(self.baseline),
                "ours": _rounded(self.ours), "ratio": _rounded(self.ratio, 3),
                "baseline_what": self.baseline_what, "ours_what": self.ours_what,
                "target": self.target, "met": self.met, "details": self.details}

    def to_text(self) -> str:
        stats = list(self.baseline)
        heads = [self.unit if s == "rate" else f"{s} {self.unit}" for s in stats]
        better = "higher" if self.unit.endswith("/s") else "lower"
        rows = [("baseline", [_fmt(self.baseline[s]) for s in stats], self.baseline_what),
                ("ours", [_fmt(self.ours[s]) for s in stats], self.ours_what),
                ("ratio", [f"{self.ratio[s]:.2f}" for s in stats],
                 f"ours/baseline ({better} is better)")]
        width = max(12, *(len(h) for h in heads))
        lines = [self.title, "  " + " " * 10 + "".join(h.rjust(width) for h in heads)]
        lines += [f"  {label:<10}" + "".join(v.rjust(width) for v in values) + f"   {what}"
                  for label, values, what in rows]
        met = {True: "yes", False: "NO", None: "n/a"}[self.met]
        lines.append(f"  {'target':<10}{(self.target or 'none (reported only)')}   met: {met}")
        return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.3f}"


def _rounded(stats: dict[str, float], digits: int = 4) -> dict[str, float]:
    return {k: round(v, digits) for k, v in stats.items()}


def machine() -> dict:
    """Enough about the machine to compare runs: cores, Python, when."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def report_json(command: str, tenant: str, measurements: Sequence[Measurement],
                **extra) -> dict:
    return {"command": command, "tenant": tenant, "machine": machine(), **extra,
            "all_targets_met": all(m.met is not False for m in measurements),
            "measurements": {m.name: m.to_json() for m in measurements}}


def report_text(command: str, tenant: str, measurements: Sequence[Measurement]) -> str:
    info = machine()
    head = (f"indelible bench {command} — tenant {tenant}, {info['cpus']} cores, "
            f"Python {info['python']}, {info['date']}")
    return "\n\n".join([head, *(m.to_text() for m in measurements)])
