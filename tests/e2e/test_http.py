"""`indelible up` serves health, checkpoints and proofs over HTTP; Ctrl-C stops everything."""

from __future__ import annotations

import base64
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import psycopg
import pytest

from indelible import proofs
from indelible.runtime import free_port
from indelible.store.appender import append_batch
from indelible.store.tenants import create_tenant
from tests.integration.ledger_helpers import command

from .cli_helpers import cli_env, indelible

HTTP_TIMEOUT = 90  # seconds for a cold start (embedded PostgreSQL initdb included)


def _start(env, log: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`indelible up` on a free port; its output goes to `log` (a pipe nobody reads could
    fill up and block the server)."""
    port = port or free_port()
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "indelible", "up", "--port", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + HTTP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"indelible up exited: {log.read_text()}")
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


class Service(NamedTuple):
    base: str
    tenant: str
    verifier: proofs.NoteVerifier
    env: dict
    clients: list

    def key(self, role: str, tenant: str | None = None) -> httpx.Client:
        """A client authenticated with a fresh key of `role` (for `tenant`, default ours)."""
        token = indelible(self.env, "api-key", "create", "--tenant", tenant or self.tenant,
                          "--role", role).stdout.strip()
        return self.client(token)

    def client(self, token: str) -> httpx.Client:
        self.clients.append(httpx.Client(base_url=self.base,
                                         headers={"Authorization": f"Bearer {token}"}))
        return self.clients[-1]


@contextmanager
def running_service(tmp_path: Path, owner_url: str, app_url: str, prefix: str, entries: int = 0):
    """A tenant (with `entries` sample entries) and `indelible up` on the suite's database."""
    env = cli_env(tmp_path / "data", owner_url)
    env["INDELIBLE_CHECKPOINT_INTERVAL"] = "0.2"
    tenant = f"{prefix}-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
        if entries:
            append_batch(conn, tenant, [command(i) for i in range(entries)])
    process, base = _start(env, tmp_path / "service.log")
    vkey = indelible(env, "signing-key", "show").stdout.strip()
    service = Service(base, tenant, proofs.NoteVerifier.from_key_text(vkey), env, [])
    try:
        yield service
    finally:
        for client in service.clients:
            client.close()
        assert _interrupt(process) == 0


@pytest.fixture
def service(tmp_path, owner_url, app_url):
    with running_service(tmp_path, owner_url, app_url, "web", entries=299) as s:
        yield s


def _checkpoint(client: httpx.Client, tenant: str, size: int = 300) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the checkpointer signs within its interval
        response = client.get(f"/v1/logs/{tenant}/checkpoint")
        if response.status_code == 200 and f"\n{size}\n" in response.text:
            return response
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint of size {size} was signed: {response.text}")


def test_the_latest_checkpoint_is_served_as_a_signed_note(service):
    auditor = service.key("auditor")
    response = _checkpoint(auditor, service.tenant, size=301)  # + the key just issued
    assert response.headers["content-type"].startswith("text/plain")
    checkpoint = proofs.open_checkpoint(response.text, service.verifier,
                                        origin=f"test.indelible.local/log/{service.tenant}")
    assert checkpoint.size == 301
    key_text = httpx.get(f"{service.base}/v1/verifier-key").text.strip()
    assert proofs.NoteVerifier.from_key_text(key_text).key_id == service.verifier.key_id


def test_an_entry_comes_with_an_inclusion_proof_in_json_and_as_a_tlog_proof(service):
    tenant, verifier = service.tenant, service.verifier
    client = service.key("auditor")
    _checkpoint(client, tenant, size=301)
    body = client.get(f"/v1/logs/{tenant}/entries/123").json()
    entry = base64.b64decode(body["entry_b64"])
    assert body["entry"]["seq"] == 123
    proofs.verify_inclusion(123, body["tree_size"], proofs.leaf_hash(entry),
                            [base64.b64decode(h) for h in body["inclusion_proof"]],
                            base64.b64decode(body["root_hash"]))

    text = client.get(f"/v1/logs/{tenant}/entries/123", params={"format": "tlog-proof"}).text
    _, proved = proofs.verify_tlog_proof(text, verifier)
    assert proved == entry


def test_a_consistency_proof_links_two_sizes(service):
    client = service.key("auditor")
    _checkpoint(client, service.tenant, size=301)
    body = client.get(f"/v1/logs/{service.tenant}/consistency",
                      params={"size1": 100, "size2": 300}).json()
    assert body["size1"] == 100 and len(body["proof"]) > 0


def test_errors_are_problem_details_naming_what_is_wrong(service):
    client = service.key("auditor")
    unknown = client.get("/v1/logs/nobody-here/checkpoint")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "no log named 'nobody-here' is visible to this API key" in unknown.json()["detail"]

    _checkpoint(client, service.tenant, size=301)
    beyond = client.get(f"/v1/logs/{service.tenant}/entries/5000")
    assert beyond.status_code == 404 and "valid seq is 0..300" in beyond.json()["detail"]
    bad = client.get(f"/v1/logs/{service.tenant}/consistency", params={"size1": 0, "size2": 3})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.size1"


def test_requests_without_a_valid_key_are_refused(service):
    anonymous = httpx.get(f"{service.base}/v1/logs/{service.tenant}/checkpoint")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    forged = httpx.get(f"{service.base}/v1/logs/{service.tenant}/checkpoint",
                       headers={"Authorization": "Bearer idl_not-a-real-token"})
    assert forged.status_code == 401 and "unknown or revoked" in forged.json()["detail"]


def test_another_tenants_key_sees_nothing_of_this_tenant(service, app_url):
    other = f"{service.tenant}-x"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, other, base_origin="test.indelible.local/log")
    stranger = service.key("auditor", tenant=other)
    for path in ("checkpoint", "entries/1", "consistency?size1=1&size2=2"):
        response = stranger.get(f"/v1/logs/{service.tenant}/{path}")
        assert response.status_code == 404, path
        assert f"no log named '{service.tenant}' is visible" in response.json()["detail"]


