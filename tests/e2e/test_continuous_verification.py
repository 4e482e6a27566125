"""`indelible up` verifies itself: a superuser's edit raises the alarm within seconds.

Each test runs the real service over a database of its own (the suite's database holds logs
other tests tampered with on purpose), tampers as a superuser while it runs, and watches
what an operator would: /readyz, the CRITICAL log line, /metrics on the metrics port, the
alarm book beside the signing key, and the tenant's own ledger.
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from indelible.runtime import free_port
from indelible.store.appender import append_batch
from indelible.store.db import app_conninfo
from indelible.store.schema import migrate
from indelible.store.tenants import create_tenant
from tests.integration.ledger_helpers import command, superuser

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _start

ALERT_WITHIN = 15.0  # seconds: "within seconds", with room for a loaded machine


@pytest.fixture
def own_database(pg_server_url, owner_url):
    """A database with only this test's tenants (owner_url: the roles exist and log in)."""
    name = f"indelible_cv_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(pg_server_url, dbname=name)
    migrate(url)
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Watched:
    def __init__(self, tmp_path, owner_url: str, entries: int, **env):
        self.owner_url, self.app_url = owner_url, app_conninfo(owner_url)
        self.tenant = f"cv-{secrets.token_hex(3)}"
        with psycopg.connect(self.app_url, autocommit=True) as conn:
            create_tenant(conn, self.tenant, base_origin="test.indelible.local/log")
            append_batch(conn, self.tenant, [command(i) for i in range(entries)])
        self.metrics_port = free_port()
        self.data = tmp_path / "data"
        self.env = {**cli_env(self.data, owner_url), "INDELIBLE_CONTINUOUS_VERIFY": "true",
                    "INDELIBLE_INGEST_ENABLED": "false", "INDELIBLE_CHECKPOINT_INTERVAL": "0.2",
                    "INDELIBLE_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}", **env}
        self.log = tmp_path / "service.log"
        self.process, self.base = _start(self.env, self.log)

    def metric(self, name: str, **labels) -> float | None:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + ("{" + want + "}" if labels else " ")):
                return float(line.split()[-1])
        return None

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.base}/readyz", timeout=5)

    def entries(self, type_: str) -> list[dict]:
        with psycopg.connect(self.app_url) as conn:
            rows = conn.execute("SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s AND "
                                "type = %s ORDER BY seq", (self.tenant, type_)).fetchall()
        return [{"seq": seq, **json.loads(bytes(entry))} for seq, entry in rows]

    def alarms(self) -> list[dict]:
        book = self.data / "integrity-alarms.jsonl"
        return [json.loads(line) for line in book.read_text().splitlines()] if book.exists() else []

    def tamper(self, seq: int) -> None:
        with superuser(self.owner_url) as rogue:
            changed = rogue.execute("UPDATE ledger_entries SET entry = overlay(entry PLACING '9' "
                                    "FROM 60 FOR 1) WHERE tenant_id = %s AND seq = %s",
                                    (self.tenant, seq)).rowcount
        assert changed == 1

    def close(self) -> None:
        if self.process.poll() is None:
            assert _interrupt(self.process) == 0


def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g} s: {what}")


@pytest.fixture
def watched(tmp_path, own_database):
    services = []

    def start(entries: int, **env) -> Watched:
        services.append(Watched(tmp_path, own_database, entries, **env))
        return services[-1]
    yield start
    for service in services:
        service.close()


def test_editing_a_recent_entry_raises_the_alarm_within_seconds_naming_it(watched):
    service = watched(300)
    size = 301  # the tenant's creation entry, then ours
    until(lambda: service.metric("indelible_verifier_signed_entries", tenant=service.tenant) == size,
          60, "the verifier proved every entry under a checkpoint")
    assert service.ready().status_code == 200, service.ready().text
    assert service.metric("indelible_integrity_ok", tenant=service.tenant) is None

    service.tamper(290)
    tampered_at = time.monotonic()
    problem = until(lambda: service.ready().status_code == 503 and service.ready().json(),
                    ALERT_WITHIN, "/readyz reports the integrity problem")
    assert time.monotonic() - tampered_at < ALERT_WITHIN
    assert problem["component"] == "integrity"
    assert "seq 290 of a tenant's log failed the leaf_hash check" in problem["detail"], problem
    assert service.tenant not in problem["detail"]  # /readyz is public
    until(lambda: "INTEGRITY ALARM" in service.log.read_text(), 5, "the CRITICAL log line")
    line = next(l for l in service.log.read_text().splitlines() if "INTEGRITY ALARM" in l)
    assert "CRITICAL" in line and f"tenant {service.tenant}, seq 290" in line
    assert service.metric("indelible_verification_findings_total", tenant=service.tenant,
                          check="leaf_hash") == 1
    assert service.metric("indelible_integrity_ok", tenant=service.tenant) == 0
    (alarm,) = service.alarms()
    assert (alarm["tenant"], alarm["seq"], alarm["check"], alarm["found_by"]) == (
        service.tenant, 290, "leaf_hash", "incremental")
    # The chain is broken: nothing is appended to that log about it (see monitor/service.py).
    assert service.entries("verification.failed") == []


