"""Group commit: many threads hand commands to one writer, which batches them per tenant.

Commands that arrive while a commit is in flight form the next batch (up to `batch_max`, or
after waiting `batch_wait` for company), so one transaction — one lock of the log head, one
COPY — carries many callers' entries. Each caller gets its own outcome: `append_batch`
refuses one command without failing its batch-mates.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import psycopg

from indelible import metrics
from indelible.store.appender import AppendHook, Appended, Command, StreamModel, append_batch
from indelible.store.errors import (AppendRefusedError, CommitOutcomeUnknownError,
                                    InvalidEntryError, StoreError, StoreUnavailableError)
from indelible.store.known_streams import KnownStreams

log = logging.getLogger(__name__)


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
                 model: StreamModel | None = None, hooks: Sequence[AppendHook] = ()):
        self._conninfo = conninfo
        self._model = model
        self._hooks = tuple(hooks)  # run inside each batch's transaction (see AppendHook)
        # What the writer remembers of the streams it wrote, valid while each tenant's head
        # is the one it left (see KnownStreams): decisions then skip reloading states.
        self._known = KnownStreams()
        self._batch_max = batch_max
        self._batch_wait = batch_wait
        self._queue: queue.Queue = queue.Queue()
        self._conn: psycopg.Connection | None = None
        self._closed = False
        # Held by a submit from its closed-check to its put, and by close() while it closes:
        # a command is queued before the stop signal or refused, never left after it unread.
        self._closing = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="appender", daemon=True)
        self._thread.start()

    def submit(self, tenant: str, command: Command) -> Future:
        return self.submit_many(tenant, [command])[0]

    def submit_many(self, tenant: str, commands: Sequence[Command]) -> list[Future]:
        """Queue commands in order; each future resolves to Appended or its refusal."""
        pending = [(command, Future()) for command in commands]
        self._put(tenant, pending)
        return [future for _, future in pending]

    def submit_batch(self, tenant: str, commands: Sequence[Command]) -> Future:
        """Queue commands in order; one future resolves to their outcomes, in order: each an
        Appended or the exception its own future would have raised. For many commands this
        is cheaper than submit_many (no Future each) and wakes a waiting event loop once."""
        outcomes = _Outcomes(len(commands))
        self._put(tenant, [(command, _Slot(outcomes, i)) for i, command in enumerate(commands)])
        return outcomes.future

    def _put(self, tenant: str, pending: list) -> None:
        with self._closing:
            if self._closed:
                raise StoreError("the appender is closed")
            if pending:  # nothing to append: no empty transaction
                self._queue.put((tenant, pending))

    def append(self, tenant: str, command: Command, timeout: float | None = 30) -> Appended:
        """Append and wait; raises the command's AppendRefusedError when it is refused."""
        return self.submit(tenant, command).result(timeout)

    def close(self) -> None:
        with self._closing:
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
                # A command whose caller cancelled its future before the writer took it is
                # not appended; one taken can no longer be cancelled (setting the outcome of
                # a cancelled future would raise here and end the writer thread).
                by_tenant.setdefault(tenant, []).extend(
                    p for p in pending if p[1].set_running_or_notify_cancel())
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
        started = time.perf_counter()
        try:
            outcomes = append_batch(self._connection(), tenant, [p for p, _ in pending],
                                    model=self._model, hooks=self._hooks, known=self._known)
        except StoreError as e:
            if isinstance(e, CommitOutcomeUnknownError):
                self._drop_connection()
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
        _observe(tenant, outcomes, time.perf_counter() - started)
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


def _observe(tenant: str, outcomes: list, seconds: float) -> None:
    """Metrics of one committed batch, counted per type first: one labelled increment per
    distinct type, not per entry, keeps this off the appender's hot path."""
    metrics.BATCH_SIZE.observe(len(outcomes))
    metrics.APPEND_SECONDS.observe(seconds)
    types: dict[tuple, int] = {}
    for outcome in outcomes:
        if isinstance(outcome, AppendRefusedError):
            key = (metrics.REFUSALS, type(outcome).__name__)
        elif outcome.replayed:
            continue
        else:
            key = (metrics.APPENDS, _entry_type(outcome.entry))
        types[key] = types.get(key, 0) + 1
    for (family, label), count in types.items():
        family.labels(tenant, label).inc(count)


def _entry_type(entry: bytes) -> str:
    # Canonical JSON sorts keys: the top-level "type" is the last one but "v", after "data"
    # and "meta", so the last occurrence is it (a string value cannot hold an unescaped quote).
    at = entry.rfind(b'"type":"')
    if at < 0:
        return "unknown"
    start = at + 8
    return entry[start:entry.index(b'"', start)].decode()


class _Outcomes:
    """The outcomes of one submit_batch, filled in by the writer thread alone."""

    __slots__ = ("future", "values", "left", "live")

    def __init__(self, count: int):
        self.future: Future = Future()
        self.values: list = [None] * count
        self.left = count
        self.live: bool | None = None  # taken by the writer and not cancelled; None: not yet
        if count == 0:
            self.future.set_result([])

    def take(self) -> bool:
        """Whether the writer should append these commands (see GroupCommitAppender._run)."""
        if self.live is None:
            self.live = self.future.set_running_or_notify_cancel()
        return self.live

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

    def set_running_or_notify_cancel(self) -> bool:
        return self.outcomes.take()

    def set_result(self, value: Appended) -> None:
        self.outcomes.set(self.index, value)

    def set_exception(self, error: BaseException) -> None:
        self.outcomes.set(self.index, error)
