"""Row-level security fails closed, or the service refuses to start (issue 8, item 8)."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from indelible.store import isolation
from indelible.store.schema import APP_ROLE, API_ROLE, migrate

pytestmark = pytest.mark.storage


def test_a_superuser_migration_leaves_no_isolation_gap(conn):
    assert isolation.gaps(conn) == []


@pytest.fixture
def managed_owner(pg_server_url):
    """A database owned by a role like a managed server's admin: CREATEROLE, not a superuser,
    and (for the test) the service role stripped of BYPASSRLS, as such a server leaves it."""
    role, database = f"idl_mgr_{secrets.token_hex(3)}", f"idl_managed_{secrets.token_hex(3)}"
    password = secrets.token_hex(8)
    with psycopg.connect(pg_server_url, autocommit=True) as su:
        su.execute(f"CREATE ROLE {role} LOGIN CREATEROLE PASSWORD '{password}'")
        su.execute(f"GRANT {APP_ROLE}, {API_ROLE} TO {role} WITH ADMIN OPTION")
        su.execute(f'CREATE DATABASE "{database}" OWNER {role}')
        su.execute(f"ALTER ROLE {APP_ROLE} NOBYPASSRLS")
        try:
            yield make_conninfo(pg_server_url, dbname=database, user=role, password=password), su
        finally:
            su.execute(f"ALTER ROLE {APP_ROLE} BYPASSRLS")
            su.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
            su.execute(f"DROP ROLE {role}")


def test_the_service_refuses_to_start_when_a_non_superuser_migration_left_rls_open(managed_owner):
    owner_url, _ = managed_owner
    migrate(owner_url)
    with pytest.raises(isolation.WeakIsolationError,
                       match=rf"{APP_ROLE} lacks BYPASSRLS.*table ledger_entries has no "
                             rf"row-level security.*INDELIBLE_ACCEPT_WEAK_TENANT_ISOLATION=true"):
        isolation.require_isolation(owner_url, accepted=False)


def test_an_operator_who_accepts_the_gap_gets_it_listed(managed_owner):
    owner_url, _ = managed_owner
    migrate(owner_url)
    accepted = isolation.require_isolation(owner_url, accepted=True)
    assert any("tenants has no row-level security" in gap for gap in accepted)


def test_a_grant_given_later_closes_the_policies_on_the_next_migration(managed_owner):
    owner_url, superuser = managed_owner
    migrate(owner_url)
    superuser.execute(f"ALTER ROLE {APP_ROLE} BYPASSRLS")
    migrate(owner_url)
    assert isolation.require_isolation(owner_url, accepted=False) == []


def test_opening_the_database_for_the_service_refuses_unless_accepted(managed_owner, tmp_path):
    from indelible.bootstrap import open_database
    from indelible.config import Settings

    owner_url, _ = managed_owner
    settings = Settings(data_dir=tmp_path, database_url=owner_url)
    with pytest.raises(isolation.WeakIsolationError, match="tenant isolation is incomplete"):
        with open_database(settings):
            pass
    with open_database(settings.with_overrides(accept_weak_isolation=True)) as db:
        assert db.owner_url == owner_url


def test_a_stray_permissive_policy_is_a_gap_even_beside_the_tenant_filter(managed_owner):
    owner_url, superuser = managed_owner
    superuser.execute(f"ALTER ROLE {APP_ROLE} BYPASSRLS")
    migrate(owner_url)
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("CREATE POLICY everyone ON discrepancies USING (true)")
    with pytest.raises(isolation.WeakIsolationError,
                       match="table discrepancies has a policy that is not the fail-closed"):
        isolation.require_isolation(owner_url, accepted=False)
