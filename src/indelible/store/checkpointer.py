"""The checkpointer: signs each tenant's log every `interval` seconds or `entries` entries."""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from indelible.kept import KeptCheckpoints, KeptStateError
from indelible.proofs import NoteSigner
from indelible.store.errors import LogIntegrityError
from indelible.store.signing import sign_checkpoint

log = logging.getLogger(__name__)

POLL = 0.25  # seconds between looks at how many entries are unsigned

_DUE = """
SELECT h.tenant_id, h.size - coalesce(c.size, 0) AS unsigned, c.signed_at
FROM log_heads h
LEFT JOIN LATERAL (SELECT size, signed_at FROM checkpoints
                   WHERE tenant_id = h.tenant_id ORDER BY size DESC LIMIT 1) c ON true
WHERE h.size > coalesce(c.size, 0)
"""


class Checkpointer:
    def __init__(self, *, conninfo: str, signer: NoteSigner, kept: KeptCheckpoints,
                 interval: float, entries: int):
        self._conninfo = conninfo
        self._signer = signer
        self._kept = kept
        self._interval = interval
        self._entries = entries
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)
        self.passed_at = time.monotonic()  # when the last pass over every tenant completed

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self, conn: psycopg.Connection) -> int:
        """Sign every tenant that is due; returns how many checkpoints were signed."""
        signed = 0
        now = time.time()
        for tenant, unsigned, last_at in conn.execute(_DUE).fetchall():
            age = now - last_at.timestamp() if last_at else float("inf")
            if unsigned >= self._entries or age >= self._interval:
                try:
                    signed += sign_checkpoint(conn, tenant, self._signer, self._kept) is not None
                except psycopg.Error:
                    raise  # the connection is the problem: the loop reconnects
                except (LogIntegrityError, KeptStateError) as e:
                    # Already logged as an integrity alarm where it was found; the tenant
                    # stays unsigned, and the alarm repeats every pass until someone acts.
                    log.critical("checkpoint of tenant %r refused: %s", tenant, e)
                except Exception:  # noqa: BLE001 - one tenant's bad state must not stop the rest
                    # Refusing to sign is the safe outcome; it must be loud, never silent.
                    log.exception("checkpoint of tenant %r refused", tenant)
        return signed

    def _run(self) -> None:
        conn = None
        while not self._stop.wait(POLL):
            try:
                conn = conn if conn and not conn.closed else psycopg.connect(self._conninfo, autocommit=True)
                self.run_once(conn)
                self.passed_at = time.monotonic()
            except psycopg.Error:
                log.warning("checkpointer lost its database connection; retrying", exc_info=True)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
