"""The single path into the ledger (DESIGN section 4).

`append_batch` writes one tenant's batch in one transaction:
  1. lock the tenant's log head FOR UPDATE: every process appending to this tenant queues
     here, so seq, prev and the Merkle frontier always extend one line;
  2. look up idempotency keys (the service's, and clients' request keys) and current stream
     versions *inside* the transaction, after the lock, so a retried or stale command is
     judged against committed truth (lock and lookups go out in one pipelined round trip,
     and the commands are checked and encoded while the server answers; versions and states
     this appender wrote itself are remembered while the head is the one it left, see
     known_streams.py);
  3. per command: replay → the original entry; refusal → that command's error only;
     otherwise encode, hash and extend the frontier;
  4. COPY the entries, insert the completed tile-level Merkle nodes, move the head; run the
     hooks (rows that exist because these entries do, e.g. the outbox); commit.

`GroupCommitAppender` (group_commit.py) feeds `append_batch` from many threads: commands
that arrive while a commit is in flight are batched into the next one (group commit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Protocol
from uuid import UUID

import orjson
import psycopg
from psycopg.pq import TransactionStatus

from indelible.entry import (EntryError, NewEntry, PreparedEntry, b64, decode_entry,
                             encode_prepared, format_time, log_json, prepare_entry,
                             recorded_meta, time_ordered_ids)
from indelible.proofs import leaf_hash
from indelible.store import lookups
from indelible.store.copy_rows import COPY_SQL, EntryRows
from indelible.store.errors import (AppendRefusedError, CommitOutcomeUnknownError,
                                    IdempotencyConflictError, InvalidEntryError,
                                    VersionConflictError)
from indelible.store.known_streams import NO_STATE, KnownStreams
from indelible.store.logs import HEAD_SQL, LogHead, head_of

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
class Change:
    """One entry as a read model sees it: what it says and where it sits. The appender builds
    it from the command it is about to encode (the bytes are never parsed back); rebuilds and
    the verifier build it from stored entries with `of_entry`."""

    seq: int
    stream: str
    version: int
    type: str
    data: Any  # the entry's "data" object
    actor_id: str
    at: str  # the entry's "at": RFC 3339, UTC, microseconds
    recorded_at: datetime

    @classmethod
    def of_entry(cls, seq: int, stream: str, version: int, entry: bytes,
                 recorded_at: datetime) -> Change:
        document = decode_entry(bytes(entry))
        return cls(seq, stream, version, document["type"], document["data"],
                   document["actor"]["id"], document["at"], recorded_at)


@dataclass(frozen=True)
class Decision:
    """A command whose entry depends on its stream's current state.

    `decide` is called inside the appending transaction, after the log head is locked, with
    the state the batch's `StreamModel` loaded (evolved by earlier batch-mates), followed by
    the states of the streams named in `reads`: a stale tab, a concurrent move or a policy
    changed meanwhile is judged against committed truth, never against what the caller saw.
    It returns the entry to append, or raises an AppendRefusedError to refuse.

    Two kinds of key make retries safe:
    - `idempotency_key`, the service's: one fact, recorded once (e.g. "the report of this
      source and external_ref"). A retry returns the original entry without deciding again;
      with `follows_key` it is decided again against the stream the key landed on instead
      (a re-report is judged against what it opened), and `decide` returns an entry for that
      stream without the key, or None when there is nothing new (the original is returned).
    - `request_key` with `request_sha256`, a client's Idempotency-Key and the fingerprint of
      its request: one request, answered once. Both go into the entry's meta (evidence) and
      the key into `request_keys`; a reuse with another fingerprint is refused
      (IdempotencyConflictError naming the entry the key produced), the same request gets
      the original entry back. A request that appended nothing binds no key.
    """

    stream: str
    decide: Callable[..., NewEntry | None]
    idempotency_key: str | None = None
    follows_key: bool = False
    request_key: str | None = None
    request_sha256: str | None = None
    reads: tuple[str, ...] = ()  # streams, owned by the model, whose states decide also gets
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

    def evolve(self, state: Any, change: Change) -> Any:
        """The state after one more entry."""

    def digest(self, stream: str, state: Any) -> str | None:
        """SHA-256 (hex) of the state, recorded in the meta of the entry a Decision appends
        (`meta.state_sha256`), so a later `load` can tell a stored state the ledger vouches
        for from one somebody edited; None: this model records none."""

    def project(self, conn: psycopg.Connection, tenant: str, states: dict[str, Any]) -> None:
        """Store the new states of the streams this batch changed."""


@dataclass(frozen=True)
class Written:
    """A new entry as an append hook sees it: where it sits and what it says (from the
    command, never parsed back from the bytes)."""

    appended: Appended
    type: str
    data: Any  # the entry's "data" object
    actor: Any  # the entry's Actor


class AppendHook(Protocol):
    """Writes rows that exist because certain entries do (the outbound integrations'
    outbox), in the appending transaction: they commit with those entries or not at all.

    `types` names the entry types the hook is told about; a batch holding none of them
    costs it nothing. Replayed entries (idempotency keys) are never passed again."""

    types: frozenset[str]

    def __call__(self, conn: psycopg.Connection, tenant: str, written: list[Written]) -> None:
        """Called once per batch with its new entries of `types`, in seq order."""


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
                 model: StreamModel | None = None, hooks: Sequence[AppendHook] = (),
                 known: KnownStreams | None = None) -> list[Outcome]:
    """Append `commands` to `tenant`'s log in one transaction; one outcome per command.

    Decisions need a `model`: its states are loaded under the lock, evolved entry by entry,
    and projected before the commit, so the read model never disagrees with the log.
    `hooks` see the batch's new entries of their types before the commit (see AppendHook).
    `known`: what this appender remembers of the streams it wrote (see KnownStreams), used
    when the locked head is still the one it left, and updated after the commit.
    """
    _check_reads(commands, model)
    if known is not None and conn.info.transaction_status != TransactionStatus.IDLE:
        # What `known` remembers is true once this transaction commits; inside an outer
        # one that may still roll back, it could remember entries that never were.
        raise ValueError("append_batch with `known` must run its own, outermost transaction")
    try:
        with _CommitWatch(tenant) as watch, conn.transaction():
            items, found = _look_up(conn, tenant, commands, model, known)
            batch = _Batch(tenant, found.head, len(items), model, found.states, found.answered,
                           hooks)
            with conn.cursor() as cur:
                # Rows stream to the server while later ones are still being hashed, so
                # PostgreSQL ingests in parallel with this loop instead of after it.
                with cur.copy(COPY_SQL) as copy:
                    outcomes = [i if isinstance(i, AppendRefusedError)
                                else batch.add(i, found.replays, found.versions, copy)
                                for i in items]
                    copy.write(batch.rows.drain(last=True))
                if batch.rows.count:
                    batch.finish(conn, cur)
            watch.committing = True
    except BaseException:
        if known is not None:  # rolled back, or its outcome unknown: remember nothing
            known.forget(tenant)
        raise
    if known is not None:
        known.remember(tenant, found.head, batch.seq, batch.prev, found.versions,
                       {s: batch.states[s] for s in batch.changed})
    return outcomes


@dataclass
class _Found:
    """What a batch is judged against, read under the log-head lock."""

    head: LogHead
    replays: dict[str, tuple[Appended, NewEntry | None]]  # idempotency key -> its entry
    answered: dict[str, Appended]  # request key -> the entry its first request produced
    versions: dict[str, int]  # stream -> current version (absent: no entries)
    states: dict[str, Any]  # stream -> the model's current state


def _look_up(conn: psycopg.Connection, tenant: str, commands: Sequence[Command],
             model: StreamModel | None, known: KnownStreams | None) -> tuple[list, _Found]:
    """Lock the head and read what the batch is judged against, in one round trip; while
    the server works on it, check and encode the commands (`prepare`): the batch's items,
    and what they are judged against.

    The statements go out in one pipeline, so they run in order on the server: every
    lookup runs after the head's row lock is held, and is committed truth. The keys and
    streams probed are read off the commands before they are checked; an invalid command's
    lookups are merely unused. Streams the appender remembers are not looked up; if the
    head turns out not to be the one it left, they are looked up after all (a second round
    trip, only after a foreign append)."""
    candidates = known.candidates(tenant) if known is not None else {}
    keys = [k for k in map(_key, commands) if _storable(k)]
    requests = [c.request_key for c in commands  # "" too: _decide records it like any key
                if isinstance(c, Decision) and _storable(c.request_key)]
    wanted = _own_streams(commands)
    probed = [s for s in wanted if s not in candidates]
    with conn.pipeline():
        # Row-level security on read models keys on this setting; it ends with the transaction.
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (tenant,))
        head_row = conn.execute(HEAD_SQL + " FOR UPDATE", (tenant,))
        conn.execute(lookups.GENERIC_PLANS)  # see lookups.py: a new tenant's log
        by_key = lookups.send_by_key(conn, tenant, keys)
        by_request = lookups.send_by_request(conn, tenant, requests)
        by_stream = lookups.send_versions(conn, tenant, probed)
        conn.execute(lookups.USUAL_PLANS)
        # Sent, not yet answered: preparing needs no log state, so it runs while the server
        # waits for the lock and probes the indexes, not after.
        items = [c if isinstance(c, Decision) else prepare(c) for c in commands]
    live = [i for i in items if not isinstance(i, AppendRefusedError)]
    head = head_of(tenant, head_row.fetchone())
    remembered = candidates if known is not None and known.confirmed(tenant, head) else {}
    replays = {k: (a, None) for k, a in _found_by_key(tenant, by_key).items()}
    streams = wanted + _followed(live, replays, wanted)
    versions = {s: remembered[s][0] for s in streams if s in remembered}
    versions.update(by_stream.fetchall() if by_stream else ())
    looked_up = set(probed)
    if missing := [s for s in streams if s not in looked_up and s not in remembered]:
        versions.update(lookups.fetch_versions(conn, tenant, missing))
    return items, _Found(head, replays, _found_by_key(tenant, by_request), versions,
                         _states(conn, tenant, model, streams, remembered))


def _states(conn: psycopg.Connection, tenant: str, model: StreamModel | None,
            streams: list[str], remembered: dict) -> dict[str, Any]:
    """The model's state of each stream it owns: remembered (evolved by this appender at
    this very head) or loaded."""
    if model is None:
        return {}
    states, unknown = {}, []
    for s in streams:
        if model.owns(s):
            state = remembered[s][1] if s in remembered else NO_STATE
            if state is NO_STATE:
                unknown.append(s)
            else:
                states[s] = state
    return {**model.load(conn, tenant, unknown), **states} if unknown else states


class _CommitWatch:
    """Tells a failure of COMMIT itself from one before it.

    Before COMMIT the transaction is rolled back and nothing was written. A connection lost
    during COMMIT leaves the outcome unknown to us (the server may have committed just before
    it went); saying "nothing was written" then would be a lie a retry without the same
    idempotency key would turn into a duplicate.
    """

    def __init__(self, tenant: str):
        self.tenant, self.committing = tenant, False

    def __enter__(self) -> _CommitWatch:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.committing and isinstance(error, psycopg.OperationalError):
            raise CommitOutcomeUnknownError(
                f"append to {self.tenant!r}: the connection failed during COMMIT, so whether the "
                f"batch was written is unknown; retry with the same idempotency key to learn "
                f"which ({error})") from error


def _key(item: Command) -> str | None:
    if isinstance(item, PreparedEntry):
        return item.command.idempotency_key
    return item.idempotency_key


def _stream(item: Command) -> str:
    return item.command.stream if isinstance(item, PreparedEntry) else item.stream


def _storable(value: object) -> bool:
    """Whether `value` can be in a text column at all. The lookups read keys and streams off
    commands `prepare` may still refuse; one that cannot be stored (not a string, or with a
    NUL, which PostgreSQL text cannot hold) is in no row, and sending it would fail the
    whole batch instead of that command alone."""
    return isinstance(value, str) and "\x00" not in value


def _own_streams(commands: Sequence[Command]) -> list[str]:
    """Every stream the batch names (that can be stored): its commands' own and the streams
    decisions read."""
    streams = dict.fromkeys(s for s in map(_stream, commands) if _storable(s))
    for c in commands:
        if isinstance(c, Decision):
            streams.update(dict.fromkeys(c.reads))
    return list(streams)


def _followed(live: list, replays: dict, wanted: list[str]) -> list[str]:
    """The streams followed keys landed on, beyond `wanted` (known only once the keys are)."""
    landed = {replays[i.idempotency_key][0].stream for i in live
              if isinstance(i, Decision) and i.follows_key and i.idempotency_key in replays}
    return list(landed.difference(wanted))


def _check_reads(commands: Sequence[Command], model: StreamModel | None) -> None:
    """A read the model does not keep would reach `decide` as None, i.e. "nothing recorded":
    fail closed instead of deciding on a state that was never loaded."""
    for i in commands:
        if isinstance(i, Decision):
            if model is None:
                raise ValueError("Decision commands need a StreamModel")
            unowned = [s for s in i.reads if not model.owns(s)]
            if unowned:
                raise ValueError(f"decision on {i.stream!r} reads {unowned}, which no model keeps")


_UNSET = object()  # a state not evolved yet (None is a state: "nothing recorded")


class _Batch:
    """The entries of one transaction: seq, prev, hashes, frontier and the COPY stream."""

    STREAM_EVERY = 256  # rows per write to the COPY stream

    def __init__(self, tenant: str, head: LogHead, expected: int, model: StreamModel | None,
                 states: dict[str, Any], answered: dict[str, Appended],
                 hooks: Sequence[AppendHook] = ()):
        self.tenant = tenant
        self.hooks = hooks
        self.hooked = frozenset().union(*(h.types for h in hooks))  # types any hook wants
        self.written: list[Written] = []
        self.model, self.states, self.changed = model, states, set()
        self.answered = answered  # request key -> the entry its first request produced
        self.new_requests: list[tuple[str, int]] = []  # (request key, seq) to index
        self.with_entry: list[Callable[[psycopg.Connection, str], None]] = []
        self.at = datetime.now(timezone.utc)
        self.at_text = format_time(self.at)
        self.log = log_json(head.origin)
        self.ids = iter(time_ordered_ids(self.at, expected))
        self.seq, self.prev, self.frontier = head.size, head.last_leaf_hash, head.frontier
        self.prev_b64 = b64(self.prev) if self.prev else ""  # as the next entry's "prev"
        self.nodes: list[tuple[int, int, bytes]] = []
        self.rows = EntryRows(tenant, self.at)

    def add(self, item: PreparedEntry | Decision, replays: dict, versions: dict, copy,
            state: Any = _UNSET) -> Outcome:
        """Append one entry; `state` is the stream's state after it when the caller has
        already evolved it (a Decision that records its digest)."""
        if isinstance(item, Decision):
            return self._decide(item, replays, versions, copy)
        p = item
        command = p.command
        key, stream, seq = command.idempotency_key, command.stream, self.seq
        # The usual command (a new key, no expected version) cannot be refused here.
        if (key is not None and key in replays) or command.expected_version is not None:
            refused = _replay_or_refusal(command, replays, versions)
            if refused is not None:
                return refused
        version = versions.get(stream, 0) + 1
        event_id = next(self.ids)
        entry = encode_prepared(p, log=self.log, seq=seq, prev=self.prev_b64,
                                event_id=str(event_id), at=self.at_text, version=version)
        leaf = leaf_hash(entry)
        self.nodes += self.frontier.append(leaf)
        rows = self.rows
        rows.add(seq, entry, leaf, event_id.bytes, stream, version, command.type,
                 command.actor.id, key)
        if rows.pending >= self.STREAM_EVERY:
            copy.write(rows.drain())
        appended = Appended(self.tenant, seq, event_id, stream, version, leaf, self.at, entry)
        if self.model is not None and self.model.owns(command.stream):
            if state is _UNSET:
                state = self._evolved(command, version)
            self.states[command.stream] = state
            self.changed.add(command.stream)
            appended = replace(appended, state=state)
        versions[stream] = version
        if command.type in self.hooked:
            self.written.append(Written(appended, command.type, command.data, command.actor))
        if key is not None:
            replays[key] = (appended, command)
        self.seq, self.prev, self.prev_b64 = seq + 1, leaf, b64(leaf)
        return appended

    def _evolved(self, command: NewEntry, version: int) -> Any:
        change = Change(self.seq, command.stream, version, command.type, command.data,
                        command.actor.id, self.at_text, self.at)
        return self.model.evolve(self.states.get(command.stream), change)

    def _decide(self, d: Decision, replays: dict, versions: dict, copy) -> Outcome:
        if d.request_key is not None and not _storable(d.request_key):
            return InvalidEntryError(f"request key {d.request_key!r} cannot be stored: "
                                     "not a string, or it holds a NUL")
        if d.request_key is not None and d.request_key in self.answered:
            return _answer(d, self.answered[d.request_key])
        stream, original = d.stream, None
        if d.idempotency_key is not None and d.idempotency_key in replays:
            original = replays[d.idempotency_key][0]
            if not _records_key(original, d.idempotency_key):
                return _key_alarm(original, d.idempotency_key)
            if not d.follows_key:
                if original.stream != d.stream:  # the key was used for something else
                    return IdempotencyConflictError(d.idempotency_key, original.seq,
                                                    original.stream)
                return _as_replay(original)
            stream = original.stream
        try:
            command = d.decide(self.states.get(stream), *map(self.states.get, d.reads))
        except AppendRefusedError as refused:
            return refused
        if command is None and original is not None:
            return _as_replay(original)
        key = d.idempotency_key if original is None else None
        if command is None or command.stream != stream or command.idempotency_key != key:
            raise ValueError(f"decision for {stream!r} returned {command!r}, not an entry for "
                             f"that stream with idempotency key {key!r}")
        if d.request_key is not None:
            command = replace(command, meta={**command.meta, "request_key": d.request_key,
                                             "request_sha256": d.request_sha256})
        state = _UNSET
        if self.model is not None and self.model.owns(command.stream):
            state = self._evolved(command, versions.get(command.stream, 0) + 1)
            digest = self.model.digest(command.stream, state)
            if digest is not None:
                command = replace(command, meta={**command.meta, "state_sha256": digest})
        p = prepare(command)
        if isinstance(p, AppendRefusedError):
            return p
        appended = self.add(p, replays, versions, copy, state)
        if d.request_key is not None and isinstance(appended, Appended):
            self.answered[d.request_key] = appended
            self.new_requests.append((d.request_key, appended.seq))
        if d.with_entry is not None and isinstance(appended, Appended) and not appended.replayed:
            self.with_entry.append(d.with_entry)
        return appended

    def finish(self, conn: psycopg.Connection, cur: psycopg.Cursor) -> None:
        """Store the completed Merkle nodes, the changed read models; move the log head."""
        if self.changed:
            self.model.project(conn, self.tenant, {s: self.states[s] for s in self.changed})
        for write in self.with_entry:
            write(conn, self.tenant)
        for hook in self.hooks:
            if mine := [w for w in self.written if w.type in hook.types]:
                hook(conn, self.tenant, mine)
        with conn.pipeline():  # one round trip for the rest (models and hooks may COPY)
            if self.new_requests:
                cur.executemany("INSERT INTO request_keys (tenant_id, request_key, seq) "
                                "VALUES (%s, %s, %s)",
                                [(self.tenant, key, seq) for key, seq in self.new_requests])
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
        if original_command is None and not _records_key(original, key):
            return _key_alarm(original, key)
        if not _same_command(command, original_command, original):
            return IdempotencyConflictError(key, original.seq, original.stream)
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


def _records_key(original: Appended, key: str) -> bool:
    """Whether the entry found by the idempotency_key column records that key in its own
    hashed meta: the column is an index, the entry is the evidence."""
    return recorded_meta(orjson.loads(original.entry)).get("idempotency_key") == key


def _key_alarm(original: Appended, key: str) -> AppendRefusedError:
    # Only a hand-edited idempotency_key column does this. Taking it as a replay would
    # silently skip the command (an escalation firing, say); refuse it loudly instead.
    message = (f"ledger_entries names seq {original.seq} for idempotency key {key!r}, but "
               "that entry does not record it; refusing the command")
    log.critical("INTEGRITY ALARM: %s", message)
    return AppendRefusedError(message)


def _as_replay(original: Appended) -> Appended:
    return original if original.replayed else replace(original, replayed=True)


def _answer(d: Decision, original: Appended) -> Outcome:
    """The original entry for the same request again; a refusal for a different one.
    Judged by what the entry itself recorded (hashed evidence), not by the index row."""
    meta = recorded_meta(orjson.loads(original.entry))
    if meta.get("request_key") != d.request_key:
        # Only a hand-made request_keys row does this. Refuse this command alone (its
        # batch-mates go on) and say so loudly: the index contradicts the evidence.
        message = (f"request_keys names seq {original.seq} for key {d.request_key!r}, but "
                   "that entry does not record it; refusing the request")
        log.critical("INTEGRITY ALARM: %s", message)
        return AppendRefusedError(message)
    if meta.get("request_sha256") != d.request_sha256:
        return IdempotencyConflictError(d.request_key, original.seq, original.stream)
    return _as_replay(original)


def _found_by_key(tenant: str, cursor) -> dict[str, Appended]:
    """The entries a key lookup found (lookups.send_by_key / send_by_request), by key."""
    if cursor is None:
        return {}
    return {key: Appended(tenant, seq, event_id, stream, version, bytes(leaf), at, bytes(entry),
                          replayed=True)
            for key, seq, event_id, stream, version, leaf, at, entry in cursor}
