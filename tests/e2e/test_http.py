"""`indelible up` serves health, checkpoints and proofs over HTTP; Ctrl-C stops everything."""

from __future__ import annotations

import base64
import secrets
import signal
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from indelible import proofs
from indelible.runtime import free_port
from indelible.store.appender import append_batch
from indelible.store.logs import create_log
from tests.integration.ledger_helpers import command

from .cli_helpers import cli_env, indelible

HTTP_TIMEOUT = 90  # seconds for a cold start (embedded PostgreSQL initdb included)


def _start(env) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "indelible", "up", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + HTTP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"indelible up exited: {process.stderr.read()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("indelible up did not become healthy in time")


def _interrupt(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(60)
    finally:
        process.kill()
        process.stdout.close()
        process.stderr.close()


@pytest.fixture
def service(tmp_path, owner_url, app_url):
    env = cli_env(tmp_path / "data", owner_url)
    env["INDELIBLE_CHECKPOINT_INTERVAL"] = "0.2"
    tenant = f"web-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_log(conn, tenant, base_origin="test.indelible.local/log")
        append_batch(conn, tenant, [command(i) for i in range(300)])
    process, base = _start(env)
    vkey = indelible(env, "signing-key", "show").stdout.strip()
    yield base, tenant, proofs.NoteVerifier.from_key_text(vkey)
    assert _interrupt(process) == 0


def _checkpoint(base: str, tenant: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the checkpointer signs within its interval
        response = httpx.get(f"{base}/v1/logs/{tenant}/checkpoint")
        if response.status_code == 200:
            return response
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint was signed: {response.text}")


def test_the_latest_checkpoint_is_served_as_a_signed_note(service):
    base, tenant, verifier = service
    response = _checkpoint(base, tenant)
    assert response.headers["content-type"].startswith("text/plain")
    checkpoint = proofs.open_checkpoint(response.text, verifier,
                                        origin=f"test.indelible.local/log/{tenant}")
    assert checkpoint.size == 300
    assert httpx.get(f"{base}/v1/verifier-key").text.strip() == verifier_text(verifier, base)


def verifier_text(_verifier, base: str) -> str:
    return httpx.get(f"{base}/v1/verifier-key").text.strip()


def test_an_entry_comes_with_an_inclusion_proof_in_json_and_as_a_tlog_proof(service):
    base, tenant, verifier = service
    _checkpoint(base, tenant)
    body = httpx.get(f"{base}/v1/logs/{tenant}/entries/123").json()
    entry = base64.b64decode(body["entry_b64"])
    assert body["entry"]["seq"] == 123
    proofs.verify_inclusion(123, body["tree_size"], proofs.leaf_hash(entry),
                            [base64.b64decode(h) for h in body["inclusion_proof"]],
                            base64.b64decode(body["root_hash"]))

    text = httpx.get(f"{base}/v1/logs/{tenant}/entries/123", params={"format": "tlog-proof"}).text
    _, proved = proofs.verify_tlog_proof(text, verifier)
    assert proved == entry


def test_a_consistency_proof_links_two_sizes(service):
    base, tenant, _ = service
    _checkpoint(base, tenant)
    body = httpx.get(f"{base}/v1/logs/{tenant}/consistency",
                     params={"size1": 100, "size2": 300}).json()
    assert body["size1"] == 100 and len(body["proof"]) > 0


def test_errors_are_problem_details_naming_what_is_wrong(service):
    base, tenant, _ = service
    unknown = httpx.get(f"{base}/v1/logs/nobody-here/checkpoint")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "'nobody-here' has no ledger log" in unknown.json()["detail"]

    _checkpoint(base, tenant)
    beyond = httpx.get(f"{base}/v1/logs/{tenant}/entries/5000")
    assert beyond.status_code == 404 and "valid seq is 0..299" in beyond.json()["detail"]
    bad = httpx.get(f"{base}/v1/logs/{tenant}/consistency", params={"size1": 0, "size2": 3})
    assert bad.status_code == 422


def test_up_starts_its_own_postgresql_when_none_is_configured_and_stops_it(tmp_path):
    env = cli_env(tmp_path / "data", None)
    process, base = _start(env)
    pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0])
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}

    assert _interrupt(process) == 0
    assert not pid_file.exists()
    assert not _running(postmaster)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a daemon whose parent is PID 1 may wait to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
