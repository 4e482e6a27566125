"""Ingestion survives what production does to it: a killed service, a restarted broker."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time

import psycopg
import pytest

from indelible.ingest.simulate import messages, publish
from indelible.runtime import EmbeddedNats
from indelible.store.tenants import create_tenant

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _start

PREFIX = "recon.discrepancies"


def _opened(app_url: str, tenant: str) -> tuple[int, int]:
    """(entries opening a discrepancy, distinct external_refs among them)."""
    with psycopg.connect(app_url) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT convert_from(entry, 'UTF8')::jsonb #>> '{data,external_ref}') "
            "FROM ledger_entries WHERE tenant_id = %s AND type = 'discrepancy.opened'",
            (tenant,)).fetchone()


def _wait_opened(app_url: str, tenant: str, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count, _ = _opened(app_url, tenant)
        if count >= at_least:
            return count
        time.sleep(0.25)
    raise AssertionError(f"only {_opened(app_url, tenant)[0]} of {at_least} opened in time")


def _broker_env(broker: EmbeddedNats) -> dict[str, str]:
    """The service as a client of a broker it did not start: URL and nkey seed."""
    return {"INDELIBLE_NATS_URL": broker.url,
            "INDELIBLE_NATS_SEED_FILE": str(broker.access.seed_file)}


@pytest.fixture
def broker(tmp_path):
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server


def test_killing_the_service_mid_stream_loses_and_duplicates_nothing(tmp_path, broker, owner_url,
                                                                     app_url):
    count = 100_000
    tenant = f"kill-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
    env = {**cli_env(tmp_path / "data", owner_url), **_broker_env(broker)}
    service, _ = _start(env, tmp_path / "service-1.log")
    asyncio.run(publish(broker.access, PREFIX, messages(tenant, count, matched_share=0, seed=7)))

    _wait_opened(app_url, tenant, count // 4, timeout=300)
    service.send_signal(signal.SIGKILL)  # no goodbye: mid-batch, mid-transaction
    service.wait(30)
    killed_at, _ = _opened(app_url, tenant)
    assert killed_at < count, "the kill came too late to prove anything"

    service, _ = _start(env, tmp_path / "service-2.log")
    try:
        _wait_opened(app_url, tenant, count, timeout=600)
        time.sleep(2)  # anything redelivered after the last commit would show up now
        assert _opened(app_url, tenant) == (count, count)
    finally:
        assert _interrupt(service) == 0
    indelible(env, "checkpoint", "--tenant", tenant)
    verified = indelible(env, "verify", "--tenant", tenant, timeout=600)
    assert verified.returncode == 0, verified.stdout


def test_the_consumer_reconnects_by_itself_when_the_broker_restarts(tmp_path, broker, owner_url,
                                                                    app_url):
    tenant = f"bounce-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
    env = {**cli_env(tmp_path / "data", owner_url), **_broker_env(broker)}
    service, _ = _start(env, tmp_path / "service.log")
    try:
        bodies = messages(tenant, 4000, matched_share=0, seed=11)
        asyncio.run(publish(broker.access, PREFIX, bodies[:2000]))
        _wait_opened(app_url, tenant, 500, timeout=120)
        broker.stop()  # the broker goes away mid-ingestion ...
        time.sleep(1)
        broker.start()  # ... and comes back on the same port with its stored stream
        asyncio.run(publish(broker.access, PREFIX, bodies[2000:]))
        _wait_opened(app_url, tenant, 4000, timeout=180)
        time.sleep(1)
        assert _opened(app_url, tenant) == (4000, 4000)
    finally:
        assert _interrupt(service) == 0


def test_restarting_postgresql_during_ingestion_loses_nothing(tmp_path, broker):
    from indelible.runtime import EmbeddedPostgres
    from indelible.store.db import app_conninfo
    from indelible.store.schema import migrate

    with EmbeddedPostgres(tmp_path / "pg") as database:
        migrate(database.url)
        database.secure_roles()
        app_url = app_conninfo(database.url)
        tenant = "restart"
        with psycopg.connect(app_url, autocommit=True) as conn:
            create_tenant(conn, tenant, base_origin="test.indelible.local/log")
        env = {**cli_env(tmp_path / "data", database.url), **_broker_env(broker)}
        service, _ = _start(env, tmp_path / "service.log")
        try:
            asyncio.run(publish(broker.access, PREFIX, messages(tenant, 6000, matched_share=0, seed=3)))
            _wait_opened(app_url, tenant, 1000, timeout=120)
            database.stop()  # mid-ingestion: appends fail, nothing may be acknowledged meanwhile
            time.sleep(4)  # longer than three redeliveries: an outage is not a poison message
            database.start()
            _wait_opened(app_url, tenant, 6000, timeout=240)
            time.sleep(1)
            assert _opened(app_url, tenant) == (6000, 6000)
        finally:
            assert _interrupt(service) == 0
        with psycopg.connect(app_url) as conn:
            assert conn.execute("SELECT count(*) FROM ledger_entries WHERE tenant_id = %s "
                                "AND type = 'ingest.dead_lettered'", (tenant,)).fetchone() == (0,)


def test_readyz_and_metrics_show_ingestion_down_while_the_broker_is_away(tmp_path, broker,
                                                                        owner_url):
    import httpx

    def ready() -> httpx.Response:
        return httpx.get(f"{base}/readyz", timeout=5)

    def metric(name: str) -> float:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        return float(next(line.split()[-1] for line in text.splitlines()
                          if line.startswith(name + " ")))

    def until(predicate, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"not reached: {ready().text}")

    env = {**cli_env(tmp_path / "data", owner_url), **_broker_env(broker),
           "INDELIBLE_METRICS_PUBLIC": "true"}  # /metrics on the API port, as enabled
    service, base = _start(env, tmp_path / "service.log")
    try:
        until(lambda: ready().status_code == 200)
        assert metric("indelible_ingest_up") == 1
        broker.stop()
        until(lambda: ready().status_code == 503)
        problem = ready().json()
        assert problem["component"] == "ingestion" and "ingestion" in problem["detail"]
        assert metric("indelible_ingest_up") == 0
        broker.start()
        until(lambda: ready().status_code == 200)
        assert metric("indelible_ingest_pending_messages") == 0
        assert "indelible_ingest_processed_total" in httpx.get(f"{base}/metrics").text
    finally:
        assert _interrupt(service) == 0