def test_editing_an_old_entry_is_caught_by_the_next_full_run(watched):
    service = watched(300, INDELIBLE_VERIFY_RECENT_ENTRIES="10",
                      INDELIBLE_FULL_VERIFY_INTERVAL="3")
    (first, *_) = until(lambda: service.entries("verification.completed"), 60,
                        "a first full run recorded in the ledger")
    assert first["stream"] == "tenant/verification"
    assert first["actor"] == {"id": "indelible-verifier", "kind": "system", "role": "system"}
    data = first["data"]
    assert data["kind"] == "full" and data["from_seq"] == 0 and data["findings"] == 0
    assert data["result"] in ("verified", "unsigned") and data["to_seq"] == data["size"] - 1
    assert data["root"] and data["duration_ms"] >= 0
    assert service.metric("indelible_verification_runs_total", tenant=service.tenant,
                          result=data["result"]) >= 1
    # An auditor's `indelible verify` (both passes) accepts the verifier's own entries.
    audited = indelible(service.env, "verify", "--tenant", service.tenant)
    assert audited.returncode in (0, 3), audited.stdout + audited.stderr

    service.tamper(5)  # far outside the 10 newest entries the incremental verifier re-reads
    problem = until(lambda: service.ready().status_code == 503 and service.ready().json(),
                    30, "the next full run raises the alarm")
    assert "seq 5 of a tenant's log failed the leaf_hash check" in problem["detail"], problem
    alarms = service.alarms()
    assert {(a["seq"], a["check"], a["found_by"]) for a in alarms} >= {(5, "leaf_hash", "full")}
    completed = len(service.entries("verification.completed"))
    time.sleep(4)  # another full run: it finds the break again and appends nothing to that log
    assert len(service.entries("verification.completed")) == completed


def test_a_finding_about_derived_data_is_recorded_in_the_tenants_ledger(watched):
    service = watched(300, INDELIBLE_FULL_VERIFY_INTERVAL="3")
    until(lambda: service.entries("verification.completed"), 60, "a first full run")
    with superuser(service.owner_url) as rogue:
        rogue.execute("UPDATE merkle_nodes SET hash = %s WHERE tenant_id = %s AND level = 8 "
                      "AND idx = 0", (b"\x07" * 32, service.tenant))
    (failed,) = until(lambda: service.entries("verification.failed"), 30,
                      "a verification.failed entry")
    assert failed["data"]["found_by"] == "full" and failed["data"]["seq"] == 0
    assert [f["check"] for f in failed["data"]["findings"]] == ["merkle_node"]
    assert service.ready().json()["component"] == "integrity"
    assert service.metric("indelible_verification_findings_total", tenant=service.tenant,
                          check="merkle_node") == 1


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_the_verifier_process_does_not_outlive_a_killed_service(watched):
    service = watched(10)
    verifiers = until(lambda: _children(service.process.pid), 30, "the verifier process")
    service.process.send_signal(signal.SIGKILL)
    service.process.wait(30)
    until(lambda: not any(Path(f"/proc/{pid}").exists() and
                          "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
                          for pid in verifiers), 15, "the orphaned verifier stops")


def test_bench_append_measures_the_cost_of_verification_in_the_same_run(own_database, tmp_path):
    from click.testing import CliRunner

    from indelible.cli import main

    env = {"INDELIBLE_DATABASE_URL": own_database, "INDELIBLE_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, ["bench", "append", "--json", "--entries", "600",
                                       "--latency-samples", "5", "--verifier-ab"], env=env)
    assert result.exit_code == 0, result.output
    ab = json.loads(result.stdout)["measurements"]["append_with_verifier"]
    assert ab["target"] == "ratio ≥ 0.9" and ab["baseline"]["rate"] > 0 < ab["ours"]["rate"]
    assert "continuous verification off" in ab["baseline_what"]
    assert len(ab["details"]["rates_on"]) == 3 and ab["details"]["verifier_max_lag_entries"] >= 0
