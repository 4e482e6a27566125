"""The append hook that queues outbox rows in the transaction of the entries that cause them.

Only the integrations switched on are queued for: with a flag off nothing is queued, and
switching it on later does not replay history (an operator asks for that with
`indelible outbox backfill`).
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from indelible.outbound.events import TYPES, events_for, webhook_id
from indelible.store import outbox
from indelible.store.appender import Written


class OutboxHook:
    """An AppendHook (store/appender.py) for the enabled integrations."""

    types = TYPES

    def __init__(self, integrations: Iterable[str]):
        self.integrations = frozenset(integrations)

    def __call__(self, conn: psycopg.Connection, tenant: str, written: list[Written]) -> None:
        outbox.enqueue(conn, list(self.rows(tenant, written)))

    def rows(self, tenant: str, written: list[Written]) -> Iterable[outbox.Queued]:
        for w in written:
            for integration, event in events_for(w.type, w.data):
                if integration in self.integrations:
                    a = w.appended
                    yield outbox.Queued(tenant, integration, event, a.seq, a.stream,
                                        webhook_id(integration, a.event_id))
