"""Authenticated keys remembered briefly per process, and forgotten in every process within
a second of a revocation committing (LISTEN/NOTIFY); nothing remembered without a listener."""

from __future__ import annotations

import secrets
import time
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from indelible.entry import Actor
from indelible.store.api_keys import ApiKeys, issue_command, revoke_decision
from indelible.store.appender import append_batch
from indelible.store.key_cache import KeyCache

pytestmark = pytest.mark.storage

ADMIN = Actor("key:admin", "admin")


class Counting:
    """A connection factory that counts how often the database is asked."""

    def __init__(self, url: str):
        self.url, self.asked = url, 0

    @contextmanager
    def __call__(self):
        self.asked += 1
        with psycopg.connect(self.url, autocommit=True) as conn:
            yield conn


def _until(predicate, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def caches(request_url):
    """Two caches, as two service processes have them."""
    made = [KeyCache(conninfo=request_url, ttl=60).start() for _ in range(2)]
    _until(lambda: all(c.listening for c in made), 10)
    yield made
    for cache in made:
        cache.stop()


def test_a_revoked_key_stops_working_in_every_process_within_a_second(conn, registered_tenant,
                                                                       request_url, caches):
    token, entry = issue_command(role="analyst", name="Ana", by=ADMIN)
    append_batch(conn, registered_tenant, [entry], model=ApiKeys())
    asks = [Counting(request_url) for _ in caches]
    for cache, ask in zip(caches, asks):
        assert cache.authenticate(ask, token).tenant == registered_tenant
        assert cache.authenticate(ask, token).role == "analyst"
        assert ask.asked == 1  # the second answer came from memory

    append_batch(conn, registered_tenant, [revoke_decision(entry.data["key_id"], by=ADMIN)],
                 model=ApiKeys())
    for cache, ask in zip(caches, asks):
        assert _until(lambda: cache.authenticate(ask, token) is None, 1.0) < 1.0


def test_unknown_tokens_are_never_remembered(request_url, caches, conn, registered_tenant):
    ask = Counting(request_url)
    assert caches[0].authenticate(ask, "idl_nobody") is None
    assert caches[0].authenticate(ask, "idl_nobody") is None
    assert ask.asked == 2


def test_without_a_listener_every_request_asks_the_database(conn, registered_tenant, request_url):
    token, entry = issue_command(role="analyst", name="Ana", by=ADMIN)
    append_batch(conn, registered_tenant, [entry], model=ApiKeys())
    deaf = KeyCache(conninfo=request_url)  # never started: it cannot hear revocations
    ask = Counting(request_url)
    assert deaf.authenticate(ask, token) is not None
    assert deaf.authenticate(ask, token) is not None
    assert ask.asked == 2


def test_a_lost_listener_forgets_and_stops_remembering(conn, registered_tenant, request_url,
                                                       owner_url):
    token, entry = issue_command(role="analyst", name="Ana", by=ADMIN)
    append_batch(conn, registered_tenant, [entry], model=ApiKeys())
    name = f"key-cache-{secrets.token_hex(4)}"
    cache = KeyCache(conninfo=make_conninfo(request_url, application_name=name), ttl=60).start()
    try:
        _until(lambda: cache.listening, 10)
        ask = Counting(request_url)
        cache.authenticate(ask, token)
        cache.authenticate(ask, token)
        assert ask.asked == 1
        with psycopg.connect(owner_url, autocommit=True) as admin:  # its session dies
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = %s", (name,))
        _until(lambda: not cache.listening, 5)
        cache.authenticate(ask, token)
        assert ask.asked == 2
    finally:
        cache.stop()


def test_a_listener_that_stopped_answering_is_not_trusted(conn, registered_tenant, request_url,
                                                          owner_url):
    """The listening connection looks open but its server process has stopped (SIGSTOP by
    a local process, a stalled network): the notification of a revocation never arrives,
    so the cache must stop trusting what it remembers within about a second, not its TTL."""
    import os
    import signal

    cache = KeyCache(conninfo=request_url, ttl=60).start()
    try:
        _until(lambda: cache.listening, 10)
        token, entry = issue_command(role="analyst", name="Ana", by=ADMIN)
        append_batch(conn, registered_tenant, [entry], model=ApiKeys())
        ask = Counting(request_url)
        assert cache.authenticate(ask, token) is not None
        with psycopg.connect(owner_url, autocommit=True) as owner:
            (pid,) = owner.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND query = 'LISTEN indelible_api_keys'").fetchone()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(0.6)  # any look the listener was making has now stalled
            append_batch(conn, registered_tenant,
                         [revoke_decision(entry.data["key_id"], by=ADMIN)], model=ApiKeys())
            assert _until(lambda: cache.authenticate(ask, token) is None, 3.0) < 3.0
        finally:
            os.kill(pid, signal.SIGCONT)
    finally:
        cache.stop()
