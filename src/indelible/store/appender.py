"""The single path into the ledger (DESIGN section 4).

`append_batch` writes one tenant's batch in one transaction:
  1. lock the tenant's log head FOR UPDATE: every process appending to this tenant queues
     here, so seq, prev and the Merkle frontier always extend one line;
  2. look up idempotency keys and current stream versions *inside* the transaction, after
     the lock, so a retried or stale command is judged against committed truth;
  3. per command: replay → the original entry; refusal → that command's error only;
     otherwise encode, hash and extend the frontier;
  4. COPY the entries, insert the completed tile-level Merkle nodes, move the head; commit.

`GroupCommitAppender` feeds `append_batch` from many threads: commands that arrive while
a commit is in flight are batched into the next one (group commit).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Protocol
from datetime import datetime, timezone
from hashlib import sha256
from uuid import UUID

import psycopg

from indelible.entry import (EntryError, NewEntry, PreparedEntry, b64, decode_entry,
                             encode_prepared, format_time, log_json, prepare_entry,
                             time_ordered_ids)
from indelible.store.errors import (AppendRefusedError, IdempotencyConflictError,
                                    InvalidEntryError, StoreError, StoreUnavailableError,
                                    VersionConflictError)
from indelible.store.copy_rows import COPY_SQL, EntryRows
from indelible.store.logs import LogHead, read_head

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Appended:
    """What the caller gets back: where its entry sits in the log."""

    tenant: str
    seq: int
    event_id: UUID
    stream: str
    version: int
    leaf_hash: bytes
    recorded_at: datetime
    entry: bytes
    replayed: bool = False  # True: an earlier append with this idempotency key is returned
    state: Any = None  # the stream's read-model state right after this entry, if modeled


Outcome = Appended | AppendRefusedError


@dataclass(frozen=True)
class Decision:
    """A command whose entry depends on its stream's current state.

    `decide` is called inside the appending transaction, after the log head is locked, with
    the state the batch's `StreamModel` loaded (evolved by earlier batch-mates): a stale tab
    or a concurrent move is judged against committed truth, never against what the caller
    saw. It returns the entry to append, or raises an AppendRefusedError to refuse.
    A retried Decision with an already-used idempotency key returns the original entry
    without deciding again.
    """

    stream: str
    decide: Callable[[Any], NewEntry]
    idempotency_key: str | None = None
    # True when the key names a fact independent of the stream (e.g. "this report opened a
    # discrepancy"): a replay then returns the original whatever stream it landed on.
    key_spans_streams: bool = False
    # Rows that exist only because this entry does (an evidence file's bytes): written in the
    # same transaction, and only when the decision appends an entry (not on a refusal or a
    # replay), so a refused command leaves nothing behind in append-only tables.
    with_entry: Callable[[psycopg.Connection, str], None] | None = None


class StreamModel(Protocol):
    """A read model kept in the same transaction as the entries it is derived from.

    Every entry appended to a stream the model owns evolves that stream's state, whether it
    came from a Decision or a plain NewEntry.
    """

    def owns(self, stream: str) -> bool:
        """Whether this model keeps a state for `stream`."""

    def load(self, conn: psycopg.Connection, tenant: str, streams: list[str]) -> dict[str, Any]:
        """Current state of each stream that has one."""

    def evolve(self, state: Any, appended: Appended) -> Any:
        """The state after one more entry."""

    def project(self, conn: psycopg.Connection, tenant: str, states: dict[str, Any]) -> None:
        """Store the new states of the streams this batch changed."""


Command = NewEntry | PreparedEntry | Decision


def prepare(command: NewEntry | PreparedEntry) -> PreparedEntry | InvalidEntryError:
    """Check and pre-encode a command; needs no log state, so it runs before any lock."""
    if isinstance(command, PreparedEntry):
        return command
    try:
        return prepare_entry(command)
    except EntryError as e:
        return InvalidEntryError(str(e))


def append_batch(conn: psycopg.Connection, tenant: str, commands: Sequence[Command], *,
                 model: StreamModel | None = None) -> list[Outcome]:
    """Append `commands` to `tenant`'s log in one transaction; one outcome per command.

    Decisions need a `model`: its states are loaded under the lock, evolved entry by entry,
    and projected before the commit, so the read model never disagrees with the log.
    """
    items = [c if isinstance(c, Decision) else prepare(c) for c in commands]
    if model is None and any(isinstance(i, Decision) for i in items):
        raise ValueError("Decision commands need a StreamModel")
    live = [i for i in items if not isinstance(i, AppendRefusedError)]
    keys = [k for k in map(_key, live) if k is not None]
    streams = list({_stream(i) for i in live})
    with conn.transaction():
        # Row-level security on read models keys on this setting; it ends with the transaction.
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        head = read_head(conn, tenant, lock=True)
        replays = _existing_by_key(conn, tenant, keys)
        versions = _stream_versions(conn, tenant, streams)
        modeled = [s for s in streams if model is not None and model.owns(s)]
        states = model.load(conn, tenant, modeled) if modeled else {}
        batch = _Batch(tenant, head, len(items), model, states)
        with conn.cursor() as cur:
            # Rows stream to the server while later ones are still being hashed, so
            # PostgreSQL ingests in parallel with this loop instead of after it.
            with cur.copy(COPY_SQL) as copy:
                outcomes = [i if isinstance(i, AppendRefusedError)
                            else batch.add(i, replays, versions, copy) for i in items]
                copy.write(batch.rows.drain(last=True))
            if batch.rows.count:
                batch.finish(conn, cur)
    return outcomes


def _key(item: PreparedEntry | Decision) -> str | None:
    return item.idempotency_key if isinstance(item, Decision) else item.command.idempotency_key


def _stream(item: PreparedEntry | Decision) -> str:
    return item.stream if isinstance(item, Decision) else item.command.stream


class _Batch:
    """The entries of one transaction: seq, prev, hashes, frontier and the COPY stream."""

    STREAM_EVERY = 256  # rows per write to the COPY stream

    def __init__(self, tenant: str, head: LogHead, expected: int, model: StreamModel | None,
                 states: dict[str, Any]):
        self.tenant = tenant
        self.model, self.states, self.changed = model, states, set()
        self.with_entry: list[Callable[[psycopg.Connection, str], None]] = []
        self.at = datetime.now(timezone.utc)
        self.at_text = format_time(self.at)
        self.log = log_json(head.origin)
        self.ids = iter(time_ordered_ids(self.at, expected))
        self.seq, self.prev, self.frontier = head.size, head.last_leaf_hash, head.frontier
        self.nodes: list[tuple[int, int, bytes]] = []
        self.rows = EntryRows(tenant, self.at)

    def add(self, item: PreparedEntry | Decision, replays: dict, versions: dict, copy) -> Outcome:
        if isinstance(item, Decision):
            return self._decide(item, replays, versions, copy)
        p = item
        command = p.command
        refused = _replay_or_refusal(command, replays, versions)
        if refused is not None:
            return refused
        version = versions.get(command.stream, 0) + 1
        event_id = next(self.ids)
        entry = encode_prepared(p, log=self.log, seq=self.seq, prev=b64(self.prev) if self.prev else "",
                                event_id=str(event_id), at=self.at_text, version=version)
        leaf = sha256(b"\x00" + entry).digest()
        self.nodes += self.frontier.append(leaf)
        self.rows.add(self.seq, entry, leaf, event_id.bytes, command.stream, version,
                      command.type, command.actor.id, command.idempotency_key)
        if self.rows.pending >= self.STREAM_EVERY:
            copy.write(self.rows.drain())
        appended = Appended(self.tenant, self.seq, event_id, command.stream, version, leaf,
                            self.at, entry)
        if self.model is not None and self.model.owns(command.stream):
            state = self.model.evolve(self.states.get(command.stream), appended)
            self.states[command.stream] = state
            self.changed.add(command.stream)
            appended = replace(appended, state=state)
        versions[command.stream] = version
        if command.idempotency_key is not None:
            replays[command.idempotency_key] = (appended, command)
        self.seq, self.prev = self.seq + 1, leaf
        return appended

    def _decide(self, d: Decision, replays: dict, versions: dict, copy) -> Outcome:
        if d.idempotency_key is not None and d.idempotency_key in replays:
            original = replays[d.idempotency_key][0]
            if original.stream != d.stream and not d.key_spans_streams:  # used for something else
                return IdempotencyConflictError(d.idempotency_key, original.seq)
            return _as_replay(original)
        try:
            command = d.decide(self.states.get(d.stream))
        except AppendRefusedError as refused:
            return refused
        if command.stream != d.stream or command.idempotency_key != d.idempotency_key:
            raise ValueError(f"decision for {d.stream!r} returned an entry for {command.stream!r} "
                             "or with another idempotency key")
        p = prepare(command)
        if isinstance(p, AppendRefusedError):
            return p
        appended = self.add(p, replays, versions, copy)
        if d.with_entry is not None and isinstance(appended, Appended) and not appended.replayed:
            self.with_entry.append(d.with_entry)
        return appended

    def finish(self, conn: psycopg.Connection, cur: psycopg.Cursor) -> None:
        """Store the completed Merkle nodes, the changed read models; move the log head."""
        if self.changed:
            self.model.project(conn, self.tenant, {s: self.states[s] for s in self.changed})
        for write in self.with_entry:
            write(conn, self.tenant)
        if self.nodes:
            cur.executemany("INSERT INTO merkle_nodes (tenant_id, level, idx, hash) "
                            "VALUES (%s, %s, %s, %s)",
                            [(self.tenant, level, idx, h) for level, idx, h in self.nodes])
        cur.execute("UPDATE log_heads SET size = %s, last_leaf_hash = %s, frontier = %s, "
                    "updated_at = now() WHERE tenant_id = %s",
                    (self.frontier.size, self.prev, self.frontier.to_bytes(), self.tenant))


def _replay_or_refusal(command: NewEntry, replays: dict, versions: dict) -> Outcome | None:
    key = command.idempotency_key
    if key is not None and key in replays:
        original, original_command = replays[key]
        if not _same_command(command, original_command, original):
            return IdempotencyConflictError(key, original.seq)
        return _as_replay(original)
    expected = command.expected_version
    actual = versions.get(command.stream, 0)
    if expected is not None and expected != actual:
        return VersionConflictError(command.stream, expected, actual)
    return None


def _same_command(command: NewEntry, original_command: NewEntry | None, original: Appended) -> bool:
    if original_command is not None:
        return (command.stream, command.type, dict(command.data)) == (
            original_command.stream, original_command.type, dict(original_command.data))
    stored = decode_entry(original.entry)
    return (command.stream, command.type, dict(command.data)) == (
        stored["stream"], stored["type"], stored["data"])


def _as_replay(original: Appended) -> Appended:
    return original if original.replayed else replace(original, replayed=True)


def _existing_by_key(conn: psycopg.Connection, tenant: str,
                     keys: list[str]) -> dict[str, tuple[Appended, None]]:
    if not keys:
        return {}
    # Per key, an index-ordered probe that only the (tenant_id, idempotency_key) index can
    # serve: statistics that do not yet know a new tenant cannot steer it elsewhere (with
    # `tenant_id = $1 AND key = ANY(...)` the planner was seen walking the tenant's log).
    rows = conn.execute(
        "SELECT e.idempotency_key, e.seq, e.event_id, e.stream_id, e.stream_version, "
        "       e.leaf_hash, e.recorded_at, e.entry "
        "FROM unnest(%(keys)s::text[]) AS k, LATERAL ("
        "  SELECT * FROM ledger_entries WHERE (tenant_id, idempotency_key) >= (%(t)s, k)"
        "  AND (tenant_id, idempotency_key) <= (%(t)s, k)"
        "  ORDER BY tenant_id, idempotency_key LIMIT 1) AS e", {"keys": keys, "t": tenant})
    return {key: (Appended(tenant, seq, event_id, stream, version, bytes(leaf), at, bytes(entry),
                           replayed=True), None)
            for key, seq, event_id, stream, version, leaf, at, entry in rows}


def _stream_versions(conn: psycopg.Connection, tenant: str, streams: list[str]) -> dict[str, int]:
    if not streams:
        return {}
    # Likewise: one backward probe per stream down (tenant_id, stream_id, stream_version).
    rows = conn.execute(
        "SELECT s, v.stream_version FROM unnest(%(streams)s::text[]) AS s, LATERAL ("
        "  SELECT stream_version FROM ledger_entries"
        "  WHERE (tenant_id, stream_id, stream_version) >= (%(t)s, s, 0)"
        "  AND (tenant_id, stream_id, stream_version) <= (%(t)s, s, 9223372036854775807)"
        "  ORDER BY tenant_id DESC, stream_id DESC, stream_version DESC LIMIT 1) AS v",
        {"streams": streams, "t": tenant})
    return dict(rows.fetchall())


class GroupCommitAppender:
    """Batches commands from any number of threads into group commits.

    One writer thread owns one connection. While it commits a batch, new commands queue up
    and become the next batch, so the commit cost is shared by everyone who waited; with
    `batch_wait` > 0 it also lingers that long for company before committing a lone command.
    All Python work happens on the writer thread: producers only enqueue. (Preparing in the
    producers looked attractive, but under the GIL busy producers starve the writer, which
    then cannot feed the database; measured slower.)
    """

    def __init__(self, *, conninfo: str, batch_max: int = 2000, batch_wait: float = 0.0,
                 model: StreamModel | None = None):
        self._conninfo = conninfo
        self._model = model
        self._batch_max = batch_max
        self._batch_wait = batch_wait
        self._queue: queue.Queue = queue.Queue()
        self._conn: psycopg.Connection | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="appender", daemon=True)
        self._thread.start()

    def submit(self, tenant: str, command: Command) -> Future:
        return self.submit_many(tenant, [command])[0]

    def submit_many(self, tenant: str, commands: Sequence[Command]) -> list[Future]:
        """Queue commands in order; each future resolves to Appended or its refusal."""
        if self._closed:
            raise StoreError("the appender is closed")
        pending = [(command, Future()) for command in commands]
        self._queue.put((tenant, pending))
        return [future for _, future in pending]

    def submit_batch(self, tenant: str, commands: Sequence[Command]) -> Future:
        """Queue commands in order; one future resolves to their outcomes, in order: each an
        Appended or the exception its own future would have raised. For many commands this
        is cheaper than submit_many (no Future each) and wakes a waiting event loop once."""
        if self._closed:
            raise StoreError("the appender is closed")
        outcomes = _Outcomes(len(commands))
        self._queue.put((tenant, [(command, _Slot(outcomes, i))
                                  for i, command in enumerate(commands)]))
        return outcomes.future

    def append(self, tenant: str, command: Command, timeout: float | None = 30) -> Appended:
        """Append and wait; raises the command's AppendRefusedError when it is refused."""
        return self.submit(tenant, command).result(timeout)

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._conn is not None:
            self._conn.close()

    def _run(self) -> None:
        while True:
            items = self._next_items()
            if items is None:
                return
            by_tenant: dict[str, list] = {}
            for tenant, pending in items:
                by_tenant.setdefault(tenant, []).extend(pending)
            for tenant, pending in by_tenant.items():
                self._commit(tenant, pending)

    def _next_items(self) -> list | None:
        """Everything already queued (plus what arrives within `batch_wait`), up to the cap."""
        first = self._queue.get()
        if first is None:
            return None
        items, count = [first], len(first[1])
        deadline = time.monotonic() + self._batch_wait
        while count < self._batch_max:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # keep the stop signal for the outer loop
                break
            items.append(item)
            count += len(item[1])
        return items

    def _commit(self, tenant: str, pending: list) -> None:
        try:
            outcomes = append_batch(self._connection(), tenant, [p for p, _ in pending],
                                    model=self._model)
        except StoreError as e:
            for _, future in pending:
                future.set_exception(e)
            return
        except psycopg.errors.DataError as e:
            # Something in one command's data was refused by the database (the whole batch
            # rolled back). Retry one by one so only that command fails, not its batch-mates.
            if len(pending) > 1:
                for item in pending:
                    self._commit(tenant, [item])
                return
            pending[0][1].set_exception(InvalidEntryError(f"the database refused this entry: {e}"))
            return
        except psycopg.Error as e:
            self._drop_connection()
            error = StoreUnavailableError(f"append to {tenant!r} failed, nothing was written: {e}")
            error.__cause__ = e
            for _, future in pending:
                future.set_exception(error)
            return
        except Exception as e:  # a bug or corrupt state must fail this batch, not the writer
            log.exception("append batch for tenant %r failed unexpectedly", tenant)
            self._drop_connection()
            for _, future in pending:
                future.set_exception(e)
            return
        for (_, future), outcome in zip(pending, outcomes):
            if isinstance(outcome, AppendRefusedError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class _Outcomes:
    """The outcomes of one submit_batch, filled in by the writer thread alone."""

    __slots__ = ("future", "values", "left")

    def __init__(self, count: int):
        self.future: Future = Future()
        self.values: list = [None] * count
        self.left = count
        if count == 0:
            self.future.set_result([])

    def set(self, index: int, value: Any) -> None:
        self.values[index] = value
        self.left -= 1
        if self.left == 0:
            self.future.set_result(self.values)


class _Slot:
    """One command's place in an _Outcomes; the writer settles it as it would a Future."""

    __slots__ = ("outcomes", "index")

    def __init__(self, outcomes: _Outcomes, index: int):
        self.outcomes, self.index = outcomes, index

    def set_result(self, value: Appended) -> None:
        self.outcomes.set(self.index, value)

    def set_exception(self, error: BaseException) -> None:
        self.outcomes.set(self.index, error)
