"""Discrepancies in the ledger: decisions, the read model, history and time travel.

The state a command is judged against is read under the log-head lock from the
`discrepancies` row, written in the same transaction as every entry of its stream, but only
when it hashes to the state digest the stream's latest entry records (`meta.state_sha256`);
otherwise it is replayed from the stream's entries. Queries use the same table.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
import psycopg
from psycopg.types.json import Jsonb

from indelible import domain
from indelible.entry import Actor as EntryActor
from indelible.entry import (NewEntry, b64, decode_entry, format_time, recorded_meta,
                             time_ordered_ids)
from indelible.proofs import canonical_json
from indelible.store import lookups, severity_policy
from indelible.store.appender import Change, Decision
from indelible.store.errors import AppendRefusedError

PREFIX = "disc/"

log = logging.getLogger(__name__)


class DomainRefusedError(AppendRefusedError):
    """A domain rule refused the command; `.error` is the domain's own refusal."""

    def __init__(self, error: domain.DomainError):
        super().__init__(str(error))
        self.error = error


def stream_of(discrepancy_id: str) -> str:
    return PREFIX + discrepancy_id


def new_id() -> str:
    return new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` fresh discrepancy ids (time-ordered UUIDv7) from one clock read and one
    urandom call: ingestion names a batch's new discrepancies at once."""
    return [str(i) for i in time_ordered_ids(datetime.now(timezone.utc), count)]


def open_key(source: str, external_ref: str) -> str:
    """One discrepancy per (tenant, source, external_ref): a repeated report is decided
    against the one its key opened. Hashed, so any lengths fit the key column and no client
    key can spell it."""
    return "open:" + hashlib.sha256(orjson.dumps([source, external_ref])).hexdigest()


def decision(discrepancy_id: str, command, actor: domain.Actor,
             idempotency_key: str | None = None, *, request_key: str | None = None,
             request_sha256: str | None = None, with_entry=None) -> Decision:
    """The appender's Decision for a domain command on one discrepancy.

    A report (OpenDiscrepancy) follows its key: reported before, it is decided against the
    discrepancy it opened (an amendment, or nothing when identical). A new one without a
    severity gets it from the tenant's policy as it stands under the log-head lock.
    `request_key` and `request_sha256` are a client's Idempotency-Key and request
    fingerprint (see Decision). `with_entry` writes rows that belong to the entry, in its
    transaction, only if it is appended.
    """
    stream = stream_of(discrepancy_id)
    opening = isinstance(command, domain.OpenDiscrepancy)
    reads = (severity_policy.STREAM,) if opening and command.severity is None else ()

    def decide(state: domain.Discrepancy | None,
               policy: severity_policy.PolicyRecord | None = None) -> NewEntry | None:
        again = opening and state is not None  # a re-report: decided on what its key opened
        target = state.id if again else discrepancy_id
        try:
            event = domain.decide(state, command, actor, discrepancy_id=target,
                                  severity_policy=policy.policy if policy else domain.BUILT_IN)
        except domain.DuplicateDiscrepancyError:
            return None  # reported again exactly as recorded: nothing new to say
        except domain.DomainError as e:
            raise DomainRefusedError(e) from e
        kind = "system" if actor.role == domain.Role.SYSTEM else "user"
        return NewEntry(stream=stream_of(target), type=str(event.type), data=event.data,
                        actor=EntryActor(actor.id, str(actor.role), kind),
                        idempotency_key=None if again else idempotency_key)
    return Decision(stream, decide, idempotency_key, follows_key=opening,
                    request_key=request_key, request_sha256=request_sha256, reads=reads,
                    with_entry=with_entry)


def _apply(state: domain.Discrepancy | None, entry: bytes) -> tuple[domain.Discrepancy, dict]:
    """The state after one stored entry, and the entry's document."""
    document = decode_entry(bytes(entry))
    event = domain.Event(type=domain.EventType(document["type"]), data=document["data"])
    return domain.evolve(state, event, at=document["at"]), document


def state_digest(state: domain.Discrepancy) -> str:
    """SHA-256 (hex) of the state as compact JSON with sorted keys (orjson): what an entry
    records in `meta.state_sha256`, and what the read-model row must hash to be trusted.
    Deterministic for the state's strings, integers, booleans, nulls, lists and objects;
    orjson rather than the canonical encoder because it runs for every decided entry, at a
    fifth of the cost (measured on the ingest path), and only this code recomputes it."""
    return hashlib.sha256(orjson.dumps(state.to_dict(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _vouched(stream: str, row_state: dict | None, latest: bytes) -> domain.Discrepancy | None:
    """The row's state if it hashes to what the stream's latest entry recorded, else None."""
    recorded = recorded_meta(orjson.loads(bytes(latest))).get("state_sha256")
    if row_state is None or recorded is None:
        return None
    try:
        state = domain.Discrepancy.from_dict(row_state)
        if state_digest(state) == recorded:
            return state
    except Exception:  # noqa: BLE001 - a malformed row is as untrustworthy as an edited one
        pass
    log.warning("read model of %s does not match its ledger entries; deciding from the "
                "ledger (indelible verify names the row)", stream)
    return None


class Discrepancies:
    """StreamModel of `disc/…` streams."""

    def owns(self, stream: str) -> bool:
        return stream.startswith(PREFIX)

    def load(self, conn, tenant, streams):
        """The state of each stream, for deciding: a command costs the same on the tenth
        entry and the ten thousandth, because the read-model row is used, not a replay —
        but only when the ledger vouches for it. Each entry a decision appends records the
        SHA-256 of the state it leads to (`meta.state_sha256`, hashed and signed with the
        entry); a row whose state does not hash to what the stream's latest entry recorded
        (edited by someone with a database login, rebuilt, or older than the digests) is
        not trusted, and that stream is replayed from its entries instead. A stream without
        entries has no state, whatever row may claim one: it is neither read nor replayed
        (ingestion opens a new discrepancy with nearly every message)."""
        streams = list(dict.fromkeys(streams))
        with lookups.generic_plans(conn):  # see lookups.py: a tenant statistics do not know
            latest = conn.execute(_LATEST, {"t": tenant, "streams": streams,
                                            "ids": [_row_id(s) for s in streams]})
        states: dict[str, domain.Discrepancy] = {}
        stale = []
        for stream, entry, row_state in latest.fetchall():
            state = _vouched(stream, row_state, entry)
            if state is None:
                stale.append(stream)
            else:
                states[stream] = state
        return {**states, **self.replay(conn, tenant, stale)} if stale else states

    @staticmethod
    def replay(conn, tenant: str, streams: list[str]) -> dict[str, domain.Discrepancy]:
        """Each stream's state folded from all its entries."""
        with lookups.generic_plans(conn):
            rows = conn.execute(_ENTRIES, {"t": tenant, "streams": list(dict.fromkeys(streams))})
        states: dict[str, domain.Discrepancy] = {}
        for stream, entry in rows.fetchall():
            states[stream], _ = _apply(states.get(stream), entry)
        return states

    def evolve(self, state, change: Change):
        event = domain.Event(type=domain.EventType(change.type), data=change.data)
        return domain.evolve(state, event, at=change.at)

    def digest(self, stream: str, state: domain.Discrepancy) -> str:
        return state_digest(state)

    def project(self, conn, tenant, states):
        # A discrepancy at version 1 was opened by this batch and has no row yet: those are
        # COPied in where the role may (COPY FROM under row-level security needs BYPASSRLS,
        # which migration 8 grants when it can). The rest are upserts, pipelined by
        # executemany: one round trip while the log head is locked.
        copy_new = _bypasses_rls(conn)
        new, changed = [], []
        for d in states.values():
            (new if copy_new and d.version == 1 else changed).append(d)
        with conn.cursor() as cur:
            if new:
                with cur.copy(_COPY_NEW) as copy:
                    for d in new:
                        copy.write_row(_row(tenant, d, orjson.dumps(d.to_dict()).decode()))
            if changed:
                cur.executemany(_UPSERT, [_row(tenant, d, Jsonb(d.to_dict(), dumps=orjson.dumps))
                                          for d in changed])
        for d in states.values():
            if d.status in domain.TERMINAL:
                _freeze(conn, tenant, d)


# Per-stream probes down (tenant_id, stream_id, stream_version), each a LATERAL subquery
# with ORDER BY, which PostgreSQL does not flatten into a join, sent with generic plans
# (lookups.py). For a tenant its statistics did not know yet, `stream_id = ANY(…)` was
# planned as a scan of the tenant's whole log, and `id = ANY(…)` on the read model as a
# scan of its (tenant_id, source, external_ref) index (24 ms and 34 ms for 500 streams at
# 60k entries; here 4.9 ms for 1,000 streams and 2.2 ms for 500); under a custom plan these
# probes would be worse still (a scan per stream: 23 s), hence the generic plans.
_LATEST = (  # each stream's latest entry, and the row of its canonical spelling if any
    "SELECT k.s, v.entry, r.state FROM unnest(%(streams)s::text[], %(ids)s::uuid[]) AS k(s, id) "
    "CROSS JOIN LATERAL (SELECT entry FROM ledger_entries WHERE tenant_id = %(t)s "
    "  AND stream_id = k.s ORDER BY stream_version DESC LIMIT 1) AS v "
    "LEFT JOIN LATERAL (SELECT state FROM discrepancies WHERE tenant_id = %(t)s "
    "  AND id = k.id LIMIT 1) AS r ON true")
_ENTRIES = (  # every entry of each stream, in seq order
    "SELECT k.s, e.entry FROM unnest(%(streams)s::text[]) WITH ORDINALITY AS k(s, n) "
    "CROSS JOIN LATERAL (SELECT seq, entry FROM ledger_entries "
    "  WHERE tenant_id = %(t)s AND stream_id = k.s ORDER BY stream_version) AS e "
    "ORDER BY k.n, e.seq")


def _row_id(stream: str) -> uuid.UUID | None:
    """The id of the read-model row that holds this stream's state: only a stream spelt as
    stream_of spells its id has one (another spelling of the same UUID is another stream)."""
    u = _uuid(stream[len(PREFIX):])
    return u if u is not None and stream_of(str(u)) == stream else None


def _row(tenant: str, d: domain.Discrepancy, state) -> tuple:
    return (tenant, d.id, d.external_ref, d.source, str(d.kind), d.currency, d.expected_amount,
            d.actual_amount, d.difference, str(d.severity), str(d.status), d.assignee,
            d.detected_at, d.opened_at, d.updated_at, d.version, state)


_BYPASS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _bypasses_rls(conn: psycopg.Connection) -> bool:
    """Whether this connection's role bypasses row-level security (asked once per connection)."""
    if conn not in _BYPASS:
        _BYPASS[conn] = conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles "
                                     "WHERE rolname = current_user").fetchone()[0]
    return _BYPASS[conn]


def _freeze(conn: psycopg.Connection, tenant: str, d: domain.Discrepancy) -> None:
    """Snapshot a decided discrepancy once, as it stood at the entry that decided it (later
    entries, such as comments in the same batch, are not part of the decision)."""
    if conn.execute("SELECT 1 FROM resolution_snapshots WHERE tenant_id = %s AND "
                    "discrepancy_id = %s", (tenant, d.id)).fetchone():
        return
    rows = conn.execute("SELECT seq, entry, leaf_hash FROM ledger_entries WHERE tenant_id = %s "
                        "AND stream_id = %s ORDER BY seq", (tenant, stream_of(d.id))).fetchall()
    seq, snapshot, digest = freeze(rows)
    conn.execute("INSERT INTO resolution_snapshots (tenant_id, discrepancy_id, seq, snapshot, "
                 "history_digest) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                 (tenant, d.id, seq, snapshot, digest))


def freeze(rows) -> tuple[int, bytes, bytes]:
    """(seq, snapshot bytes, history digest) of a stream's (seq, entry, leaf_hash) rows, up to
    the entry that decided it. Pure: the verifier recomputes stored snapshots with it."""
    state, history = None, []
    for seq, entry, leaf in rows:
        state, _ = _apply(state, entry)
        history.append([seq, b64(bytes(leaf))])
        if state.status in domain.TERMINAL:
            break
    return history[-1][0], *render_snapshot(state, history)


def render_snapshot(state: domain.Discrepancy, history: list) -> tuple[bytes, bytes]:
    """(snapshot bytes, history digest) of a decided discrepancy and its [seq, leaf] list."""
    digest = hashlib.sha256(canonical_json(history)).digest()
    snapshot = canonical_json({"discrepancy": state.to_dict(), "history": {
        "entries": len(history), "first_seq": history[0][0], "last_seq": history[-1][0],
        "digest_sha256": digest.hex(),
        "digest_rule": "SHA-256 of the canonical JSON list of [seq, base64 leaf hash]"}})
    return snapshot, digest


def snapshot(conn: psycopg.Connection, tenant: str, discrepancy_id: str) -> dict | None:
    row = conn.execute("SELECT seq, snapshot, created_at FROM resolution_snapshots "
                       "WHERE tenant_id = %s AND discrepancy_id = %s",
                       (tenant, _uuid(discrepancy_id))).fetchone()
    if row is None:
        return None
    return {"seq": row[0], "frozen_at": format_time(row[2]), **orjson.loads(bytes(row[1]))}


_UPSERT = """
INSERT INTO discrepancies (tenant_id, id, external_ref, source, kind, currency, expected_amount,
    actual_amount, difference, severity, status, assignee, detected_at, opened_at, updated_at,
    version, state)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, id) DO UPDATE SET kind = EXCLUDED.kind,
    currency = EXCLUDED.currency, expected_amount = EXCLUDED.expected_amount,
    actual_amount = EXCLUDED.actual_amount, difference = EXCLUDED.difference,
    severity = EXCLUDED.severity,
    status = EXCLUDED.status, assignee = EXCLUDED.assignee, updated_at = EXCLUDED.updated_at,
    version = EXCLUDED.version, state = EXCLUDED.state
"""


_COPY_NEW = """
COPY discrepancies (tenant_id, id, external_ref, source, kind, currency, expected_amount,
    actual_amount, difference, severity, status, assignee, detected_at, opened_at, updated_at,
    version, state) FROM STDIN
"""


def find_by_ref(conn: psycopg.Connection, tenant: str, source: str, external_ref: str) -> str | None:
    row = conn.execute("SELECT id::text FROM discrepancies WHERE tenant_id = %s AND source = %s "
                       "AND external_ref = %s", (tenant, source, external_ref)).fetchone()
    return row[0] if row else None


def current(conn: psycopg.Connection, tenant: str, discrepancy_id: str) -> dict | None:
    row = conn.execute("SELECT state FROM discrepancies WHERE tenant_id = %s AND id = %s",
                       (tenant, _uuid(discrepancy_id))).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class HistoryItem:
    seq: int
    at: str
    type: str
    actor_id: str
    role: str
    status_before: str | None
    status_after: str
    leaf_hash: bytes
    data: dict


def history(conn: psycopg.Connection, tenant: str, discrepancy_id: str, *,
            until_seq: int | None = None, until_time: datetime | None = None,
            after_seq: int = -1, limit: int | None = None
            ) -> tuple[domain.Discrepancy | None, list[HistoryItem]]:
    """The entries about the discrepancy in order (up to a seq or a time; a page of `limit`
    after `after_seq`), and the state after the last one returned. Entries before the page
    are folded for the status; nothing after the page is read."""
    where = ("tenant_id = %(t)s AND stream_id = %(s)s AND seq <= %(until)s "
             "AND recorded_at <= %(at)s")
    cur = conn.execute(
        f"(SELECT seq, entry, leaf_hash FROM ledger_entries WHERE {where} AND seq <= %(after)s) "
        f"UNION ALL (SELECT seq, entry, leaf_hash FROM ledger_entries WHERE {where} "
        "AND seq > %(after)s ORDER BY seq LIMIT %(limit)s) ORDER BY seq",
        {"t": tenant, "s": stream_of(discrepancy_id),
         "until": until_seq if until_seq is not None else 2**62,
         "at": until_time or datetime.max.replace(tzinfo=timezone.utc), "after": after_seq,
         "limit": limit})
    state, items = None, []
    for seq, entry, leaf in cur:
        before = state.status.value if state else None
        state, document = _apply(state, entry)
        if seq <= after_seq:
            continue
        items.append(HistoryItem(seq, document["at"], document["type"], document["actor"]["id"],
                                 document["actor"]["role"], before, state.status.value,
                                 bytes(leaf), document["data"]))
    return state, items


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


__all__ = ["DomainRefusedError", "Discrepancies", "current", "decision", "find_by_ref",
           "history", "new_id", "open_key", "stream_of"]


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    severity: str | None = None
    source: str | None = None
    assignee: str | None = None
    ref_contains: str | None = None
    opened_after: datetime | None = None
    opened_before: datetime | None = None


def list_page(conn: psycopg.Connection, tenant: str, filters: Filters, *, limit: int,
              after: tuple[datetime, str] | None = None, oldest_first: bool = False) -> list[dict]:
    """Newest first (or oldest first); `after` is the (opened_at, id) of the last item of
    the previous page, so pages stay stable while new discrepancies arrive (keyset, not
    offset)."""
    where, args = _where(tenant, filters)
    if after is not None:
        where.append(f"(opened_at, id) {'>' if oldest_first else '<'} (%s, %s)")
        args += [after[0], _uuid(after[1])]
    order = "ASC" if oldest_first else "DESC"
    rows = conn.execute(f"SELECT state FROM discrepancies WHERE {' AND '.join(where)} "
                        f"ORDER BY opened_at {order}, id {order} LIMIT %s", (*args, limit))
    return [r[0] for r in rows]


def counts(conn: psycopg.Connection, tenant: str, filters: Filters) -> dict:
    where, args = _where(tenant, filters)
    rows = conn.execute(f"SELECT status, severity, count(*) FROM discrepancies "
                        f"WHERE {' AND '.join(where)} GROUP BY status, severity", args).fetchall()
    by_status: dict[str, int] = {s.value: 0 for s in domain.Status}
    by_severity: dict[str, int] = {s.value: 0 for s in domain.Severity}
    for status, severity, n in rows:
        by_status[status] += n
        by_severity[severity] += n
    return {"total": sum(by_status.values()), "by_status": by_status, "by_severity": by_severity}


def _where(tenant: str, f: Filters) -> tuple[list[str], list]:
    where, args = ["tenant_id = %s"], [tenant]
    for column in ("status", "severity", "source", "assignee"):
        value = getattr(f, column)
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    if f.ref_contains:
        escaped = f.ref_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("external_ref ILIKE %s")
        args.append(f"%{escaped}%")
    if f.opened_after is not None:
        where.append("opened_at > %s")
        args.append(f.opened_after)
    if f.opened_before is not None:
        where.append("opened_at < %s")
        args.append(f.opened_before)
    return where, args
