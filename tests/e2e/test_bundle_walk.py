"""The issue's "done means": a new user exports a resolved discrepancy's bundle, copies it to
a directory with no access to the service, verifies it (exit 0), flips one byte and sees it
named (exit 1). With a real local TSA, so the bundle carries RFC 3161 tokens too."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import time
import zipfile

import httpx
import psycopg
import pytest

from indelible import proofs
from indelible.store.tenants import create_tenant
from tests.tsa import local_tsa  # noqa: F401 - the fixture

from .cli_helpers import cli_env, indelible
from .test_http import Service, _interrupt, _start

OPEN = {"external_ref": "po-1042", "source": "stripe", "kind": "amount_mismatch",
        "expected_amount": "9850.00", "actual_amount": "10000.00", "currency": "EUR",
        "detected_at": "2026-11-23T05:00:00Z"}
SERVICE_ONLY = ("psycopg", "fastapi", "click", "orjson", "httpx", "nats", "uvicorn")


@pytest.fixture
def service(tmp_path, owner_url, app_url, local_tsa):
    env = cli_env(tmp_path / "data", owner_url)
    env.update(INDELIBLE_CHECKPOINT_INTERVAL="0.2", INDELIBLE_TSA_URL=local_tsa.url,
               INDELIBLE_TSA_CA_FILE=str(local_tsa.ca_file))
    tenant = f"bundle-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
    process, base = _start(env, tmp_path / "service.log")
    vkey = indelible(env, "signing-key", "show").stdout.strip()
    s = Service(base, tenant, proofs.NoteVerifier.from_key_text(vkey), env, [])
    try:
        yield s
    finally:
        for client in s.clients:
            client.close()
        assert _interrupt(process) == 0


def _resolved(analyst: httpx.Client) -> str:
    case = analyst.post("/v1/discrepancies", json=OPEN).json()["id"]
    path = f"/v1/discrepancies/{case}"
    for to in ("acknowledged", "investigating"):
        assert analyst.post(f"{path}/transitions", json={"to": to}).status_code == 200
    attached = analyst.post(f"{path}/evidence", params={"name": "fees.pdf"},
                            content=b"%PDF-1.4 fee line 150.00 EUR",
                            headers={"Content-Type": "application/pdf"})
    assert attached.status_code == 201, attached.text
    done = analyst.post(f"{path}/transitions", json={
        "to": "resolved", "resolution_code": "corrected_in_ledger", "note": "Fee booked"})
    assert done.status_code == 200, done.text
    return case


def _bundle_when_signed_and_dated(auditor: httpx.Client, tenant: str, case: str) -> bytes:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = auditor.get(f"/v1/logs/{tenant}/timestamps").json()
        if status["latest_checkpoint_size"] and status["checkpoints_without_token"] == 0:
            response = auditor.get(f"/v1/discrepancies/{case}/evidence")
            if response.status_code == 200:
                assert response.headers["content-type"] == "application/zip"
                assert response.headers["indelible-manifest-sha256"]
                return response.content
            assert response.status_code == 409, response.text  # not yet signed: named so
        time.sleep(0.2)
    raise AssertionError(f"no signed, timestamped bundle in time: {status}")


def _auditor_runs(workdir, *args: str) -> subprocess.CompletedProcess:
    """`python -m indelible.auditor` with nothing of the service: no INDELIBLE_* settings, no
    database, run from the auditor's own directory; it reports what it imported."""
    code = ("import sys; from indelible.auditor import main; rc = main(sys.argv[1:]); "
            f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVICE_ONLY!r})); "
            "print('IMPORTED', bad, file=sys.stderr); sys.exit(rc)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDELIBLE_")}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)


