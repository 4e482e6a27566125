"""The escalation engine inside `indelible up`: passes over every tenant, on a clock.

It runs a pass for a tenant when the tenant's earliest next-check bound has passed, and
every `interval` seconds at the latest (INDELIBLE_ESCALATION_INTERVAL, 15 minutes by
default, as the seed system did). Between passes it re-reads the bounds every `poll`
seconds (one index probe per tenant), so a threshold falls due within about a second of
its time, not most of an interval later, including for a discrepancy opened after the last
pass. Any number of engines may run against one database: every firing is decided under
the log-head lock and keyed, so they never duplicate one another.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import psycopg

from indelible.store import escalation as store
from indelible.store.group_commit import GroupCommitAppender
from indelible.usecases import escalation
from indelible.usecases.principal import Ledger

log = logging.getLogger(__name__)

POLL = 1.0  # seconds between looks at the bounds index


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class EscalationEngine:
    def __init__(self, *, conninfo: str, appender: GroupCommitAppender, interval: float = 900.0,
                 clock: Callable[[], datetime] = utcnow, poll: float = POLL):
        self._conninfo, self._interval, self._clock, self._poll = conninfo, interval, clock, poll
        self._ledger = Ledger(appender)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_full: datetime | None = None
        self._probe: psycopg.Connection | None = None  # the engine thread's, for the bounds

    def start(self) -> EscalationEngine:
        self._thread = threading.Thread(target=self._run, name="escalation", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run_once(self, tenant: str | None = None) -> list[escalation.PassResult]:
        """A pass now for `tenant` (every tenant when None)."""
        now = self._clock()
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            tenants = [tenant] if tenant else escalation.tenants(conn)
        return [asyncio.run(self._pass(t, now)) for t in tenants]

    async def _pass(self, tenant: str, now: datetime) -> escalation.PassResult:
        async def read(fn, *args):
            return await asyncio.to_thread(self._read, tenant, fn, *args)
        return await escalation.run_pass(self._ledger, read, tenant, now=now)

    def _read(self, tenant: str, fn, *args):
        with psycopg.connect(self._conninfo, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
            return fn(conn, tenant, *args)

    def _due_tenants(self, now: datetime) -> tuple[list[str], datetime | None]:
        """Tenants to pass over now, and the earliest bound still ahead."""
        full = self._last_full is None or now - self._last_full >= timedelta(seconds=self._interval)
        due, ahead = [], None
        if self._probe is None or self._probe.closed:
            self._probe = psycopg.connect(self._conninfo, autocommit=True)
        conn = self._probe  # one connection, kept: this runs every `poll` seconds
        for tenant in escalation.tenants(conn):
            with conn.transaction():
                conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
                bound = store.next_bound(conn, tenant)
            if full or (bound is not None and bound <= now):
                due.append(tenant)
            elif bound is not None and (ahead is None or bound < ahead):
                ahead = bound
        if full:
            self._last_full = now
        return due, ahead

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self._poll
            try:
                now = self._clock()
                due, ahead = self._due_tenants(now)
                for tenant in due:
                    try:
                        result = asyncio.run(self._pass(tenant, now))
                    except Exception:  # noqa: BLE001 - one tenant's failure (an edited
                        # entry, a bug) must not hold back the tenants listed after it
                        log.exception("escalation pass for %s failed; retrying", tenant)
                        continue
                    fired = [f for f in result.fired if not f.replayed and not f.refused]
                    if fired:
                        log.info("escalation: %d firing(s) for %s", len(fired), tenant)
                if ahead is not None:
                    wait = min(wait, max(0.0, (ahead - self._clock()).total_seconds()))
            except Exception:  # noqa: BLE001 - a failed pass is retried, the engine goes on
                log.exception("escalation pass failed; retrying in %.0f s", self._poll)
                if self._probe is not None:
                    self._probe.close()
            self._stop.wait(wait)
        if self._probe is not None:
            self._probe.close()
