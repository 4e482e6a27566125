"""Operator use cases of the outbox: retry parked events, re-enable an integration a 410
disabled, backfill events from before an integration was switched on.

Each is a ledger entry on the tenant's `outbox/<integration>` stream naming who did it,
written in the same transaction as the queue's change (`Decision.with_entry`).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import psycopg

from indelible.entry import Actor, NewEntry
from indelible.outbound.events import TYPES, events_for, webhook_id
from indelible.store import outbox
from indelible.store.appender import Appended, Decision, StreamModel, append_batch


class NothingToDoError(Exception):
    """The request changes nothing (no parked event, an integration not disabled)."""


@dataclass(frozen=True)
class Done:
    seq: int  # the entry that records it
    count: int  # events requeued or queued


def _append(conn, model: StreamModel, tenant: str, entry: NewEntry, write) -> Appended:
    decision = Decision(entry.stream, lambda *_: entry, with_entry=lambda c, t: write(c))
    (out,) = append_batch(conn, tenant, [decision], model=model)
    if isinstance(out, Exception):
        raise out
    return out


def retry_parked(conn: psycopg.Connection, model: StreamModel, tenant: str, by: Actor, *,
                 integration: str, ids: list[int] | None = None) -> Done:
    """Parked events (these, or all of the integration's) start a new round of attempts."""
    parked = [r for r in outbox.rows(conn, tenant, state="parked", integration=integration,
                                     limit=100_000) if ids is None or r.id in ids]
    if not parked:
        raise NothingToDoError(f"tenant {tenant}: no parked {integration} event"
                               + (f" among ids {ids}" if ids else ""))
    entry = NewEntry(stream=f"outbox/{integration}", type="outbox.requeued", actor=by,
                     data={"integration": integration,
                           "webhook_ids": [r.webhook_id for r in parked]})
    out = _append(conn, model, tenant, entry, lambda c: outbox.requeue(
        c, tenant, [r.id for r in parked], integration))
    return Done(out.seq, len(parked))


def enable(conn: psycopg.Connection, model: StreamModel, tenant: str, by: Actor, *,
           integration: str, reason: str) -> Done:
    """Lift the disabling a 410 caused; held events are delivered again."""
    if not any(d["integration"] == integration for d in outbox.disabled(conn, tenant)):
        raise NothingToDoError(f"tenant {tenant}: the {integration} integration is not disabled")
    entry = NewEntry(stream=f"outbox/{integration}", type="outbox.integration_enabled",
                     actor=by, data={"integration": integration, "reason": reason})

    def write(c):
        outbox.enable(c, tenant, integration)
        c.execute(f"NOTIFY {outbox.CHANNEL}")
    return Done(_append(conn, model, tenant, entry, write).seq, 0)


def backfill(conn: psycopg.Connection, model: StreamModel, tenant: str, by: Actor, *,
             integration: str, from_seq: int = 0) -> Done:
    """Queue the events the tenant's entries from `from_seq` on owe `integration` (those
    already queued are left as they are: one event, one webhook id, whoever queues it)."""
    with conn.transaction():
        queued = [outbox.Queued(tenant, integration, event, seq, stream,
                                webhook_id(integration, event_id))
                  for seq, event_id, stream, kind, entry in outbox.sources(conn, tenant, TYPES,
                                                                           from_seq)
                  for name, event in events_for(kind, orjson.loads(entry)["data"])
                  if name == integration]
    entry = NewEntry(stream=f"outbox/{integration}", type="outbox.backfilled", actor=by,
                     data={"integration": integration, "from_seq": from_seq,
                           "events": len(queued),
                           "last_seq": queued[-1].source_seq if queued else None})
    return Done(_append(conn, model, tenant, entry, lambda c: outbox.enqueue(c, queued)).seq,
                len(queued))
