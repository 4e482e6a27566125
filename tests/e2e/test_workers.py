"""`indelible up --workers N`: several service processes racing on one tenant keep one
gap-free, verifiable chain and one trail per discrepancy, even when a worker is killed."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from indelible.runtime import free_port

from .cli_helpers import cli_env, indelible

START_TIMEOUT = 90  # seconds: embedded nats-server and two workers on a loaded machine
RACERS = 6  # clients sending the same move at once, each on its own connection
CASES = 12


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _workers(pid: int) -> set[int]:
    """The worker processes of the supervisor (its nats-server is a child too)."""
    found = set()
    for child in _children(pid):
        try:
            if b"indelible.workers" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except OSError:
            continue
    return found


def _wait_for(predicate, what: str, timeout: float = START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def supervised(tmp_path, owner_url):
    env = cli_env(tmp_path / "data", owner_url)
    env["INDELIBLE_CHECKPOINT_INTERVAL"] = "0.2"
    port = free_port()
    log = tmp_path / "service.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "indelible", "up", "--port", str(port),
                                    "--workers", "2"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def healthy():
        if process.poll() is not None:
            raise AssertionError(f"indelible up exited: {log.read_text()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200 \
                and len(_workers(process.pid)) == 2
        except httpx.TransportError:
            return False

    try:
        _wait_for(healthy, "two healthy workers")
        yield process, base, env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(60) == 0, log.read_text()
        finally:
            process.kill()
    assert not _workers(process.pid)


def _race(base: str, token: str, path: str, body: dict) -> list[int]:
    """The same request from RACERS clients at once, each on a fresh connection (so the
    kernel spreads them over the workers)."""
    def one(_):
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            return client.post(path, json=body).status_code
    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def test_racing_workers_keep_one_chain_and_one_trail_per_discrepancy(supervised):
    process, base, env = supervised
    tenant = f"workers-{secrets.token_hex(3)}"
    assert indelible(env, "tenant", "create", tenant).returncode == 0
    token = indelible(env, "api-key", "create", "--tenant", tenant, "--role",
                      "analyst").stdout.strip()
    # Ingestion runs in both workers at the same time as the HTTP load.
    simulate = subprocess.Popen([sys.executable, "-m", "indelible", "simulate", "--tenant", tenant,
                                 "--count", "300", "--wait", "--timeout", "120"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def report(i):
        with httpx.Client(base_url=base, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            response = client.post("/v1/discrepancies", json={
                "external_ref": f"race-{i}", "source": "stripe", "kind": "amount_mismatch",
                "expected_amount": "10.00", "actual_amount": "12.00", "currency": "EUR",
                "detected_at": "2026-11-23T05:00:00Z"})
            assert response.status_code in (200, 201), response.text
            return response.json()["id"]
    with ThreadPoolExecutor(8) as pool:  # each report twice, racing: one discrepancy each
        ids = list(pool.map(report, [i % CASES for i in range(2 * CASES)]))
    assert len(set(ids)) == CASES

    for case in sorted(set(ids)):
        codes = _race(base, token, f"/v1/discrepancies/{case}/transitions", {"to": "acknowledged"})
        assert sorted(codes) == [200] + [409] * (RACERS - 1), codes

    # A worker killed outright is replaced; the chain goes on from the other one meanwhile.
    victim = min(_workers(process.pid))
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: len(_workers(process.pid) - {victim}) == 2, "the killed worker's successor")
    for case in sorted(set(ids)):
        codes = _race(base, token, f"/v1/discrepancies/{case}/transitions",
                      {"to": "investigating"})
        assert sorted(codes) == [200] + [409] * (RACERS - 1), codes

    out, _ = simulate.communicate(timeout=180)
    assert simulate.returncode == 0, out

    auditor = indelible(env, "api-key", "create", "--tenant", tenant, "--role",
                        "auditor").stdout.strip()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {auditor}"}) as client:
        for case in set(ids):
            trail = [(e["type"], e["status_after"]) for e in
                     client.get(f"/v1/discrepancies/{case}/history").json()["entries"]]
            assert trail == [("discrepancy.opened", "open"),
                             ("discrepancy.transitioned", "acknowledged"),
                             ("discrepancy.transitioned", "investigating")], trail

    def verified():  # exit 3 while the newest entries await their checkpoint
        result = indelible(env, "verify", "--tenant", tenant)
        assert result.returncode in (0, 3), result.stdout + result.stderr
        return result.returncode == 0
    _wait_for(verified, "a verification that covers every entry", timeout=60)


def _alive_pids(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie counts as gone)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive
