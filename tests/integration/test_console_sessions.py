"""Console sessions in PostgreSQL: the timeouts and revocation the database functions hold,
and an API key's ledger state re-checked at every page."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from indelible.console import sessions
from indelible.entry import Actor
from indelible.store import console_sessions
from indelible.store.api_keys import ApiKeys, issue_command, revoke_decision
from indelible.store.appender import append_batch

pytestmark = pytest.mark.storage

ADMIN = Actor("key:admin", "admin")
LONG = sessions.Timeouts(idle=timedelta(minutes=5), absolute=timedelta(hours=1))
SEAL = b"k" * 32  # the service derives it from its signing key


def _key(conn, tenant, role="analyst"):
    token, entry = issue_command(role=role, name="Ana", by=ADMIN)
    append_batch(conn, tenant, [entry], model=ApiKeys())
    return token, entry.data["key_id"]


def _signed_in(request_conn, token, timeouts=LONG):
    method = sessions.ApiKeySignIn()
    principal, subject = method.exchange(request_conn, token)
    return sessions.start(request_conn, principal=principal, method=method.name,
                          subject=subject, timeouts=timeouts, seal=SEAL)


def test_a_key_is_exchanged_for_a_session_that_keeps_only_hashes(conn, request_conn,
                                                                  registered_tenant, owner_url):
    token, key_id = _key(conn, registered_tenant)
    cookie, viewer = _signed_in(request_conn, token)
    resumed = sessions.resume(request_conn, cookie, LONG, seal=SEAL)
    assert (resumed.tenant, resumed.role, resumed.principal.key_id) == (
        registered_tenant, "analyst", key_id)
    assert resumed.csrf_token == viewer.csrf_token
    assert sessions.ApiKeySignIn().exchange(request_conn, token + "x") is None
    with psycopg.connect(owner_url) as owner:
        stored = owner.execute("SELECT session_hash, subject FROM console_sessions WHERE "
                               "tenant_id = %s", (registered_tenant,)).fetchall()
    assert [bytes(h) for h, _ in stored] == [
        console_sessions.session_hash(sessions.session_id(cookie))]
    assert token not in repr(stored) and cookie not in repr(stored)


def test_the_request_role_reaches_sessions_only_through_the_functions(request_conn):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        request_conn.execute("SELECT * FROM console_sessions")


def test_an_idle_session_ends(conn, request_conn, registered_tenant):
    token, _ = _key(conn, registered_tenant)
    cookie, _ = _signed_in(request_conn, token)
    time.sleep(0.05)
    assert sessions.resume(request_conn, cookie, sessions.Timeouts(
        idle=timedelta(milliseconds=10), absolute=timedelta(hours=1)), seal=SEAL) is None
    assert sessions.resume(request_conn, cookie, LONG, seal=SEAL) is not None  # 5 min idle allowed


def test_a_session_ends_at_its_absolute_timeout_however_busy(conn, request_conn,
                                                             registered_tenant):
    token, _ = _key(conn, registered_tenant)
    short = sessions.Timeouts(idle=timedelta(minutes=5), absolute=timedelta(milliseconds=200))
    cookie, _ = _signed_in(request_conn, token, short)
    assert sessions.resume(request_conn, cookie, short, seal=SEAL) is not None
    time.sleep(0.3)
    assert sessions.resume(request_conn, cookie, short, seal=SEAL) is None


def test_sign_out_revokes_and_a_revoked_key_ends_its_sessions(conn, request_conn,
                                                              registered_tenant):
    token, key_id = _key(conn, registered_tenant)
    first, viewer = _signed_in(request_conn, token)
    second, _ = _signed_in(request_conn, token)
    sessions.end(request_conn, viewer, first)
    assert sessions.resume(request_conn, first, LONG, seal=SEAL) is None
    assert sessions.resume(request_conn, second, LONG, seal=SEAL) is not None

    append_batch(conn, registered_tenant, [revoke_decision(key_id, by=ADMIN)], model=ApiKeys())
    assert sessions.resume(request_conn, second, LONG, seal=SEAL) is None


def test_a_database_insider_cannot_mint_or_widen_a_session(conn, request_conn,
                                                           registered_tenant, owner_url):
    """The session row holds only hashes the database already knows (the key's token hash):
    someone who can write the table must still not be able to become that key's holder, nor
    to hand their own session another key's identity or a longer life."""
    admin_token, _ = _key(conn, registered_tenant, role="admin")
    token, _ = _key(conn, registered_tenant)
    own_cookie, own = _signed_in(request_conn, token)
    with psycopg.connect(owner_url) as owner:
        (admin_hash,) = owner.execute("SELECT encode(token_hash, 'hex') FROM api_keys WHERE "
                                      "tenant_id = %s AND role = 'admin'",
                                      (registered_tenant,)).fetchone()
        chosen = "insider-chosen-cookie"
        owner.execute("INSERT INTO console_sessions (session_hash, tenant_id, method, subject, "
                      "csrf_token, expires_at) VALUES (%s, %s, 'api_key', %s, 'x', "
                      "now() + interval '1 hour')",
                      (console_sessions.session_hash(chosen), registered_tenant, admin_hash))
        owner.commit()
        for cookie in (chosen, chosen + "." + "A" * 43):
            assert sessions.resume(request_conn, cookie, LONG, seal=SEAL) is None
        # Re-pointing one's own live session at the admin key is refused too.
        owner.execute("UPDATE console_sessions SET subject = %s WHERE tenant_id = %s AND "
                      "subject <> %s", (admin_hash, registered_tenant, admin_hash))
    assert sessions.resume(request_conn, own_cookie, LONG, seal=SEAL) is None
    assert own.role == "analyst" and admin_token
