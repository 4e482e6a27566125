"""`indelible up` with the RAG feed and the hub switched on, against a real receiver: the
walk of the issue's "Done means", and the service killed with -9 in the middle of delivering."""

from __future__ import annotations

import secrets
import signal
import time

import httpx
import psycopg
import pytest

from indelible.outbound.webhooks import new_secret
from indelible.store.tenants import create_tenant
from tests.webhook_receiver import Receiver

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _start

pytestmark = pytest.mark.storage

CASE = {"source": "stripe", "kind": "amount_mismatch", "expected_amount": "9850.00",
        "actual_amount": "10000.00", "currency": "EUR", "detected_at": "2026-11-23T05:00:00Z"}


def _env(tmp_path, owner_url, receiver: Receiver, secret: str, **extra) -> dict:
    env = cli_env(tmp_path / "data", owner_url)
    env.update({"INDELIBLE_INGEST_ENABLED": "false", "INDELIBLE_CHECKPOINT_INTERVAL": "0.2",
                "INDELIBLE_RAG_FEED_ENABLED": "true", "INDELIBLE_RAG_FEED_URL": receiver.url,
                "INDELIBLE_RAG_FEED_SECRET": secret,
                "INDELIBLE_NOTIFICATION_HUB_ENABLED": "true",
                "INDELIBLE_NOTIFICATION_HUB_URL": receiver.url,
                "INDELIBLE_NOTIFICATION_HUB_SECRET": secret,
                "INDELIBLE_OUTBOX_RETRY_SCHEDULE": "0 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5",
                "INDELIBLE_OUTBOX_TIMEOUT": "2", "INDELIBLE_OUTBOX_POLL": "0.2", **extra})
    return env


def _tenant(app_url: str) -> str:
    tenant = f"out-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
    return tenant


OPEN: list[httpx.Client] = []


def _client(env, base: str, tenant: str, role: str) -> httpx.Client:
    token = indelible(env, "api-key", "create", "--tenant", tenant, "--role", role).stdout.strip()
    OPEN.append(httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                             timeout=30))
    return OPEN[-1]


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while OPEN:
        OPEN.pop().close()


def _resolve(analyst: httpx.Client, ref: str) -> str:
    opened = analyst.post("/v1/discrepancies", json={**CASE, "external_ref": ref})
    assert opened.status_code == 201, opened.text
    case = opened.json()["id"]
    for move in ({"to": "acknowledged"}, {"to": "investigating"},
                 {"to": "resolved", "resolution_code": "corrected_in_ledger", "note": "booked"}):
        answer = analyst.post(f"/v1/discrepancies/{case}/transitions", json=move)
        assert answer.status_code == 200, answer.text
    return case


def _history_types(client: httpx.Client, case: str) -> list[str]:
    return [e["type"] for e in client.get(f"/v1/discrepancies/{case}/history").json()["entries"]]


def _wait(check, timeout: float = 60, what: str = "it"):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result


def test_an_operator_watches_an_event_retried_while_the_receiver_is_down_then_delivered_once(
        tmp_path, owner_url, app_url):
    secret = new_secret()
    receiver = Receiver(secret).start()
    env = _env(tmp_path, owner_url, receiver, secret)
    tenant = _tenant(app_url)
    process, base = _start(env, tmp_path / "service.log")
    try:
        analyst = _client(env, base, tenant, "analyst")
        admin = _client(env, base, tenant, "admin")
        first = _resolve(analyst, "po-walk-1")
        receiver.wait_for(1, tenant=tenant)
        assert receiver.invalid == []  # signed, verified by the reference library
        _wait(lambda: "outbox.delivered" in _history_types(analyst, first), what="delivery entry")

        receiver.stop()
        second = _resolve(analyst, "po-walk-2")
        _wait(lambda: "outbox.attempt_failed" in _history_types(analyst, second),
              what="a failed attempt in the history")
        receiver.start()
        receiver.wait_for(2, tenant=tenant)
        _wait(lambda: "outbox.delivered" in _history_types(analyst, second), what="delivery")
        history = analyst.get(f"/v1/discrepancies/{second}/history").json()["entries"]
        failed = [e for e in history if e["type"] == "outbox.attempt_failed"]
        assert failed and failed[0]["actor"] == "outbox:rag"
        assert failed[0]["status_before"] == failed[0]["status_after"] == "resolved"

        outbox = admin.get("/v1/outbox").json()
        assert outbox["counts"]["rag"]["delivered"] == 2 and len(outbox["events"]) == 2
        assert {e["webhook_id"] for e in outbox["events"]} == set(receiver.of(tenant))
        assert analyst.get("/v1/outbox").status_code == 403
        listed = indelible(env, "outbox", "list", "--tenant", tenant)
        assert listed.returncode == 0 and "rag: 0 pending, 0 sending, 2 delivered" in listed.stdout
        time.sleep(1)  # the checkpointer signs the last entries
        verified = indelible(env, "verify", "--tenant", tenant)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        assert _interrupt(process) == 0
        receiver.stop()
    assert len(receiver.of(tenant)) == 2 and receiver.duplicates_of(tenant) == []


def test_a_service_killed_mid_delivery_delivers_every_event_once_after_its_restart(
        tmp_path, owner_url, app_url):
    secret = new_secret()
    receiver = Receiver(secret).start()
    receiver.hang(4)  # holds the first requests past the kill
    env = _env(tmp_path, owner_url, receiver, secret, INDELIBLE_OUTBOX_TIMEOUT="1")
    tenant = _tenant(app_url)
    process, base = _start(env, tmp_path / "service.log")
    try:
        analyst = _client(env, base, tenant, "analyst")
        cases = [_resolve(analyst, f"po-kill-{i}") for i in range(3)]
        _wait(lambda: receiver.requests, what="a request in flight")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        receiver.answer(200)
        process, base = _start(env, tmp_path / "service-2.log")
        analyst = _client(env, base, tenant, "analyst")
        cases.append(_resolve(analyst, "po-kill-after"))  # appends carry on
        receiver.wait_for(4, tenant=tenant, timeout=90)
        for case in cases:
            _wait(lambda: "outbox.delivered" in _history_types(analyst, case), timeout=90,
                  what=f"the delivery entry of {case}")
        assert all(_history_types(analyst, c).count("outbox.delivered") == 1 for c in cases)
    finally:
        assert _interrupt(process) == 0
        receiver.stop()
    assert receiver.invalid == []
    assert len(receiver.of(tenant)) == 4  # each seen once, none lost (duplicates de-duplicated)
