"""The timestamper: gives every checkpoint an RFC 3161 token, newest first, and catches up.

It runs beside the checkpointer, never in its way: a checkpoint is signed and published
first, and dated afterwards. While the TSA is down each pass fails fast and backs off (up to
a minute); the checkpoints signed meanwhile stay visible as untimestamped
(`GET /v1/logs/{tenant}/timestamps`) until a pass dates them.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from indelible.proofs import NoteVerifier, ProofError, open_checkpoint
from indelible.store import timestamps
from indelible.timestamping.client import TsaClient, TsaError

log = logging.getLogger(__name__)

BATCH = 50  # checkpoints dated per tenant per pass
MAX_BACKOFF = 60.0  # seconds between attempts while the TSA is down


class Timestamper:
    def __init__(self, *, conninfo: str, client: TsaClient, interval: float = 1.0,
                 verifier: NoteVerifier | None = None):
        self._conninfo, self._client, self._interval = conninfo, client, interval
        # The log's key: a note is sent to the TSA only once it verifies as the tenant's
        # checkpoint of that size. The checkpoints table is the database's word, and a row a
        # superuser wrote must not come back dated by a TSA.
        self._verifier = verifier
        self._refused: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timestamper", daemon=True)

    def start(self) -> Timestamper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self, conn: psycopg.Connection) -> int:
        """Date the checkpoints that lack a token; returns how many were dated. Raises
        TsaError at the first one the TSA does not date (the next pass retries)."""
        dated = 0
        tenants = conn.execute("SELECT tenant_id, origin FROM log_heads ORDER BY tenant_id")
        for tenant, origin in tenants.fetchall():
            for size, note in timestamps.untimestamped(conn, tenant, BATCH):
                if not self._genuine(tenant, origin, size, note):
                    continue
                token, when = self._client.stamp(note.encode())
                timestamps.insert_token(conn, tenant, size, token, self._client.url, when)
                dated += 1
        return dated

    def _genuine(self, tenant: str, origin: str, size: int, note: str) -> bool:
        if self._verifier is None:
            return True
        try:
            checkpoint = open_checkpoint(note, self._verifier, origin=origin)
            if checkpoint.size != size:
                raise ProofError(f"the note is of size {checkpoint.size}")
        except ProofError as e:
            if (tenant, size) not in self._refused:  # said once, not every pass
                self._refused.add((tenant, size))
                log.error("not timestamping checkpoint %d of tenant %r: it does not verify "
                          "with the log's key (%s); the checkpoints table was written by "
                          "something other than the signer", size, tenant, e)
            return False
        return True

    def _run(self) -> None:
        conn, wait, failing = None, self._interval, False
        while not self._stop.wait(wait):
            try:
                conn = conn if conn and not conn.closed else psycopg.connect(
                    self._conninfo, autocommit=True)
                self.run_once(conn)
                if failing:
                    log.warning("the TSA answers again; untimestamped checkpoints are dated")
                wait, failing = self._interval, False
            except TsaError as e:
                if not failing:
                    log.warning("checkpoints are not being timestamped: %s (retrying; signing "
                                "goes on)", e)
                wait, failing = min(MAX_BACKOFF, max(wait, self._interval) * 2), True
            except psycopg.Error:
                log.warning("timestamper lost its database connection; retrying", exc_info=True)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def from_settings(settings, conninfo: str) -> Timestamper | None:
    """The timestamper the configuration asks for; None without a TSA."""
    if not settings.tsa_url:
        return None
    from indelible.proofs.timestamp import load_checker

    from indelible.keys import load_or_create_signer

    checker = load_checker([settings.tsa_ca_file.read_bytes()])
    verifier = NoteVerifier.from_key_text(
        load_or_create_signer(settings.key_file, settings.key_name).verifier_key_text())
    return Timestamper(conninfo=conninfo, client=TsaClient(settings.tsa_url, checker,
                                                           settings.tsa_timeout),
                       verifier=verifier)
