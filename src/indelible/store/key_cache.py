"""Authenticated API keys, remembered briefly by each service process.

Authentication reads a key's role and revocation from its ledger entries (migration 11): two
index probes and a round trip through the thread pool on every request, a large share of a
transition's cost (benchmarks/README.md). A process may remember a token it authenticated
for TTL seconds, on two conditions that keep revocation prompt in every process:

- the appending transaction that records a revocation sends `NOTIFY indelible_api_keys`
  (ApiKeys.project), delivered to every listening process when it commits; each process
  then forgets every remembered key (revocations are rare; forgetting all is simplest);
- a process remembers nothing while its LISTEN connection is down, so a lost notification
  cannot leave a revoked key working: with no listener it asks the database every time.

A lookup that raced a revocation (started before the notification, finished after) is not
remembered: a generation counter, bumped by every notification, must be unchanged across it.
Unknown or revoked tokens are never remembered, so a key issued a moment ago works at once.
What a remembered key keeps for at most TTL seconds is the ledger's answer at that moment;
an edit of the ledger itself (which `indelible verify` catches) takes up to TTL to be felt.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from indelible.store.api_keys import Principal, authenticate, token_hash

log = logging.getLogger(__name__)

CHANNEL = "indelible_api_keys"
TTL = 10.0  # seconds a process may answer for a token without asking the database
RECONNECT = 1.0  # seconds between attempts to listen again after the connection failed
ALIVE = 1.0  # seconds since the listener last heard its server, beyond which nothing is trusted


def notify_revoked(conn: psycopg.Connection, key_id: str) -> None:
    """Tell every service process, when this transaction commits, that a key was revoked."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, key_id))


class KeyCache:
    def __init__(self, *, conninfo: str, ttl: float = TTL):
        self._conninfo = conninfo
        self._ttl = ttl
        self._remembered: dict[bytes, tuple[Principal, float]] = {}
        self._generation = 0
        # Held while checking the generation and storing, and while forgetting: otherwise a
        # revocation heard between the check and the store would be remembered for TTL.
        self._lock = threading.Lock()
        self._listening = False
        self._alive_at = 0.0  # monotonic time the listening connection last answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="key-revocations", daemon=True)

    def start(self) -> KeyCache:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    @property
    def listening(self) -> bool:
        """Listening, and heard from its server within ALIVE seconds: a connection that looks
        open but whose server stopped answering (a stalled network, a stopped backend)
        delivers no notification, so what is remembered is not trusted meanwhile."""
        return self._listening and time.monotonic() - self._alive_at < ALIVE

    def remembered(self, token: str) -> Principal | None:
        """The key's principal when this process may answer from memory, else None (ask
        `authenticate`). No I/O, so the event loop can call it without a thread hop."""
        hit = self._remembered.get(token_hash(token))
        if hit is not None and self.listening and hit[1] > time.monotonic():
            return hit[0]
        return None

    def authenticate(self, conn_factory, token: str) -> Principal | None:
        """The key's principal, from memory when this process may trust it, else asked of
        the database with a connection from `conn_factory()` (a context manager)."""
        if (hit := self.remembered(token)) is not None:
            return hit
        digest = token_hash(token)
        generation = self._generation
        with conn_factory() as conn:
            found = authenticate(conn, token)
        with self._lock:
            if found is not None and self.listening and generation == self._generation:
                self._remembered[digest] = (found, time.monotonic() + self._ttl)
        return found

    def forget(self) -> None:
        """Drop every remembered key (a revocation committed)."""
        with self._lock:
            self._generation += 1
            self._remembered.clear()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.forget()  # whatever happened while nobody listened
                    self._alive_at = time.monotonic()
                    self._listening = True
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=ALIVE / 4):
                            self.forget()
                        # A round trip proves the server still answers (and would have
                        # delivered a notification); one received meanwhile is kept for
                        # the next notifies().
                        conn.execute("SELECT 1")
                        self._alive_at = time.monotonic()
            except psycopg.Error as e:
                log.warning("API key revocations not heard (%s); asking the database for "
                            "every request until listening again", e)
            finally:
                self._listening = False
                self.forget()
            self._stop.wait(RECONNECT)
