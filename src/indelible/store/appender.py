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

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from uuid import UUID

import psycopg

from indelible.entry import EncodedEntry, EntryError, NewEntry, decode_entry, encode_entry
from indelible.store.errors import (AppendRefusedError, IdempotencyConflictError,
                                    InvalidEntryError, StoreError, StoreUnavailableError,
                                    VersionConflictError)
from indelible.store.logs import read_head

log = logging.getLogger(__name__)

COPY_ENTRIES = ("COPY ledger_entries (tenant_id, seq, entry, leaf_hash, event_id, stream_id, "
                "stream_version, type, recorded_at, actor_id, idempotency_key) "
                "FROM STDIN (FORMAT BINARY)")
COPY_TYPES = ["text", "int8", "bytea", "bytea", "uuid", "text", "int8", "text", "timestamptz",
              "text", "text"]


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


Outcome = Appended | AppendRefusedError


def append_batch(conn: psycopg.Connection, tenant: str,
                 commands: Sequence[NewEntry]) -> list[Outcome]:
    """Append `commands` to `tenant`'s log in one transaction; one outcome per command."""
    with conn.transaction():
        head = read_head(conn, tenant, lock=True)
        replays = _existing_by_key(conn, tenant, commands)
        versions = _stream_versions(conn, tenant, commands)
        at = datetime.now(timezone.utc)
        frontier, prev, seq = head.frontier, head.last_leaf_hash, head.size
        outcomes: list[Outcome] = []
        rows, nodes = [], []
        for command in commands:
            outcome = _replay_or_refusal(command, replays, versions)
            if outcome is None:
                encoded = _encode(command, head.origin, seq, prev, versions, at)
                if isinstance(encoded, AppendRefusedError):
                    outcome = encoded
                else:
                    prev = hashlib.sha256(b"\x00" + encoded.entry).digest()
                    nodes += frontier.append(prev)
                    rows.append((encoded, prev))
                    versions[command.stream] = encoded.version
                    outcome = _appended(tenant, encoded, prev)
                    if command.idempotency_key is not None:
                        replays[command.idempotency_key] = (outcome, command)
                    seq += 1
            outcomes.append(outcome)
        if rows:
            _write(conn, tenant, rows, nodes, frontier, prev)
    return outcomes


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


def _encode(command: NewEntry, origin: str, seq: int, prev: bytes | None, versions: dict,
            at: datetime) -> EncodedEntry | AppendRefusedError:
    try:
        command.check()
        return encode_entry(command, origin=origin, seq=seq, prev=prev,
                            version=versions.get(command.stream, 0) + 1, at=at)
    except EntryError as e:
        return InvalidEntryError(str(e))


def _appended(tenant: str, e: EncodedEntry, leaf: bytes) -> Appended:
    return Appended(tenant=tenant, seq=e.seq, event_id=e.event_id, stream=e.stream,
                    version=e.version, leaf_hash=leaf, recorded_at=e.recorded_at, entry=e.entry)


def _existing_by_key(conn: psycopg.Connection, tenant: str,
                     commands: Sequence[NewEntry]) -> dict[str, tuple[Appended, None]]:
    keys = [c.idempotency_key for c in commands if c.idempotency_key is not None]
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT idempotency_key, seq, event_id, stream_id, stream_version, leaf_hash, "
        "recorded_at, entry FROM ledger_entries "
        "WHERE tenant_id = %s AND idempotency_key = ANY(%s)", (tenant, keys))
    return {key: (Appended(tenant, seq, event_id, stream, version, bytes(leaf), at, bytes(entry),
                           replayed=True), None)
            for key, seq, event_id, stream, version, leaf, at, entry in rows}


def _stream_versions(conn: psycopg.Connection, tenant: str,
                     commands: Sequence[NewEntry]) -> dict[str, int]:
    streams = list({c.stream for c in commands})
    # One index probe per stream on (tenant_id, stream_id, stream_version).
    rows = conn.execute(
        "SELECT s, (SELECT max(stream_version) FROM ledger_entries "
        "           WHERE tenant_id = %s AND stream_id = s) "
        "FROM unnest(%s::text[]) AS s", (tenant, streams))
    return {stream: version for stream, version in rows if version is not None}


def _write(conn: psycopg.Connection, tenant: str, rows: list, nodes: list, frontier,
           last_leaf: bytes) -> None:
    with conn.cursor() as cur:
        with cur.copy(COPY_ENTRIES) as copy:
            copy.set_types(COPY_TYPES)
            for e, leaf in rows:
                copy.write_row((tenant, e.seq, e.entry, leaf, e.event_id, e.stream, e.version,
                                e.type, e.recorded_at, e.actor_id, e.idempotency_key))
        if nodes:
            cur.executemany("INSERT INTO merkle_nodes (tenant_id, level, idx, hash) "
                            "VALUES (%s, %s, %s, %s)",
                            [(tenant, level, idx, h) for level, idx, h in nodes])
        cur.execute("UPDATE log_heads SET size = %s, last_leaf_hash = %s, frontier = %s, "
                    "updated_at = now() WHERE tenant_id = %s",
                    (frontier.size, last_leaf, frontier.to_bytes(), tenant))


class GroupCommitAppender:
    """Batches commands from any number of threads into group commits.

    One writer thread owns one connection. While it commits a batch, new commands queue up
    and become the next batch, so the commit cost is shared by everyone who waited.
    """

    def __init__(self, *, conninfo: str, batch_max: int = 2000, batch_wait: float = 0.002):
        self._conninfo = conninfo
        self._batch_max = batch_max
        self._batch_wait = batch_wait
        self._queue: queue.Queue = queue.Queue()
        self._conn: psycopg.Connection | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="appender", daemon=True)
        self._thread.start()

    def submit(self, tenant: str, command: NewEntry) -> Future:
        if self._closed:
            raise StoreError("the appender is closed")
        future: Future = Future()
        self._queue.put((tenant, command, future))
        return future

    def append(self, tenant: str, command: NewEntry, timeout: float | None = 30) -> Appended:
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
            batch = self._next_batch()
            if batch is None:
                return
            by_tenant: dict[str, list] = {}
            for item in batch:
                by_tenant.setdefault(item[0], []).append(item)
            for tenant, items in by_tenant.items():
                self._commit(tenant, items)

    def _next_batch(self) -> list | None:
        """Everything already queued, plus what arrives within `batch_wait`, up to the cap."""
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + self._batch_wait
        while len(batch) < self._batch_max:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # keep the stop signal for the outer loop
                break
            batch.append(item)
        return batch

    def _commit(self, tenant: str, items: list) -> None:
        try:
            outcomes = append_batch(self._connection(), tenant, [c for _, c, _ in items])
        except StoreError as e:
            for _, _, future in items:
                future.set_exception(e)
            return
        except psycopg.Error as e:
            self._drop_connection()
            error = StoreUnavailableError(f"append to {tenant!r} failed, nothing was written: {e}")
            error.__cause__ = e
            for _, _, future in items:
                future.set_exception(error)
            return
        for (_, _, future), outcome in zip(items, outcomes):
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
