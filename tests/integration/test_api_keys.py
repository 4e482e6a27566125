"""API keys: hashed at rest, issued and revoked as ledger entries, isolated per tenant."""

from __future__ import annotations

import pytest

from indelible.entry import Actor
from indelible.store.api_keys import (ApiKeys, KeyAlreadyRevokedError, UnknownKeyError,
                                      authenticate, issue_command, list_keys, revoke_decision,
                                      token_hash)
from indelible.store.appender import append_batch

pytestmark = pytest.mark.storage

ADMIN = Actor("key:admin", "admin")


def _issue(conn, tenant, role="analyst"):
    token, entry = issue_command(role=role, name="Ana", by=ADMIN)
    (issued,) = append_batch(conn, tenant, [entry], model=ApiKeys())
    return token, entry.data["key_id"], issued


def test_an_issued_token_authenticates_as_its_tenant_and_role(conn, registered_tenant):
    token, key_id, _ = _issue(conn, registered_tenant, "compliance_manager")
    principal = authenticate(conn, token)
    assert (principal.tenant, principal.key_id, principal.role) == (
        registered_tenant, key_id, "compliance_manager")
    assert authenticate(conn, token + "x") is None


def test_tokens_carry_256_random_bits_and_only_their_hash_is_stored(conn, registered_tenant):
    token, key_id, issued = _issue(conn, registered_tenant)
    assert token.startswith("idl_") and len(token) == 4 + 43
    assert token.encode() not in issued.entry
    assert token_hash(token).hex().encode() in issued.entry
    with conn.transaction():
        conn.execute("SELECT set_config('indelible.tenant', %s, true)", (registered_tenant,))
        (key,) = list_keys(conn, registered_tenant)
    assert key.key_id == key_id and key.token_sha256 == token_hash(token).hex()


def test_a_revoked_key_no_longer_authenticates_and_cannot_be_revoked_twice(conn, registered_tenant):
    token, key_id, _ = _issue(conn, registered_tenant)
    (revoked,) = append_batch(conn, registered_tenant, [revoke_decision(key_id, by=ADMIN)],
                              model=ApiKeys())
    assert b'"type":"api_key.revoked"' in revoked.entry
    assert authenticate(conn, token) is None

    (again,) = append_batch(conn, registered_tenant, [revoke_decision(key_id, by=ADMIN)],
                            model=ApiKeys())
    assert isinstance(again, KeyAlreadyRevokedError) and f"seq {revoked.seq}" in str(again)


def test_revoking_another_tenants_key_is_refused_as_unknown(conn, registered_tenant, owner_url):
    from indelible.store.tenants import create_tenant
    from tests.conftest import BASE_ORIGIN

    create_tenant(conn, registered_tenant + "-b", base_origin=BASE_ORIGIN)
    _, key_id, _ = _issue(conn, registered_tenant + "-b")
    (outcome,) = append_batch(conn, registered_tenant, [revoke_decision(key_id, by=ADMIN)],
                              model=ApiKeys())
    assert isinstance(outcome, UnknownKeyError)


def test_row_level_security_shows_a_request_only_its_tenants_keys(conn, request_conn, registered_tenant):
    _issue(conn, registered_tenant)
    assert request_conn.execute("SELECT count(*) FROM api_keys").fetchone() == (0,)  # no tenant set
    with request_conn.transaction():
        request_conn.execute("SELECT set_config('indelible.tenant', 'someone-else', true)")
        assert request_conn.execute("SELECT count(*) FROM api_keys").fetchone() == (0,)
    with request_conn.transaction():
        request_conn.execute("SELECT set_config('indelible.tenant', %s, true)", (registered_tenant,))
        assert request_conn.execute("SELECT count(*) FROM api_keys").fetchone() == (1,)


def test_a_superuser_who_un_revokes_a_key_in_the_table_still_cannot_use_it(
        conn, registered_tenant, owner_url):
    from .ledger_helpers import superuser

    token, key_id, _ = _issue(conn, registered_tenant)
    append_batch(conn, registered_tenant, [revoke_decision(key_id, by=ADMIN)], model=ApiKeys())
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE api_keys SET revoked_seq = NULL, revoked_at = NULL, "
                      "revoked_by = NULL WHERE key_id = %s", (key_id,))
    assert authenticate(conn, token) is None  # the ledger says revoked


def test_a_superuser_who_promotes_a_key_in_the_table_gets_the_role_the_ledger_gave(
        conn, registered_tenant, owner_url):
    from .ledger_helpers import superuser

    token, key_id, _ = _issue(conn, registered_tenant, "auditor")
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE api_keys SET role = 'admin' WHERE key_id = %s", (key_id,))
    assert authenticate(conn, token).role == "auditor"


def test_a_row_pointed_at_another_token_does_not_authenticate_it(
        conn, registered_tenant, owner_url):
    from .ledger_helpers import superuser

    _, admin_key, _ = _issue(conn, registered_tenant, "admin")
    with superuser(owner_url) as rogue:
        mine = "idl_" + "x" * 43
        rogue.execute("UPDATE api_keys SET token_hash = %s WHERE key_id = %s",
                      (token_hash(mine), admin_key))
    assert authenticate(conn, mine) is None  # the issuing entry names another token
