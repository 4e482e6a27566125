"""`indelible bench escalate`: one engine pass over many open discrepancies.

Setup (not timed): a fresh tenant, R rules, N open discrepancies (one in ten critical),
opened through the real append path so the watch index is what the service keeps.
1. Nothing due: a pass at the moment setup began (every threshold ahead). Ours: the full
   `run_pass` (index probe, rules, calendar, nothing to fire). Baseline: one plain read of
   every watch row (`count(*)`), i.e. what a pass that scanned the discrepancies would pay
   at the least. Target ≤ 50 ms at 100,000 open.
2. One in ten due: a pass at setup end + 2 minutes, when the critical ones' PT1M rule is
   due. Ours: firings recorded per second by that pass (evaluation, key look-ups, decisions
   under the lock, bound moves included). Baseline: the same number of plain decided
   appends (a comment each on another tenth, never due, timed first so that neither side
   reads the other's rows from a warm cache) through the same group-commit appender.
   Target ratio ≥ 0.5.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

from indelible import domain
from indelible.bench.common import BenchError, Measurement, rate
from indelible.bootstrap import Database, projections
from indelible.escalation.rules import parse_rules
from indelible.store import discrepancies as discs
from indelible.store import escalation as store
from indelible.store.appender import Appended
from indelible.store.group_commit import GroupCommitAppender
from indelible.store.tenants import create_tenant
from indelible.usecases import escalation
from indelible.usecases.principal import Ledger, Principal

TARGET_IDLE_MS = 50.0  # at 100,000 open
TARGET_RATIO = 0.5
SETUP_SLICE = 2_000  # discrepancies opened per submit
ANALYST = domain.Actor("bench:analyst", domain.Role.ANALYST)


@dataclass(frozen=True)
class EscalateOptions:
    open: int = 100_000  # open discrepancies
    rules: int = 10
    idle_passes: int = 20  # nothing-due passes timed (the median is reported)


def bench_rules(count: int) -> dict:
    """`count` rules: critical open 1 minute → notify (the due one); the rest wait hours."""
    rules = [{"id": "critical-1m", "name": "critical", "severity": "critical", "after": "PT1M",
              "action": {"type": "notify", "target": "compliance_manager",
                         "message": "{external_ref} open"}}]
    for i in range(1, count):
        severity = ("low", "medium", "high", "*")[i % 4]
        rules.append({"id": f"wait-{i}", "name": f"wait {i}", "severity": severity,
                      "after": f"PT{i + 2}H", "priority": i,
                      "action": {"type": "notify", "target": "compliance_manager",
                                 "message": "{external_ref}"}})
    return {"rules": rules}


def run(db: Database, base_origin: str, options: EscalateOptions) -> tuple[list[Measurement], dict]:
    tenant = f"bench-esc-{secrets.token_hex(3)}"
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin=base_origin)
    appender = GroupCommitAppender(conninfo=db.app_url, model=projections())
    ledger = Ledger(appender, timeout=600)
    try:
        began = datetime.now(timezone.utc)
        ids, setup_s = _setup(ledger, db.app_url, tenant, options)
        ended = datetime.now(timezone.utc)
        idle = _idle(ledger, db.app_url, tenant, began, options)
        scan = _scan_ms(db.app_url, tenant)
        # The baseline goes first, on another tenth (never due): each side meets a cold
        # tenth of the data, so neither profits from what the other read into the caches.
        other = [d for i, d in enumerate(ids) if i % 10 == 5]
        base_s = _plain_decided(ledger, tenant, other)
        fired, fire_s = _firing(ledger, db.app_url, tenant, ended + timedelta(minutes=2))
        due_ids = other
    finally:
        appender.close()
    target = options.open >= 100_000
    return [
        Measurement("escalate_nothing_due", f"escalation pass, nothing due ({options.open:,} open, "
                    f"{options.rules} rules)", "ms", {"p50": scan}, {"p50": idle["p50"]},
                    "count(*) over every watch row (what a scan costs at least)",
                    f"run_pass, median of {options.idle_passes}",
                    f"≤ {TARGET_IDLE_MS:g} ms at 100,000 open" if target else None,
                    idle["p50"] <= TARGET_IDLE_MS if target else None,
                    {"open": options.open, "max_ms": round(idle["max"], 3)}),
        Measurement("escalate_firing_rate", f"escalation pass, 10% due ({fired:,} firings)",
                    "entries/s", {"rate": rate(len(due_ids), base_s)}, {"rate": rate(fired, fire_s)},
                    "plain decided appends (a comment each), same appender",
                    f"run_pass firing {fired:,}, {fire_s:.2f} s",
                    f"ratio ≥ {TARGET_RATIO}", rate(fired, fire_s) / rate(len(due_ids), base_s)
                    >= TARGET_RATIO, {"firings": fired}),
    ], {"escalation_tenant": tenant, "setup_seconds": round(setup_s, 1), "open": options.open,
        "rules": options.rules}


def _setup(ledger: Ledger, app_url: str, tenant: str, options: EscalateOptions):
    who = Principal(tenant, "bench:admin", "admin")

    async def read(fn):
        with psycopg.connect(app_url, autocommit=True) as conn:
            return fn(conn, tenant)
    asyncio.run(escalation.set_rules(ledger, who, read, parse_rules(bench_rules(options.rules)),
                                     reason="bench", expected_version=0))
    started, ids = time.perf_counter(), []
    for lo in range(0, options.open, SETUP_SLICE):
        decisions = []
        for i in range(lo, min(lo + SETUP_SLICE, options.open)):
            severity = "critical" if i % 10 == 0 else ("low", "medium", "high")[i % 3]
            command = domain.OpenDiscrepancy(
                external_ref=f"b-{i}", source="bench", kind="amount_mismatch",
                expected_amount="100.00", actual_amount="101.00", currency="EUR",
                detected_at="2026-11-23T05:00:00Z", severity=severity)
            new = discs.new_id()
            ids.append(new)
            decisions.append(discs.decision(new, command, ANALYST,
                                            discs.open_key("bench", f"b-{i}")))
        outcomes = asyncio.run(ledger.append_all(tenant, decisions))
        if not all(isinstance(o, Appended) for o in outcomes):
            raise BenchError(f"setup: {next(o for o in outcomes if not isinstance(o, Appended))}")
    return ids, time.perf_counter() - started


def _reader(app_url: str, tenant: str):
    conn = psycopg.connect(app_url, autocommit=True)

    async def read(fn, *args):
        with conn.transaction():
            conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
            return fn(conn, tenant, *args)
    return conn, read


def _idle(ledger, app_url, tenant, now, options) -> dict:
    conn, read = _reader(app_url, tenant)

    async def passes() -> list[float]:  # one event loop: its start-up is not the pass's cost
        samples = []
        for _ in range(options.idle_passes):
            started = time.perf_counter()
            result = await escalation.run_pass(ledger, read, tenant, now=now)
            samples.append((time.perf_counter() - started) * 1000)
            if result.fired or result.looked_at:
                raise BenchError(f"nothing should be due, but the pass looked at "
                                 f"{result.looked_at} and fired {len(result.fired)}")
        return samples
    with conn:
        samples = sorted(asyncio.run(passes()))
    return {"p50": samples[len(samples) // 2], "max": samples[-1]}


def _scan_ms(app_url: str, tenant: str) -> float:
    with psycopg.connect(app_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            conn.execute("SELECT count(*) FROM escalation_watch WHERE tenant_id = %s",
                         (tenant,)).fetchone()
            samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)[2]


def _firing(ledger, app_url, tenant, now) -> tuple[int, float]:
    conn, read = _reader(app_url, tenant)
    with conn:
        started = time.perf_counter()
        result = asyncio.run(escalation.run_pass(ledger, read, tenant, now=now))
        seconds = time.perf_counter() - started
    fired = [f for f in result.fired if not f.replayed and not f.refused]
    if len(fired) != len(result.fired):
        raise BenchError(f"{len(result.fired) - len(fired)} firings were refused or replayed")
    return len(fired), seconds


def _plain_decided(ledger: Ledger, tenant: str, ids: list[str]) -> float:
    decisions = [discs.decision(d, domain.Comment(text="bench"), ANALYST) for d in ids]
    started = time.perf_counter()
    for lo in range(0, len(decisions), escalation.PASS_LIMIT):
        outcomes = asyncio.run(ledger.append_all(tenant, decisions[lo:lo + escalation.PASS_LIMIT]))
        if not all(isinstance(o, Appended) for o in outcomes):
            raise BenchError("a plain decided append was refused")
    return time.perf_counter() - started
