"""One tampered log must not stop the continuous verifier for every log.

A superuser who moves one entry of one tenant into the signing-key stream (a column edit)
made reading that tenant's trusted keys raise, which killed the follower loop for all
tenants, over and over, with only a warning: continuous verification silently off.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time

import pytest

from indelible.monitor.worker import WorkerConfig, follow
from indelible.store.appender import append_batch
from indelible.store.logs import create_log
from indelible.store.signing import sign_checkpoint

from .ledger_helpers import command, superuser

pytestmark = pytest.mark.storage


def _run_follow(app_url, signer, seconds: float) -> list:
    outbox: queue.Queue = queue.Queue()
    stop = threading.Event()
    config = WorkerConfig(app_url, signer.verifier_key_text(), 100, 0, time.time(), 0)
    errors = []

    def run():
        try:
            follow(config, outbox, stop)
        except Exception as e:  # noqa: BLE001 - what _guard would report
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    stop.set()
    thread.join(10)
    messages = []
    while not outbox.empty():
        messages.append(outbox.get())
    return messages, errors


def test_a_tampered_key_rotation_entry_does_not_stop_other_tenants(
        app_url, owner_url, conn, tenant, signer, kept):
    from tests.conftest import BASE_ORIGIN

    other = f"t-{secrets.token_hex(5)}"
    create_log(conn, other, base_origin=BASE_ORIGIN)
    for name in (tenant, other):
        append_batch(conn, name, [command(i) for i in range(20)])
        sign_checkpoint(conn, name, signer, kept)
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE ledger_entries SET stream_id = 'log/signing-key' "
                      "WHERE tenant_id = %s AND seq = 5", (tenant,))
    messages, errors = _run_follow(app_url, signer, 3.0)
    assert errors == []
    progress = [body for kind, body in messages if kind == "progress"]
    assert progress and progress[-1][other]["verified"] == 20
    assert tenant in progress[-1]


def _run_full_runs(app_url, signer, tenants: set[str], timeout: float = 90.0) -> list:
    """Full runs until each of `tenants` has completed one (the suite's shared database holds
    many other logs, run in turn), or `timeout`."""
    from indelible.monitor.worker import full_runs

    outbox: queue.Queue = queue.Queue()
    stop = threading.Event()
    # Every log is due at once (started long ago), and again every half second.
    config = WorkerConfig(app_url, signer.verifier_key_text(), 100, 0.5, time.time() - 60, 0)
    errors = []

    def run():
        try:
            full_runs(config, outbox, stop)
        except Exception as e:  # noqa: BLE001 - what _guard would report
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    messages, waiting = [], set(tenants)
    deadline = time.monotonic() + timeout
    while waiting and thread.is_alive() and time.monotonic() < deadline:
        try:
            kind, body = outbox.get(timeout=0.2)
        except queue.Empty:
            continue
        messages.append((kind, body))
        if kind == "completed":
            waiting.discard(body["tenant"])
    stop.set()
    thread.join(30)
    while not outbox.empty():
        messages.append(outbox.get())
    return messages, errors


def test_a_log_head_that_cannot_be_read_is_an_alarm_and_other_logs_are_still_run(
        app_url, owner_url, conn, tenant, registered_tenant, signer, kept):
    from tests.conftest import BASE_ORIGIN

    good = f"t-{secrets.token_hex(5)}"
    create_log(conn, good, base_origin=BASE_ORIGIN)
    append_batch(conn, good, [command(i) for i in range(5)])
    sign_checkpoint(conn, good, signer, kept)
    with superuser(owner_url) as rogue:
        rogue.execute("UPDATE log_heads SET frontier = '\\xdeadbeef' WHERE tenant_id = %s",
                      (tenant,))
        # Out of log_heads altogether: the tenant must not silently drop out of the runs.
        rogue.execute("DELETE FROM log_heads WHERE tenant_id = %s", (registered_tenant,))
    messages, errors = _run_full_runs(app_url, signer, {good, tenant, registered_tenant})
    assert errors == []
    runs = [body for kind, body in messages if kind == "completed"]
    assert [kind for kind, _ in messages if kind == "error"] == []
    assert any(r["tenant"] == good and r["status"] == "verified" for r in runs)
    for broken in (tenant, registered_tenant):
        found = [f for r in runs if r["tenant"] == broken for f in r["findings"]]
        assert found and found[0].check == "unverifiable", (broken, runs)