def test_admins_issue_list_and_revoke_keys_and_others_may_not(service):
    admin = service.key("admin")
    created = admin.post("/v1/api-keys", json={"role": "analyst", "name": "Ana"})
    assert created.status_code == 201, created.text
    issued = created.json()
    analyst = service.client(issued["token"])
    assert analyst.get(f"/v1/logs/{service.tenant}/entries/0").status_code in (200, 404)

    listed = admin.get("/v1/api-keys").json()["keys"]
    assert issued["key_id"] in {k["key_id"] for k in listed}
    assert all("token" not in k for k in listed)

    refused = analyst.post("/v1/api-keys", json={"role": "admin"})
    assert refused.status_code == 403 and "role 'analyst' may not do this" in refused.json()["detail"]
    assert admin.post("/v1/api-keys", json={"role": "root"}).status_code == 422
    assert admin.post("/v1/api-keys", json={"role": "analyst", "extra": 1}).status_code == 422

    revoked = admin.delete(f"/v1/api-keys/{issued['key_id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_seq"] > issued["issued_seq"]
    assert analyst.get(f"/v1/logs/{service.tenant}/checkpoint").status_code == 401
    assert admin.delete(f"/v1/api-keys/{issued['key_id']}").status_code == 409


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_starts_its_own_servers_when_none_is_configured_and_stops_them(tmp_path, stop):
    env = cli_env(tmp_path / "data", None)
    process, base = _start(env, tmp_path / "service.log")
    pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0])
    (broker,) = _processes_of("nats-server", tmp_path / "data")
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}

    process.send_signal(stop)
    try:
        assert process.wait(60) == 0
    finally:
        process.kill()
    assert not pid_file.exists()
    assert not _running(postmaster)
    assert not _running(broker)


def _processes_of(name: str, data_dir: Path) -> list[int]:
    """Pids of `name` processes whose command line mentions `data_dir`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and argv[0].endswith(name.encode()) and \
                any(str(data_dir).encode() in arg for arg in argv):
            found.append(int(proc.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a daemon whose parent is PID 1 may wait to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_simulated_engines_feed_a_running_service_and_the_log_verifies(tmp_path, owner_url, app_url):
    """`indelible up` with its own nats-server, fed by `indelible simulate`."""
    env = cli_env(tmp_path / "data", owner_url)
    tenant = f"sim-{secrets.token_hex(3)}"
    assert indelible(env, "tenant", "create", tenant).returncode == 0
    process, _ = _start(env, tmp_path / "service.log")
    try:
        sent = indelible(env, "simulate", "--tenant", tenant, "--count", "200", "--matched-share", "0.25")
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(app_url) as conn:
                counts = dict(conn.execute(
                    "SELECT type, count(*) FROM ledger_entries WHERE tenant_id = %s GROUP BY type",
                    (tenant,)).fetchall())
            if counts.get("discrepancy.opened") == 200 and counts.get("discrepancy.transitioned"):
                break
            time.sleep(0.3)
        assert counts.get("discrepancy.opened") == 200, counts
        assert counts.get("discrepancy.transitioned", 0) > 10  # the matched ones, auto-closed
        assert indelible(env, "checkpoint", "--tenant", tenant).returncode == 0
        verified = indelible(env, "verify", "--tenant", tenant)
        assert verified.returncode == 0, verified.stdout
    finally:
        assert _interrupt(process) == 0


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_documentation_loads_nothing_from_another_host(service, page):
    import re

    html = httpx.get(f"{service.base}{page}").text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    urls += re.findall(r"""url: ?["']([^"']+)["']""", html)
    assert urls and not [u for u in urls if re.match(r"(https?:)?//", u)], urls
    assert "fonts.googleapis" not in html and "validator.swagger.io" not in html
    for url in urls:
        assert httpx.get(f"{service.base}{url}").status_code == 200, url
