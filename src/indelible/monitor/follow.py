"""The incremental verifier's view of one tenant's log, kept in memory and trusting no row
but the entry bytes.

Legal order: `advance` again and again (each call re-reads the entries committed since the
last one, then any checkpoints they reach), with `recheck` in between every few seconds.
  1. each new entry: its seq is the next one (no gap), its leaf hash is recomputed from the
     bytes (the stored column must agree), its `prev` is the leaf hash of the entry before,
     its `log` is the tenant's origin;
  2. each new checkpoint: its signature verifies under a key the log trusts, and the root it
     signs is the root of the entries read (the frontier kept here, never `log_heads` or
     `merkle_nodes`): every entry up to its size is then proven included under it;
  3. `recheck`: the newest `window` entries are read again and must still hash to what was
     read the first time, so an entry edited after it was verified is caught within seconds
     (older ones are the full run's job).
A break found on first reading (1 or 2) halts the follower for that tenant: nothing after it
can be checked against a line that is already broken, and the alarm stands until an operator
acts. A change found by `recheck` does not: what was read first is what the log committed.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass

import orjson
import psycopg

from indelible.proofs import CompactRange, NoteVerifier, ProofError, leaf_hash, open_checkpoint

FETCH = 5_000  # entries read per round trip
_VERSION = "ctid::text || '/' || xmin::text"  # the row version: new after any UPDATE


@dataclass(frozen=True)
class Finding:
    tenant: str
    check: str  # seq | leaf_hash | prev | entry | checkpoint (the verifier report's names)
    detail: str
    seq: int | None
    seq_end: int | None = None  # exclusive, when only a range can be named


def _b64(data: bytes | None) -> str:
    return base64.b64encode(data).decode() if data else ""


class TenantFollower:
    def __init__(self, tenant: str, origin: str, verifiers: list[NoteVerifier], *,
                 window: int = 1_000):
        self.tenant = tenant
        self.origin = origin
        self.verifiers = verifiers
        self.next_seq = 0  # the next entry to read
        self.last_leaf: bytes | None = None
        self.signed = CompactRange()  # the frontier at the last checkpoint proven
        self.tail: list[bytes] = []  # leaf hashes read since then
        # (seq, leaf, row version) of the newest entries, to recheck
        self.recent: deque[tuple[int, bytes, str]] = deque(maxlen=window)
        self.halted: Finding | None = None

    @property
    def signed_size(self) -> int:
        return self.signed.size

    def advance(self, conn: psycopg.Connection) -> list[Finding]:
        """Read what was committed since the last call (at most FETCH entries); findings."""
        if self.halted is not None:
            return []
        findings: list[Finding] = []
        rows = conn.execute(f"SELECT seq, entry, leaf_hash, {_VERSION} FROM ledger_entries "
                            "WHERE tenant_id = %s AND seq >= %s ORDER BY seq LIMIT %s",
                            (self.tenant, self.next_seq, FETCH)).fetchall()
        for seq, entry, stored, version in rows:
            self._read(seq, bytes(entry), bytes(stored), version, findings)
            if self.halted is not None:
                break
        # Up to a break, what was read still proves the checkpoints it reaches.
        self._checkpoints(conn, findings)
        return findings

    def _read(self, seq: int, entry: bytes, stored: bytes, version: str,
              findings: list[Finding]) -> None:
        # 1.
        if seq != self.next_seq:
            self._halt(findings, "seq", f"entries {self.next_seq}..{seq - 1} are missing",
                       self.next_seq)
            return
        leaf = leaf_hash(entry)
        if leaf != stored:
            self._halt(findings, "leaf_hash", "stored leaf_hash does not match the entry bytes", seq)
            return
        try:
            doc = orjson.loads(entry)
            claimed = (doc["seq"], doc["prev"], doc["log"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            self._halt(findings, "entry", f"entry bytes are not a valid ledger entry: {e!r}", seq)
            return
        if claimed[0] != seq or claimed[2] != self.origin:
            self._halt(findings, "entry", f"entry says seq {claimed[0]} of log {claimed[2]!r}",
                       seq)
            return
        if claimed[1] != _b64(self.last_leaf):
            self._halt(findings, "prev", "prev does not link to the previous entry's leaf hash",
                       seq)
            return
        self.tail.append(leaf)
        self.recent.append((seq, leaf, version))
        self.last_leaf, self.next_seq = leaf, seq + 1

    def _checkpoints(self, conn: psycopg.Connection, findings: list[Finding]) -> None:
        # 2. Only checkpoints within what was read: a later one waits for its entries.
        rows = conn.execute("SELECT size, note FROM checkpoints WHERE tenant_id = %s AND size > %s "
                            "AND size <= %s ORDER BY size",
                            (self.tenant, self.signed.size, self.next_seq)).fetchall()
        for size, note in rows:
            since = self.signed.size
            checkpoint = self._open(note)
            if checkpoint is None:
                self._halt(findings, "checkpoint", f"checkpoint at size {size} is not signed by a "
                           "key this log trusts", since, size)
                return
            if checkpoint.size != size:
                self._halt(findings, "checkpoint", f"checkpoint row says size {size} but its signed "
                           f"note says {checkpoint.size}", since, size)
                return
            frontier = self.signed.copy()
            frontier.extend(self.tail[:size - since])
            if frontier.root() != checkpoint.root_hash:
                self._halt(findings, "checkpoint", f"the entries do not hash to the root signed at "
                           f"size {size}: something in seq {since}..{size - 1} was changed",
                           since, size)
                return
            self.signed, self.tail = frontier, self.tail[size - since:]

    def _open(self, note: str):
        for verifier in self.verifiers:
            try:
                return open_checkpoint(note, verifier, origin=self.origin)
            except ProofError:
                continue
        return None

    def recheck(self, conn: psycopg.Connection, *, deep: bool = False) -> list[Finding]:
        """3. The newest entries again; each one changed or gone since it was read is a finding.

        Any UPDATE or DELETE through PostgreSQL, by anyone, gives a row a new version (its
        `ctid` and `xmin`), so a quick recheck reads only those two columns and re-hashes just
        the rows whose version moved (a VACUUM FULL moves them all: then all are re-hashed,
        and only a real change is a finding). Bytes edited in the data files underneath
        PostgreSQL keep the version: a `deep` recheck re-hashes every entry regardless."""
        if not self.recent:
            return []
        lo, hi = self.recent[0][0], self.recent[-1][0] + 1
        if deep:
            suspects = {seq for seq, _, _ in self.recent}
        else:
            versions = dict(conn.execute(f"SELECT seq, {_VERSION} FROM ledger_entries WHERE "
                                         "tenant_id = %s AND seq >= %s AND seq < %s",
                                         (self.tenant, lo, hi)).fetchall())
            suspects = {seq for seq, _, version in self.recent if versions.get(seq) != version}
        if not suspects:
            return []
        rows = dict(conn.execute("SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s AND "
                                 "seq = ANY(%s)", (self.tenant, sorted(suspects))).fetchall())
        findings = []
        for seq, leaf, _ in self.recent:
            if seq not in suspects:
                continue
            entry = rows.get(seq)
            if entry is None:
                findings.append(Finding(self.tenant, "seq", f"entry {seq} was verified and is now "
                                        "missing", seq))
            elif leaf_hash(bytes(entry)) != leaf:
                findings.append(Finding(self.tenant, "leaf_hash", f"entry {seq} was changed after "
                                        "it was verified: its bytes no longer hash to its leaf",
                                        seq))
        return findings

    def _halt(self, findings: list[Finding], check: str, detail: str, seq: int | None,
              seq_end: int | None = None) -> None:
        self.halted = Finding(self.tenant, check, detail, seq, seq_end)
        findings.append(self.halted)
