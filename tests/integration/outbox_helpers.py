"""A service's outbound half on the suite's PostgreSQL: the appender with the outbox hook,
a dispatcher, and discrepancies to resolve (each resolution owes the RAG feed a document)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import psycopg

from indelible import domain
from indelible.bootstrap import projections
from indelible.config import Integration, OutboundSettings
from indelible.outbound.dispatcher import Dispatcher
from indelible.outbound.hook import OutboxHook
from indelible.outbound.webhooks import new_secret
from indelible.store import discrepancies as store
from indelible.store.appender import Appended
from indelible.store.group_commit import GroupCommitAppender

ANALYST = domain.Actor("key:ana", "analyst")
# A timeout long enough that a loaded CI machine still gets the receiver's answer; the tests
# of slowness set their own.
FAST = dict(timeout=3.0, concurrency=2, schedule=(0, 0.3, 0.3, 0.3, 0.3), poll=0.2)


def settings(url: str, secret: str, **overrides) -> OutboundSettings:
    return OutboundSettings(rag=Integration("rag", url, (secret,)), **{**FAST, **overrides})


@contextmanager
def outbound(app_url: str, config: OutboundSettings | None, *, dispatchers: int = 1):
    """An appender with the hook for `config`'s integrations and `dispatchers` dispatchers."""
    names = [i.name for i in config.enabled] if config else []
    appender = GroupCommitAppender(conninfo=app_url, model=projections(),
                                   hooks=[OutboxHook(names)] if names else [])
    running = [Dispatcher(conninfo=app_url, appender=appender, settings=config).start()
               for _ in range(dispatchers if names else 0)]
    try:
        yield appender
    finally:
        for d in running:
            d.stop()
        appender.close()


def open_case(appender: GroupCommitAppender, tenant: str, ref: str) -> str:
    command = domain.OpenDiscrepancy(external_ref=ref, source="stripe", kind="amount_mismatch",
                                     expected_amount="9850.00", actual_amount="10000.00",
                                     currency="EUR", detected_at="2026-11-23T05:00:00Z")
    discrepancy_id = store.new_id()
    out = appender.append(tenant, store.decision(discrepancy_id, command, ANALYST,
                                                 store.open_key("stripe", ref)))
    assert isinstance(out, Appended), out
    return discrepancy_id


def move(appender, tenant: str, discrepancy_id: str, to: str, **extra) -> Appended:
    return appender.append(tenant, store.decision(
        discrepancy_id, domain.Transition(to=to, **extra), ANALYST))


def resolve(appender, tenant: str, ref: str) -> tuple[str, Appended]:
    """Open, acknowledge, investigate and resolve one discrepancy; (id, resolving entry)."""
    d = open_case(appender, tenant, ref)
    move(appender, tenant, d, "acknowledged")
    move(appender, tenant, d, "investigating")
    return d, move(appender, tenant, d, "resolved", resolution_code="corrected_in_ledger",
                   note="Processor fee booked")


def outbox_rows(conn: psycopg.Connection, tenant: str) -> list[tuple]:
    return conn.execute("SELECT integration, event, source_seq, state, attempts, webhook_id "
                        "FROM outbox WHERE tenant_id = %s ORDER BY id", (tenant,)).fetchall()


def outcomes(conn: psycopg.Connection, tenant: str, stream: str | None = None) -> list[dict]:
    """The outbox.* entries of the tenant (of one stream), in seq order, as documents."""
    import orjson

    rows = conn.execute("SELECT entry FROM ledger_entries WHERE tenant_id = %s AND type LIKE "
                        "'outbox.%%' AND (%s::text IS NULL OR stream_id = %s) ORDER BY seq",
                        (tenant, stream, stream)).fetchall()
    return [orjson.loads(bytes(r[0])) for r in rows]


def wait_until(check, timeout: float = 30, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


__all__ = ["new_secret", "outbound", "open_case", "move", "resolve", "outbox_rows", "outcomes",
           "settings", "wait_until"]
