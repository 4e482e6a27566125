"""Every delivery outcome is a ledger entry, written with the outbox row's update.

Delivered (status, attempt, duration), a failed attempt (reason, when it is tried again),
parked, integration disabled: each is appended to the stream of the entry that caused the
event (the discrepancy's own, so its history shows that the hub was told), and the row moves
in the same transaction (`Decision.with_entry`). Each outcome has an idempotency key, so
recording it twice — a dispatcher that retries after losing its connection — writes it once.
Events of streams without a read model (a `verification.failed`) record theirs on
`outbox/<integration>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from indelible.entry import Actor, NewEntry
from indelible.outbound.retry import Verdict
from indelible.store import discrepancies, outbox
from indelible.store.appender import Decision
from indelible.store.errors import AppendRefusedError
from indelible.store.outbox import Claimed


@dataclass(frozen=True)
class Attempt:
    """What one attempt at delivering a claimed row came to."""

    row: Claimed
    verdict: Verdict
    reason: str
    status: int | None  # HTTP status; None: no answer
    duration_ms: int
    delay: float = 0.0  # seconds to the next attempt (a retry)
    retry_at: str | None = None  # RFC 3339, for the ledger entry
    # The body rendered for this attempt, to keep in the row with the outcome (None: kept
    # already). Rendering is deterministic, so a sender that dies first loses nothing.
    body: bytes | None = None


def actor(integration: str) -> Actor:
    return Actor(f"outbox:{integration}", "system", "system")


def outcome_stream(row: Claimed) -> str:
    return row.stream if row.stream.startswith(discrepancies.PREFIX) else f"outbox/{row.integration}"


def decision(a: Attempt) -> Decision:
    """The entry recording `a`, and the row's move, as one Decision for the appender."""
    row = a.row
    common = {"integration": row.integration, "event": row.event, "webhook_id": row.webhook_id,
              "source_seq": row.source_seq, "attempt": row.attempt, "round": row.round}
    prefix = f"outbox/{row.webhook_id}/r{row.round}"
    if a.verdict is Verdict.DELIVERED:
        kind, key = "outbox.delivered", f"outbox/{row.webhook_id}/delivered"
        data = {**common, "status": a.status, "duration_ms": a.duration_ms}
        move = lambda conn: outbox.delivered(conn, row.tenant, row.id, a.status)  # noqa: E731
    elif a.verdict is Verdict.RETRY:
        kind, key = "outbox.attempt_failed", f"{prefix}/a{row.attempt}/failed"
        data = {**common, "status": a.status, "reason": a.reason, "retry_at": a.retry_at}
        move = lambda conn: outbox.retry_later(conn, row.tenant, row.id, row.attempt, a.delay,  # noqa: E731
                                               a.status, a.reason)
    elif a.verdict is Verdict.PARK:
        kind, key = "outbox.parked", f"{prefix}/a{row.attempt}/parked"
        data = {**common, "status": a.status, "reason": a.reason}
        move = lambda conn: outbox.park(conn, row.tenant, row.id, row.attempt, a.status, a.reason)  # noqa: E731
    else:
        kind, key = "outbox.integration_disabled", f"{prefix}/a{row.attempt}/disabled"
        data = {**common, "status": a.status, "reason": a.reason}
        move = None  # needs the seq of the entry: see below
    stream = outcome_stream(row)
    entry = NewEntry(stream=stream, type=kind, actor=actor(row.integration), data=data,
                     idempotency_key=key)

    def with_entry(conn, tenant: str) -> None:
        if a.body is not None:
            outbox.store_body(conn, row.tenant, row.id, a.body)
        if move is not None:
            move(conn)
        else:
            seq = conn.execute("SELECT max(seq) FROM ledger_entries WHERE tenant_id = %s "
                               "AND idempotency_key = %s", (tenant, key)).fetchone()[0]
            outbox.hold(conn, row.id, row.attempt, tenant, row.integration,
                        seq if seq is not None else -1, a.status, a.reason)

    def decide(state, *_):
        if state is None and stream.startswith(discrepancies.PREFIX):
            # Refused alone, never folded: an outcome "before discrepancy.opened" would fail
            # the whole batch it was committed with.
            raise AppendRefusedError(f"{stream} has no discrepancy to record {kind} on")
        return entry

    return Decision(stream, decide, idempotency_key=key, with_entry=with_entry)


def settle_replayed(conn, a: Attempt) -> None:
    """The outcome was recorded before (its entry replayed): move the row all the same."""
    row = a.row
    if a.body is not None:
        outbox.store_body(conn, row.tenant, row.id, a.body)
    if a.verdict is Verdict.DELIVERED:
        outbox.delivered(conn, row.tenant, row.id, a.status)
    elif a.verdict is Verdict.RETRY:
        outbox.retry_later(conn, row.tenant, row.id, row.attempt, a.delay, a.status, a.reason)
    elif a.verdict is Verdict.PARK:
        outbox.park(conn, row.tenant, row.id, row.attempt, a.status, a.reason)
    else:
        outbox.hold(conn, row.id, row.attempt, row.tenant, row.integration, -1, a.status,
                    a.reason)
