"""Processes for the escalation concurrency test: an engine, or a person moving cases.

    python -m tests.integration.escalation_workers engine CONNINFO TENANT SECONDS
    python -m tests.integration.escalation_workers mover CONNINFO TENANT SECONDS SEED

Each stops by itself after SECONDS; an engine prints how many firings it recorded.
"""

from __future__ import annotations

import random
import sys
import time

import psycopg

from indelible import domain
from indelible.bootstrap import projections
from indelible.store import discrepancies as store
from indelible.store.appender import append_batch

MOVES = {  # status: [(role, next status)] a person may try
    "open": [("analyst", "acknowledged"), ("analyst", "investigating")],
    "acknowledged": [("analyst", "investigating"), ("compliance_manager", "escalated")],
    "investigating": [("compliance_manager", "escalated")],
    "escalated": [("compliance_manager", "investigating")],
}


def engine(conninfo: str, tenant: str, seconds: float) -> None:
    from indelible.escalation.engine import EscalationEngine
    from indelible.store.group_commit import GroupCommitAppender

    appender = GroupCommitAppender(conninfo=conninfo, model=projections())
    runner = EscalationEngine(conninfo=conninfo, appender=appender, interval=0.5, poll=0.05)
    fired = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for result in runner.run_once(tenant):
            fired += sum(1 for f in result.fired if not f.replayed and not f.refused)
        time.sleep(random.uniform(0, 0.05))
    appender.close()
    print(fired)


def mover(conninfo: str, tenant: str, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    model = projections()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with conn.transaction():
                conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
                rows = conn.execute("SELECT id::text, status FROM discrepancies "
                                    "WHERE tenant_id = %s", (tenant,)).fetchall()
            case, status = rng.choice(rows)
            if status not in MOVES:
                continue
            role, target = rng.choice(MOVES[status])
            reason = "by hand" if target == "escalated" else None
            actor = domain.Actor(f"key:{role}", domain.Role(role))
            # Decided against the status under the lock: a stale pick is simply refused.
            append_batch(conn, tenant, [store.decision(case, domain.Transition(
                to=target, reason=reason), actor)], model=model)
            time.sleep(rng.uniform(0, 0.03))


if __name__ == "__main__":
    kind, conninfo, tenant, seconds, *rest = sys.argv[1:]
    if kind == "engine":
        engine(conninfo, tenant, float(seconds))
    else:
        mover(conninfo, tenant, float(seconds), int(rest[0]))
