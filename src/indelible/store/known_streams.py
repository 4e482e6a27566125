"""What one appender knows of its tenants' streams, as of the log head it last wrote.

After each commit the appender remembers, per tenant, the head it left (size and last leaf
hash) with the stream versions it read or wrote and the read-model states it evolved. The
next batch reads the head under the lock anyway; when it is still that head, nobody has
appended since, so those versions and states are the current ones and need no lookup.

Why that is valid:
- the last leaf hash commits, through `prev`, to every entry of the log before it, so a
  head with the same size and last leaf hash is the log this process left, whichever
  process or database connection asks; any foreign append (another worker, another
  appender in this process) moves the head, and then everything remembered for the tenant
  is dropped before anything is decided;
- only a committed batch is remembered, after its COMMIT returned: a batch rolled back (or
  whose COMMIT outcome is unknown) leaves nothing here, and its tenant is forgotten;
- the states are the ones this process computed itself with the model's `evolve` from the
  entries it appended, the same states the batch projected and whose digest it recorded in
  those entries' `meta.state_sha256`: at least as trustworthy as a read-model row, which
  `load` accepts only when it hashes to that digest. States the batch merely loaded are not
  kept (a model may derive one stream's state from another's entries, e.g. escalation
  periods from discrepancy streams), so what is kept never depends on a row;
- nothing read from the database outside the lock is used, and a cache miss only costs the
  lookup the appender would have made anyway.
One instance belongs to one appender (one writer thread, one model): states evolved by one
model are not valid for another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from indelible.store.logs import LogHead

# Streams remembered in all tenants together (a discrepancy's state is ~1-2 KB, so at most
# ~100 MB): past it, the least recently written tenants are forgotten first, then the
# oldest quarter of the last one's streams.
MAX_STREAMS = 50_000

NO_STATE = object()  # a version known without its state (no model owns the stream)


@dataclass
class _Memo:
    size: int
    last_leaf_hash: bytes | None
    streams: dict[str, tuple[int, Any]] = field(default_factory=dict)  # stream -> (version, state)


class KnownStreams:
    """Per tenant: the head this appender last left, and its streams' versions and states."""

    def __init__(self) -> None:
        self._memos: dict[str, _Memo] = {}

    def candidates(self, tenant: str) -> dict[str, tuple[int, Any]]:
        """What is remembered for `tenant`, before the head is known: usable only once
        `confirmed` says the head is still the one it was remembered at."""
        memo = self._memos.get(tenant)
        return memo.streams if memo is not None else {}

    def confirmed(self, tenant: str, head: LogHead) -> bool:
        """Whether the remembered streams are current at `head` (read under the lock);
        when not, they are dropped."""
        memo = self._memos.get(tenant)
        if memo is None:
            return False
        if (memo.size, memo.last_leaf_hash) == (head.size, head.last_leaf_hash):
            return True
        del self._memos[tenant]
        return False

    def forget(self, tenant: str) -> None:
        self._memos.pop(tenant, None)

    def remember(self, tenant: str, before: LogHead, size: int, last_leaf_hash: bytes | None,
                 versions: dict[str, int], states: dict[str, Any]) -> None:
        """After a COMMIT: the head it left, every version read or written under its lock
        (`versions`) and the states it evolved (`states`). What was remembered at `before`
        (the head the batch found) carries over; at any other head it was already stale."""
        memo = self._memos.pop(tenant, None)
        kept = memo.streams if memo is not None and (memo.size, memo.last_leaf_hash) == (
            before.size, before.last_leaf_hash) else {}
        for stream, version in versions.items():
            old = kept.pop(stream, None)  # re-inserted last: the oldest stay first
            if stream in states:
                state = states[stream]
            elif old is not None and old[0] == version:
                state = old[1]
            else:  # appended without the model evolving it, or never loaded
                state = NO_STATE
            kept[stream] = (version, state)
        self._memos[tenant] = _Memo(size, last_leaf_hash, kept)  # most recently used last
        self._bound()

    def _bound(self) -> None:
        total = sum(len(memo.streams) for memo in self._memos.values())
        while total > MAX_STREAMS:
            oldest = next(iter(self._memos))
            if len(self._memos) > 1:
                total -= len(self._memos.pop(oldest).streams)
                continue
            streams = self._memos[oldest].streams
            for stream in list(islice(streams, total - MAX_STREAMS * 3 // 4)):
                del streams[stream]
            total = len(streams)
