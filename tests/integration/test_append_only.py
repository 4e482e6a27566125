"""Evidence tables refuse UPDATE, DELETE and TRUNCATE, and the service role cannot even try."""

from __future__ import annotations

import psycopg
import pytest

from indelible.store.appender import append_batch
from indelible.store.signing import sign_checkpoint
from indelible.store.schema import EVIDENCE_TABLES

from .ledger_helpers import command

pytestmark = pytest.mark.storage

STATEMENTS = {
    "update": "UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = %s",
    "delete": "DELETE FROM {table} WHERE tenant_id = %s",
}


@pytest.fixture
def filled(conn, tenant, signer, kept):
    append_batch(conn, tenant, [command(i) for i in range(300)])
    sign_checkpoint(conn, tenant, signer, kept)
    return tenant


@pytest.mark.parametrize("table", EVIDENCE_TABLES)
@pytest.mark.parametrize("verb", sorted(STATEMENTS))
def test_even_the_owner_cannot_update_or_delete_evidence(owner_url, filled, table, verb):
    with psycopg.connect(owner_url, autocommit=True) as owner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match=f"table {table} is append-only: {verb.upper()} refused"):
            owner.execute(STATEMENTS[verb].format(table=table), (filled,))


@pytest.mark.parametrize("table", EVIDENCE_TABLES)
def test_even_the_owner_cannot_truncate_evidence(owner_url, filled, table):
    with psycopg.connect(owner_url, autocommit=True) as owner:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE refused"):
            owner.execute(f"TRUNCATE {table}")


@pytest.mark.parametrize("table", EVIDENCE_TABLES)
@pytest.mark.parametrize("verb", sorted(STATEMENTS))
def test_the_service_role_has_no_update_or_delete_privilege(conn, filled, table, verb):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"permission denied for table {table}"):
        conn.execute(STATEMENTS[verb].format(table=table), (filled,))


def test_the_service_works_as_the_restricted_role(conn):
    assert conn.execute("SELECT current_user").fetchone() == ("indelible_app",)


TENANT_TABLES = ("log_heads", "ledger_entries", "merkle_nodes", "checkpoints")


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_a_request_with_another_tenants_setting_sees_nothing_of_this_tenant(request_conn, filled, table):
    with request_conn.transaction():
        request_conn.execute("SELECT set_config('indelible.tenant', 'someone-else', true)")
        assert request_conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                                    (filled,)).fetchone() == (0,)
    with request_conn.transaction():
        request_conn.execute("SELECT set_config('indelible.tenant', %s, true)", (filled,))
        assert request_conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                                    (filled,)).fetchone()[0] > 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_a_request_with_no_tenant_setting_sees_nothing_at_all(request_conn, filled, table):
    assert request_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_the_request_role_cannot_write_the_ledger(request_conn, filled):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        with request_conn.transaction():
            request_conn.execute("SELECT set_config('indelible.tenant', %s, true)", (filled,))
            request_conn.execute("INSERT INTO checkpoints (tenant_id, size, root_hash, note, key_id) "
                                 "VALUES (%s, 999, sha256('x'), 'n', '\\x00000000')", (filled,))


def test_the_service_role_cannot_become_the_owner(conn):
    assert conn.execute("SELECT session_user").fetchone() == ("indelible_app",)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET ROLE postgres")


def test_a_temporary_table_cannot_stand_in_for_the_api_keys(conn):
    conn.execute("CREATE TEMP TABLE api_keys (tenant_id text, key_id uuid, role text, name text, "
                 "token_hash bytea, revoked_at timestamptz)")
    conn.execute("INSERT INTO api_keys VALUES ('evil', gen_random_uuid(), 'admin', 'forged', "
                 "sha256('x'), NULL)")
    assert conn.execute("SELECT * FROM indelible_authenticate(sha256('x'))").fetchall() == []
