"""The embedded servers let in only who holds their credentials (real PostgreSQL, real NATS)."""

from __future__ import annotations

import stat

import psycopg
import pytest

from indelible import nats_auth
from indelible.runtime import SUPERUSER, EmbeddedNats, EmbeddedPostgres
from indelible.store.db import app_conninfo, request_conninfo
from indelible.store.schema import migrate

pytestmark = pytest.mark.storage


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _methods(server: EmbeddedPostgres) -> set[str]:
    """The authentication methods pg_hba.conf names."""
    lines = (server.pgdata / "pg_hba.conf").read_text().splitlines()
    return {line.split()[-1] for line in lines if line.strip() and not line.startswith("#")}


def _refused(tmp_path, **params) -> str:
    """Connect with exactly these parameters (no password file to fall back on)."""
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(dbname="postgres", passfile=str(tmp_path / "no-such-file"),
                        connect_timeout=5, **params).close()
    return str(refused.value)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "pgdata") as server:
        migrate(server.url)
        server.secure_roles()
        yield server


def test_postgresql_refuses_every_connection_without_the_right_password(pg, tmp_path):
    tcp = {"host": "127.0.0.1", "port": pg.port}
    for role in (SUPERUSER, "indelible_app", "indelible_api"):
        assert "no password supplied" in _refused(tmp_path, user=role, **tcp)
        assert "password authentication failed" in _refused(tmp_path, user=role,
                                                              password="guess", **tcp)
    # The Unix socket in pgdata asks too: nothing is trusted anywhere.
    socket = {"host": str(pg.pgdata), "port": pg.port}
    assert "no password supplied" in _refused(tmp_path, user=SUPERUSER, **socket)
    assert _methods(pg) == {"scram-sha-256"}


def test_the_service_logs_in_with_the_passwords_kept_private_beside_pgdata(pg):
    assert _mode(pg.credentials_file) == 0o600
    assert pg.credentials_file.parent == pg.pgdata.parent  # not readable by the postgres user
    password = pg.credentials_file.read_text().split(":")[-1].strip()
    for conninfo in (pg.url, app_conninfo(pg.url), request_conninfo(pg.url)):
        assert password not in conninfo  # addresses name the file, never the password
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_data_directory_initialised_with_trust_is_converted_on_the_next_start(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pgdata")
    _initialise_as_before_passwords(server)
    assert "trust" in _methods(server)

    with server:  # this version's start converts it
        assert "no password supplied" in _refused(tmp_path, user=SUPERUSER, host="127.0.0.1",
                                                  port=server.port)
        assert "no password supplied" in _refused(tmp_path, user="indelible_app",
                                                  host="127.0.0.1", port=server.port)
        assert _mode(server.credentials_file) == 0o600
        migrate(server.url)
        server.secure_roles()
        with psycopg.connect(app_conninfo(server.url)) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("indelible_app",)
    assert _methods(server) == {"scram-sha-256"}


def _initialise_as_before_passwords(server: EmbeddedPostgres) -> None:
    """What earlier versions left: initdb --auth=trust, migrated, the roles without passwords."""
    server.pgdata.mkdir(parents=True)
    server._prepare_permissions()
    server._run("initdb", "-D", str(server.pgdata), "-U", SUPERUSER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-instructions")
    options = f"-h 127.0.0.1 -p {server.port} -k {server.pgdata}"
    server._run("pg_ctl", "-D", str(server.pgdata), "-w", "-l", str(server.pgdata / "log"),
                "-o", options, "start")
    try:
        migrate(f"postgresql://{SUPERUSER}@127.0.0.1:{server.port}/postgres")
    finally:
        server._run("pg_ctl", "-D", str(server.pgdata), "-w", "-m", "fast", "stop")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with EmbeddedNats(tmp_path_factory.mktemp("nats")) as server:
        yield server


def _handshake(port: int, seed: str | None = None) -> str:
    """Speak the NATS protocol by hand (INFO, CONNECT, PING): the server's first answer. With
    a seed, sign the server's nonce with it, as a client library would."""
    import base64
    import json
    import socket

    import nkeys

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        info = json.loads(s.makefile("rb").readline().removeprefix(b"INFO "))
        connect = {"verbose": False, "pedantic": False, "protocol": 1}
        if seed:
            keys = nkeys.from_seed(bytearray(seed.encode()))
            connect["nkey"] = keys.public_key.decode()
            signed = keys.sign(info["nonce"].encode())
            connect["sig"] = base64.urlsafe_b64encode(signed).rstrip(b"=").decode()
        s.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        return s.recv(4096).decode()


def test_nats_refuses_a_client_without_credentials_or_with_an_unknown_key(broker):
    assert "Authorization Violation" in _handshake(broker.port)
    stranger, _ = nats_auth.new_user_seed()
    assert "Authorization Violation" in _handshake(broker.port, stranger)
    service_seed = broker.access.seed_file.read_text().strip()
    assert _handshake(broker.port, service_seed).startswith("PONG")


def test_the_broker_secrets_and_config_are_private_and_hold_no_engine_seed(broker):
    seed, credential = nats_auth.engine_credential(broker.store_dir, tenant="acme", name="e",
                                                   prefix="recon.discrepancies")
    try:
        EmbeddedNats.reload_config(broker.store_dir)
        for name in (nats_auth.SERVICE_SEED, nats_auth.ENGINES, nats_auth.CONFIG):
            assert _mode(broker.store_dir / name) == 0o600, name
        config = (broker.store_dir / nats_auth.CONFIG).read_text()
        assert credential.public_key in config and seed not in config
        assert seed not in (broker.store_dir / nats_auth.ENGINES).read_text()
    finally:
        nats_auth.remove_engine(broker.store_dir, credential.public_key)
        EmbeddedNats.reload_config(broker.store_dir)
