"""SIGTERM drains `indelible up`: what it acknowledged is committed, nothing is lost.

The service ingests a stream of reports; SIGTERM arrives mid-stream. After it exits, every
message the broker counts as acknowledged has its entry in the ledger; a second start then
takes the rest, and each report is in the ledger exactly once.
"""

from __future__ import annotations

import asyncio
import secrets
import signal

import psycopg

from indelible.ingest.simulate import messages, publish
from indelible.ingest.streams import DURABLE, STREAM
from indelible.store.tenants import create_tenant

from .cli_helpers import cli_env
from .test_http import _interrupt, _start
from .test_ingest_failures import PREFIX, _broker_env, _opened, _wait_opened, broker  # noqa: F401


async def _acknowledged(access) -> int:
    """Messages the durable consumer has acknowledged, as the broker counts them."""
    nc = await access.connect()
    try:
        info = await nc.jetstream().consumer_info(STREAM, DURABLE)
        return info.ack_floor.stream_seq
    finally:
        await nc.close()


def test_sigterm_commits_what_it_acknowledged_and_loses_nothing(tmp_path, broker, owner_url,
                                                                app_url):
    count = 20_000
    tenant = f"drain-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
    env = {**cli_env(tmp_path / "data", owner_url), **_broker_env(broker)}
    service, _ = _start(env, tmp_path / "service-1.log")
    asyncio.run(publish(broker.access, PREFIX, messages(tenant, count, matched_share=0, seed=5)))
    _wait_opened(app_url, tenant, count // 10, timeout=300)

    service.send_signal(signal.SIGTERM)  # mid-stream
    assert service.wait(60) == 0
    log = (tmp_path / "service-1.log").read_text()
    assert "draining" in log and "indelible: stopped" in log, log
    committed, distinct = _opened(app_url, tenant)
    acknowledged = asyncio.run(_acknowledged(broker.access))
    assert committed < count, "the drain came too late to prove anything"
    # Every message up to the ack floor was acknowledged only after its entry committed.
    assert 0 < acknowledged == committed == distinct

    service, _ = _start(env, tmp_path / "service-2.log")
    try:
        _wait_opened(app_url, tenant, count, timeout=600)
        assert _opened(app_url, tenant) == (count, count)
    finally:
        assert _interrupt(service) == 0