def test_an_auditor_verifies_a_resolved_discrepancys_bundle_offline(service, tmp_path,
                                                                     local_tsa):
    analyst, auditor = service.key("analyst"), service.key("auditor")
    case = _resolved(analyst)
    data = _bundle_when_signed_and_dated(auditor, service.tenant, case)

    away = tmp_path / "auditor"  # a directory with nothing but what the auditor was given
    away.mkdir()
    (away / "bundle.zip").write_bytes(data)
    (away / "key.txt").write_text(httpx.get(f"{service.base}/v1/verifier-key").text)
    (away / "tsa-ca.pem").write_bytes(local_tsa.ca_file.read_bytes())

    ok = _auditor_runs(away, "verify-bundle", "bundle.zip", "--vkey", "key.txt",
                       "--tsa-ca", "tsa-ca.pem", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "IMPORTED []" in ok.stderr
    report = json.loads(ok.stdout)
    assert report["status"] == "intact" and report["entries"] == 5 and report["timestamps"]

    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    victim = sorted(n for n in files if n.startswith("entries/") and n.endswith(".json"))[1]
    files[victim] = files[victim].replace(b'"acknowledged"', b'"acknowledgeD"')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    (away / "flipped.zip").write_bytes(out.getvalue())
    bad = _auditor_runs(away, "verify-bundle", "flipped.zip", "--vkey", "key.txt")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"FAILED {victim}" in bad.stdout and "NOT INTACT" in bad.stdout

    (away / "not-a-zip.zip").write_bytes(b"hello")
    assert _auditor_runs(away, "verify-bundle", "not-a-zip.zip", "--vkey", "key.txt"
                         ).returncode == 2

    # The same check from the full command, and the exports are in the ledger.
    full = indelible(service.env, "verify-bundle", str(away / "bundle.zip"),
                     "--vkey", str(away / "key.txt"))
    assert full.returncode == 0, full.stdout + full.stderr
    status = auditor.get(f"/v1/logs/{service.tenant}/timestamps").json()
    token = auditor.get(f"/v1/logs/{service.tenant}/checkpoints/"
                        f"{status['latest_timestamped_size']}/timestamp")
    assert token.status_code == 200
    assert token.headers["content-type"] == "application/timestamp-reply"
    missing = auditor.get(f"/v1/logs/{service.tenant}/checkpoints/999999/timestamp")
    assert missing.status_code == 404 and "no RFC 3161 token" in missing.json()["detail"]


def test_the_cli_exports_a_range_and_verify_checks_the_tokens(service, tmp_path):
    analyst = service.key("analyst")
    case = _resolved(analyst)
    auditor = service.key("auditor")
    _bundle_when_signed_and_dated(auditor, service.tenant, case)
    out = tmp_path / "range.zip"
    exported = indelible(service.env, "export", "--tenant", service.tenant, "--from", "0",
                         "--to", "3", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "recorded as seq" in exported.stdout
    key = tmp_path / "key.txt"
    key.write_text(httpx.get(f"{service.base}/v1/verifier-key").text)
    checked = indelible(service.env, "verify-bundle", str(out), "--vkey", str(key))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    since = auditor.get(f"/v1/discrepancies/{case}/history").json()["entries"][0]["at"]
    by_time = indelible(service.env, "export", "--tenant", service.tenant, "--from", since,
                        "--to", "2999-01-01T00:00:00Z", "--out", str(tmp_path / "t.zip"))
    assert by_time.returncode in (0, 2), by_time.stderr  # 2: the newest entries not yet signed
    assert by_time.returncode == 0 or "not all signed yet" in by_time.stderr
    by_case = indelible(service.env, "export", "--tenant", service.tenant, "--discrepancy",
                        "01a2a6c4-0000-7000-8000-000000000000", "--out", str(tmp_path / "x.zip"))
    assert by_case.returncode == 2 and "no discrepancy" in by_case.stderr
    verified = indelible(service.env, "verify", "--tenant", service.tenant)
    assert "RFC 3161 timestamp token" in verified.stderr
    assert verified.returncode in (0, 3), verified.stdout + verified.stderr
