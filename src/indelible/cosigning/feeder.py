"""Feeding one witness: every tenant's latest checkpoint, with a consistency proof.

One thread per witness, with its own database connection, so a witness that is down or slow
delays nobody: not the appender, not the checkpointer (which never waits for a witness), not
the other witnesses. Each pass:
  1. list each tenant's latest checkpoint this witness has not cosigned (from the database);
  2. submit it with `old` = the size the witness last cosigned, as far as we know: learned
     from a 409 (its `text/x.tlog.size` body), else the largest size it cosigned here, else
     0 — and the consistency proof from that size, read from the stored hashes;
  3. a 200 answer's cosignature is verified under the witness's key before it is stored;
     anything else is recorded as the witness's last error and retried on a later pass.
A witness that cannot be reached is retried with exponential backoff (up to `max_backoff`).
Only the latest checkpoint is submitted: a witness vouches for the largest tree it saw, so
cosigning every intermediate one would add nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import psycopg

from indelible.cosigning.client import WitnessClient, WitnessUnreachableError
from indelible.cosigning.config import ConfiguredWitness
from indelible.proofs import AddCheckpoint, ProofError
from indelible.proofs.cosignature import split_note, verify_cosignature_line
from indelible.proofs.tlog_witness import SIZE_MEDIA_TYPE, parse_size_body
from indelible.store.cosignatures import insert_cosignature, latest_cosigned, uncosigned_latest
from indelible.store.errors import LogIntegrityError
from indelible.store.tree import StoredTree

log = logging.getLogger(__name__)

REFUSED_RETRY = 30.0  # seconds before a checkpoint the witness refused is offered again


@dataclass
class WitnessStatus:
    """What /metrics and the API show about one witness (updated by its feeder thread)."""

    witness: ConfiguredWitness
    cosigned: int = 0  # cosignatures stored since start
    failures: int = 0  # passes or submissions that failed since start
    behind: int = 0  # tenants whose latest checkpoint it had not cosigned, at the last pass
    up: bool = False  # the last request got an answer
    last_error: str | None = None
    last_success: float | None = None  # time.time() of the last stored cosignature
    latencies: list[float] = field(default_factory=list)  # seconds per cosigning, last 1000

    def failed(self, message: str) -> None:
        self.failures += 1
        self.last_error = message


class WitnessFeeder:
    def __init__(self, *, conninfo: str, witness: ConfiguredWitness, poll: float = 0.5,
                 timeout: float = 10.0, max_backoff: float = 30.0):
        self.witness = witness
        self.status = WitnessStatus(witness)
        self._conninfo = conninfo
        self._client = WitnessClient(witness.url, timeout=timeout)
        self._poll, self._max_backoff = poll, max_backoff
        self._known: dict[str, int] = {}  # tenant -> size the witness last cosigned
        self._refused: dict[tuple[str, int], float] = {}  # (tenant, size) -> when
        # tenant -> size whose cosignature this feeder stored: skipped even where row-level
        # security hides the stored rows from a role without BYPASSRLS (weak isolation).
        self._stored: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"witness {witness.name}",
                                        daemon=True)

    def start(self) -> WitnessFeeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._client.close()

    def run_once(self, conn: psycopg.Connection) -> int:
        """Submit every tenant's pending checkpoint; returns how many were cosigned."""
        now = time.monotonic()
        pending = [p for p in uncosigned_latest(conn, self.witness.key_text)
                   if self._stored.get(p[0]) != p[1]
                   and now - self._refused.get((p[0], p[1]), -REFUSED_RETRY) >= REFUSED_RETRY]
        self.status.behind = len(pending)
        done = 0
        for tenant, size, note in pending:
            if self._submit(conn, tenant, size, note):
                done += 1
                self.status.behind -= 1
            else:
                self._refused[(tenant, size)] = time.monotonic()
        return done

    def _run(self) -> None:
        conn, backoff = None, self._poll
        while not self._stop.wait(backoff):
            try:
                conn = conn if conn and not conn.closed else psycopg.connect(self._conninfo,
                                                                             autocommit=True)
                self.run_once(conn)
                backoff = self._poll
            except WitnessUnreachableError as e:
                self.status.up = False
                self.status.failed(f"unreachable: {e}")
                backoff = min(max(backoff * 2, 1.0), self._max_backoff)
                log.warning("witness %s unreachable (retrying in %.0f s): %s",
                            self.witness.name, backoff, e)
            except psycopg.Error:
                log.warning("witness feeder lost its database connection", exc_info=True)
                if conn is not None:
                    conn.close()
                conn, backoff = None, min(max(backoff * 2, 1.0), self._max_backoff)
            except Exception:  # noqa: BLE001 - a bug must not end witnessing silently
                log.exception("witness feeder for %s failed; retrying", self.witness.name)
                backoff = min(max(backoff * 2, 1.0), self._max_backoff)
        if conn is not None:
            conn.close()

    def _submit(self, conn: psycopg.Connection, tenant: str, size: int, note: str) -> bool:
        old = self._known.get(tenant)
        if old is None:
            row = latest_cosigned(conn, tenant, self.witness.key_text)
            # A stored row is only a hint (the database's word, not the witness's): one beyond
            # our own latest checkpoint cannot be ours, so start from 0 and let a 409 teach us.
            old = row.size if row and row.size <= size else 0
        started = time.monotonic()
        for _ in range(3):  # a 409 teaches the witness's size; then the request is redone
            if old > size:
                return self._refusal(tenant, size, f"the witness has cosigned size {old}, "
                                     f"larger than our latest checkpoint ({size})", critical=True)
            try:
                proof = StoredTree(conn, tenant).consistency_proof(old, size) \
                    if 0 < old < size else []
            except LogIntegrityError as e:
                return self._refusal(tenant, size, f"no consistency proof: {e}", critical=True)
            reply = self._client.add_checkpoint(AddCheckpoint(old, tuple(proof), note))
            self.status.up = True
            if reply.status == 200:
                return self._store(conn, tenant, size, note, reply.body, started)
            if reply.status == 409 and reply.content_type.startswith(SIZE_MEDIA_TYPE):
                try:
                    theirs = parse_size_body(reply.body)
                except ProofError as e:
                    return self._refusal(tenant, size, f"409 with a bad size body: {e}")
                if theirs == old:  # same size, another root: the witness saw a different tree
                    return self._refusal(tenant, size, f"409: the witness holds another tree "
                                         f"at size {old}", critical=True)
                self._known[tenant] = old = theirs
                continue
            return self._refusal(tenant, size, f"HTTP {reply.status}: {reply.body.strip()[:300]}",
                                 critical=reply.status == 422)
        return self._refusal(tenant, size, "the witness's size kept changing (3 conflicts)")

    def _store(self, conn, tenant: str, size: int, note: str, body: str, started: float) -> bool:
        signed, _ = split_note(note)
        key = self.witness.key
        for line in body.splitlines():
            try:
                timestamp = verify_cosignature_line(line, key, signed)
            except ProofError as e:
                return self._refusal(tenant, size, f"a bad cosignature line: {e}")
            if timestamp is None:
                continue  # another key of the witness's: not one we were told to trust
            insert_cosignature(conn, tenant, size, key.key_text(), line, timestamp)
            self._known[tenant] = self._stored[tenant] = size
            self.status.cosigned += 1
            self.status.last_success = time.time()
            self.status.last_error = None
            self.status.latencies = self.status.latencies[-999:] + [time.monotonic() - started]
            return True
        return self._refusal(tenant, size, "200 without a cosignature from its key")

    def _refusal(self, tenant: str, size: int, why: str, critical: bool = False) -> bool:
        message = f"tenant {tenant!r} checkpoint {size}: {why}"
        self.status.failed(message)
        (log.critical if critical else log.warning)("witness %s refused or failed: %s",
                                                    self.witness.name, message)
        return False
