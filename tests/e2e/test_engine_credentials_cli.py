"""`indelible engine-credentials`: issued, listed and revoked by the real command, honoured by
the real nats-server it reloads."""

from __future__ import annotations

import asyncio
import getpass
import secrets

import nats
import orjson
import psycopg
import pytest

from indelible.runtime import EmbeddedNats

from tests.integration.test_embedded_auth import _handshake

from .cli_helpers import cli_env, indelible

PREFIX = "recon.discrepancies"


@pytest.fixture
def env(tmp_path, owner_url):
    return cli_env(tmp_path / "data", owner_url)


@pytest.fixture
def tenant(env):
    name = f"eng-{secrets.token_hex(3)}"
    assert indelible(env, "tenant", "create", name).returncode == 0
    return name


def _create(env, tenant: str) -> tuple[str, str]:
    """(seed, what the command told the operator)."""
    made = indelible(env, "engine-credentials", "create", "--tenant", tenant, "--name", "erp")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip(), made.stderr


def _publishes(url: str, seed: str, tenant: str) -> bool:
    """Whether an engine holding `seed` gets a publish to its tenant's subject acknowledged."""
    async def go():
        nc = await nats.connect(url, nkeys_seed_str=seed, allow_reconnect=False,
                                inbox_prefix=f"_INBOX_ENGINE.{tenant}", connect_timeout=2)
        try:
            await nc.jetstream().publish(f"{PREFIX}.{tenant}", orjson.dumps({"ping": 1}))
            return True
        finally:
            await nc.close()
    return asyncio.run(go())


def _ledger_types(app_url: str, tenant: str) -> list[tuple[str, str]]:
    """(type, actor id) of the credential entries."""
    with psycopg.connect(app_url) as conn:
        return conn.execute(
            "SELECT type, actor_id FROM ledger_entries WHERE tenant_id = %s AND stream_id LIKE "
            "'engine-credential/%%' ORDER BY seq", (tenant,)).fetchall()


def test_a_credential_is_issued_reloaded_into_the_running_broker_and_revoked(env, tenant, tmp_path,
                                                                             app_url):
    early, told = _create(env, tenant)  # no broker yet: the next start picks it up
    assert early.startswith("SU") and "takes effect when the service starts" in told
    with EmbeddedNats(tmp_path / "data" / "nats") as broker:
        _stream(broker)
        assert _publishes(broker.url, early, tenant)
        seed, told = _create(env, tenant)  # the running server re-reads its config
        assert f"may publish only to {PREFIX}.{tenant}" in told and "accepts it now" in told
        assert seed not in told and _publishes(broker.url, seed, tenant)

        listed = indelible(env, "engine-credentials", "list", "--tenant", tenant)
        keys = [line.split()[0] for line in listed.stdout.splitlines()]
        assert len(keys) == 2 and seed not in listed.stdout
        revoked = indelible(env, "--actor", "dana", "engine-credentials", "revoke", keys[1])
        assert revoked.returncode == 0 and f"of {tenant} revoked at seq" in revoked.stdout
        assert "Authorization Violation" in _handshake(broker.port, seed)
        assert _publishes(broker.url, early, tenant)
    me = f"cli:{getpass.getuser()}"  # the default actor: whoever ran the command
    assert _ledger_types(app_url, tenant) == [("engine_credential.issued", me),
                                              ("engine_credential.issued", me),
                                              ("engine_credential.revoked", "cli:dana")]


def _stream(broker: EmbeddedNats) -> None:
    from indelible.ingest.consumer import ensure_streams

    async def make():
        nc = await broker.access.connect()
        await ensure_streams(nc.jetstream(), PREFIX)
        await nc.close()
    asyncio.run(make())


def test_a_credential_for_an_unknown_tenant_or_an_external_broker_is_refused(env):
    unknown = indelible(env, "engine-credentials", "create", "--tenant", "nobody-here")
    assert unknown.returncode == 2 and "tenant 'nobody-here' does not exist" in unknown.stderr
    external = indelible({**env, "INDELIBLE_NATS_URL": "nats://127.0.0.1:1"},
                         "engine-credentials", "create", "--tenant", "nobody-here")
    assert external.returncode == 2
    assert "Configure that server's authorization yourself" in external.stderr
