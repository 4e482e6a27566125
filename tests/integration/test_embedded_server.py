"""The embedded PostgreSQL: started on demand, and never stopped under someone else's feet."""

from __future__ import annotations

import psycopg

from indelible.bootstrap import open_database
from indelible.config import Settings
from indelible.runtime import EmbeddedPostgres


def test_a_command_leaves_the_server_running_while_another_client_uses_it(tmp_path):
    settings = Settings(data_dir=tmp_path)
    server = EmbeddedPostgres(tmp_path / "postgres")
    with open_database(settings) as db:
        service = psycopg.connect(db.app_url)  # e.g. an `indelible up` that attached meanwhile
    try:
        assert server.running_port() is not None
        assert service.execute("SELECT 1").fetchone() == (1,)
    finally:
        service.close()
    server.port = server.running_port()
    server.stop()


def test_a_command_stops_the_server_it_started_when_nobody_else_uses_it(tmp_path):
    with open_database(Settings(data_dir=tmp_path)):
        pass
    assert EmbeddedPostgres(tmp_path / "postgres").running_port() is None
