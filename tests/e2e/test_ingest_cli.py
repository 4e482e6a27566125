"""The ingestion commands an operator runs, as real subprocesses against a real nats-server:
`dlq list` and `simulate --wait`."""

from __future__ import annotations

import asyncio
import json
import secrets

import orjson
import pytest

from indelible.ingest.streams import DLQ_PREFIX, ensure_streams
from indelible.runtime import EmbeddedNats

from .cli_helpers import cli_env, indelible

PREFIX = "recon.discrepancies"


@pytest.fixture
def broker(tmp_path):
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server


@pytest.fixture
def env(tmp_path, owner_url, broker):
    """The commands as clients of a broker the test started (no `indelible up`)."""
    return {**cli_env(tmp_path / "data", owner_url), "INDELIBLE_NATS_URL": broker.url,
            "INDELIBLE_NATS_SEED_FILE": str(broker.access.seed_file)}


def _dead_letter(broker: EmbeddedNats, tenant: str, reason: str) -> None:
    async def go():
        nc = await broker.access.connect()
        try:
            js = nc.jetstream()
            await ensure_streams(js, PREFIX)
            await js.publish(f"{DLQ_PREFIX}.{tenant}", orjson.dumps({"type": "x"}), headers={
                "Indelible-Reason": reason, "Indelible-Attempts": "1",
                "Indelible-Subject": f"{PREFIX}.{tenant}", "Indelible-Stream-Seq": "7"})
        finally:
            await nc.close()
    asyncio.run(go())


def test_dlq_list_tells_a_json_reason_as_a_person_reads_it(broker, env):
    tenant = f"dlq-{secrets.token_hex(3)}"
    problem = ('{"title": "Invalid message", "detail": "the report breaks the contract", '
               '"errors": [{"field": "currency", "rule": "must be an ISO 4217 code"}]}')
    _dead_letter(broker, tenant, problem)
    _dead_letter(broker, tenant, "unknown tenant 'nobody'")

    listed = indelible(env, "dlq", "list", "--tenant", tenant)
    assert listed.returncode == 0, listed.stderr
    first, second = listed.stdout.splitlines()
    assert first.endswith("the report breaks the contract (currency: must be an ISO 4217 code)")
    assert '{"' not in first and second.endswith("unknown tenant 'nobody'")
    assert "2 dead letter(s)" in listed.stderr

    as_json = indelible(env, "dlq", "list", "--tenant", tenant, "--json")
    assert [d["reason"] for d in json.loads(as_json.stdout)][0] == problem  # as recorded


def test_simulate_wait_gives_up_after_its_timeout_saying_nothing_consumes(env):
    tenant = f"idle-{secrets.token_hex(3)}"
    waited = indelible(env, "simulate", "--tenant", tenant, "--count", "5", "--matched-share",
                       "0", "--wait", "--timeout", "1.5")
    assert waited.returncode == 1, waited.stderr
    assert "after 1.5 s, 5 of 5 messages are still pending (0 committed, 0 dead-lettered)" \
        in waited.stderr
    assert "no consumer has ever read the stream: is `indelible up` running" in waited.stderr
    assert "settled 0/5: 0 committed, 0 dead-lettered, 5 pending" in waited.stderr

    alone = indelible(env, "simulate", "--tenant", tenant, "--timeout", "3")
    assert alone.returncode == 2 and "--timeout applies only with --wait" in alone.stderr


def test_simulate_wait_returns_once_everything_is_committed_or_dead_lettered(tmp_path, owner_url,
                                                                            app_url):
    """`indelible up` with its own nats-server; `up` logs ingestion progress without -v."""
    import re
    import time

    import psycopg

    from .test_http import _interrupt, _start

    env = cli_env(tmp_path / "data", owner_url)
    tenant = f"wait-{secrets.token_hex(3)}"
    assert indelible(env, "tenant", "create", tenant).returncode == 0
    log = tmp_path / "service.log"
    process, _ = _start(env, log)
    try:
        waited = indelible(env, "simulate", "--tenant", tenant, "--count", "300",
                           "--matched-share", "0.2", "--wait", "--timeout", "120")
        assert waited.returncode == 0, waited.stderr
        sent = int(re.search(r"published (\d+) messages", waited.stdout)[1])
        assert f"all {sent} messages settled in" in waited.stdout
        assert f": {sent} committed, 0 dead-lettered" in waited.stdout
        assert re.search(rf"settled {sent}/{sent}: {sent} committed", waited.stderr)
        with psycopg.connect(app_url) as conn:  # settled means in the ledger, now
            (opened,) = conn.execute("SELECT count(*) FROM ledger_entries WHERE tenant_id = %s "
                                     "AND type = 'discrepancy.opened'", (tenant,)).fetchone()
        assert opened == 300

        stranger = indelible(env, "simulate", "--tenant", f"nobody-{secrets.token_hex(3)}",
                             "--count", "20", "--matched-share", "0", "--wait")
        assert stranger.returncode == 0, stranger.stderr
        assert "all 20 messages settled" in stranger.stdout
        assert ": 0 committed, 20 dead-lettered (see `indelible dlq list`)" in stranger.stdout

        deadline = time.monotonic() + 30
        while "ingestion: " not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert re.search(r"INFO indelible\.ingest\.progress: ingestion: \d+ committed, \d+ "
                         r"dead-lettered since the last report", log.read_text())
    finally:
        assert _interrupt(process) == 0
