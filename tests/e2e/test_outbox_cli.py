"""`indelible outbox` for operators: backfill, list, show, retry, enable — each change a
ledger entry naming who made it."""

from __future__ import annotations

import json
import secrets

import psycopg
import pytest

from indelible.outbound.webhooks import new_secret
from indelible.store import outbox
from indelible.store.tenants import create_tenant
from tests.integration.outbox_helpers import outbound, outbox_rows, resolve

from .cli_helpers import cli_env, indelible

pytestmark = pytest.mark.storage


@pytest.fixture
def tenant_with_history(app_url):
    """A tenant with two resolved discrepancies, resolved while the flags were off."""
    tenant = f"ob-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
    with outbound(app_url, None) as appender:
        resolved = [resolve(appender, tenant, f"po-old-{i}")[1].seq for i in range(2)]
    return tenant, resolved


def _env(tmp_path, owner_url, rag: bool = True) -> dict:
    env = cli_env(tmp_path / "data", owner_url)
    if rag:
        env.update({"INDELIBLE_RAG_FEED_ENABLED": "true",
                    "INDELIBLE_RAG_FEED_URL": "http://127.0.0.1:9/feed",
                    "INDELIBLE_RAG_FEED_SECRET": new_secret()})
    return env


def _entries(conn, tenant: str, kind: str) -> list[dict]:
    import orjson

    rows = conn.execute("SELECT entry FROM ledger_entries WHERE tenant_id = %s AND type = %s "
                        "ORDER BY seq", (tenant, kind)).fetchall()
    return [orjson.loads(bytes(r[0])) for r in rows]


def test_turning_a_flag_on_replays_nothing_until_an_operator_backfills_once(
        tmp_path, owner_url, conn, tenant_with_history):
    tenant, resolved = tenant_with_history
    assert outbox_rows(conn, tenant) == []
    off = indelible(_env(tmp_path, owner_url, rag=False), "outbox", "backfill", "--tenant",
                    tenant, "--integration", "rag")
    assert off.returncode == 2 and "INDELIBLE_RAG_FEED_ENABLED" in off.stderr
    env = _env(tmp_path, owner_url)
    first = indelible(env, "--actor", "olga", "outbox", "backfill", "--tenant", tenant,
                      "--integration", "rag")
    assert first.returncode == 0, first.stderr
    assert "2 rag event(s)" in first.stdout
    assert [r[2] for r in outbox_rows(conn, tenant)] == resolved
    again = indelible(env, "outbox", "backfill", "--tenant", tenant, "--integration", "rag")
    assert again.returncode == 0 and len(outbox_rows(conn, tenant)) == 2  # each event once
    (recorded, _) = _entries(conn, tenant, "outbox.backfilled")
    assert recorded["actor"]["id"] == "cli:olga" and recorded["data"]["events"] == 2


def test_list_show_and_retry_of_a_parked_event(tmp_path, owner_url, conn, tenant_with_history):
    tenant, _ = tenant_with_history
    env = _env(tmp_path, owner_url)
    assert indelible(env, "outbox", "backfill", "--tenant", tenant, "--integration",
                     "rag").returncode == 0
    (row_id, *_), _ = conn.execute("SELECT id FROM outbox WHERE tenant_id = %s ORDER BY id",
                                   (tenant,)).fetchall()
    nothing = indelible(env, "outbox", "retry", "--tenant", tenant, "--integration", "rag")
    assert nothing.returncode == 2 and "no parked rag event" in nothing.stderr
    conn.execute("UPDATE outbox SET state = 'parked', last_error = '400: refused' WHERE id = %s",
                 (row_id,))
    listed = json.loads(indelible(env, "outbox", "list", "--tenant", tenant, "--json").stdout)
    assert listed["counts"]["rag"] == {"pending": 1, "sending": 0, "delivered": 0, "parked": 1}
    shown = json.loads(indelible(env, "outbox", "show", str(row_id)).stdout)
    assert shown["state"] == "parked" and shown["last_error"] == "400: refused"
    retried = indelible(env, "outbox", "retry", "--tenant", tenant, "--integration", "rag",
                        str(row_id))
    assert retried.returncode == 0, retried.stderr
    assert outbox.get(conn, row_id)[0].state == "pending"
    assert outbox.get(conn, row_id)[0].round == 2
    (requeued,) = _entries(conn, tenant, "outbox.requeued")
    assert requeued["data"]["webhook_ids"] == [shown["webhook_id"]]
    missing = indelible(env, "outbox", "show", "999999999")
    assert missing.returncode == 2 and "no outbox event 999999999" in missing.stderr


def test_enable_lifts_a_410s_disabling_and_is_recorded(tmp_path, owner_url, conn,
                                                         tenant_with_history):
    tenant, _ = tenant_with_history
    env = _env(tmp_path, owner_url)
    refused = indelible(env, "outbox", "enable", "--tenant", tenant, "--integration", "rag",
                        "--reason", "x")
    assert refused.returncode == 2 and "is not disabled" in refused.stderr
    conn.execute("INSERT INTO outbox_disabled (tenant_id, integration, seq, reason) "
                 "VALUES (%s, 'rag', 0, '410 Gone')", (tenant,))
    listed = indelible(env, "outbox", "list", "--tenant", tenant)
    assert "DISABLED rag" in listed.stdout
    enabled = indelible(env, "outbox", "enable", "--tenant", tenant, "--integration", "rag",
                        "--reason", "the feed moved back")
    assert enabled.returncode == 0, enabled.stderr
    assert outbox.disabled(conn, tenant) == []
    (entry,) = _entries(conn, tenant, "outbox.integration_enabled")
    assert entry["data"]["reason"] == "the feed moved back"
