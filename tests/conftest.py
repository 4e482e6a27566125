"""Real PostgreSQL for the suite: embedded by default, or INDELIBLE_TEST_DATABASE_URL.

Each test session gets a database of its own on that server, dropped at the end, so runs
against a shared server (CI's PostgreSQL 15) never see each other's data.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from indelible.proofs import NoteSigner
from indelible.runtime import EmbeddedPostgres
from indelible.store.db import app_conninfo, request_conninfo
from indelible.store.logs import create_log
from indelible.store.schema import migrate

BASE_ORIGIN = "test.indelible.local/log"


@pytest.fixture(scope="session")
def embedded_pg():
    """The suite's embedded server (None when INDELIBLE_TEST_DATABASE_URL names one)."""
    if os.environ.get("INDELIBLE_TEST_DATABASE_URL"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="indelible-pg-") as tmp:
        with EmbeddedPostgres(Path(tmp) / "pgdata") as server:
            yield server


@pytest.fixture(scope="session")
def pg_server_url(embedded_pg):
    return embedded_pg.url if embedded_pg else os.environ["INDELIBLE_TEST_DATABASE_URL"]


@pytest.fixture(scope="session")
def owner_url(pg_server_url, embedded_pg):
    name = f"indelible_test_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(pg_server_url, dbname=name)
    migrate(url)
    if embedded_pg:
        embedded_pg.secure_roles()  # the service's roles log in by password there
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def app_url(owner_url):
    return app_conninfo(owner_url)


@pytest.fixture(scope="session")
def request_url(owner_url):
    return request_conninfo(owner_url)


@pytest.fixture
def request_conn(request_url):
    """A connection as HTTP request handlers make them (row-level security applies)."""
    with psycopg.connect(request_url, autocommit=True) as c:
        yield c


@pytest.fixture
def conn(app_url):
    with psycopg.connect(app_url, autocommit=True) as c:
        yield c


@pytest.fixture
def tenant(conn):
    name = f"t-{secrets.token_hex(5)}"
    create_log(conn, name, base_origin=BASE_ORIGIN)
    return name


@pytest.fixture(scope="session")
def signer():
    return NoteSigner.generate(BASE_ORIGIN)


@pytest.fixture(scope="session")
def kept(tmp_path_factory):
    """Where the suite's signer keeps what it signed (outside the database)."""
    from indelible.kept import KeptCheckpoints

    return KeptCheckpoints(tmp_path_factory.mktemp("kept"))


@pytest.fixture
def registered_tenant(conn):
    """A tenant as `indelible tenant create` makes it: log, row and creation entry."""
    from indelible.store.tenants import create_tenant

    name = f"t-{secrets.token_hex(5)}"
    create_tenant(conn, name, base_origin=BASE_ORIGIN)
    return name
