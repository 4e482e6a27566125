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
