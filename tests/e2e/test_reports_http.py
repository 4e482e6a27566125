"""Reports through `indelible up`: asked over HTTP (202 + Location), rendered by the worker,
downloaded and tied to their ledger entry by `indelible report verify`; refused with a 422
naming the field; invisible to other tenants; finished after a restart mid-render."""

from __future__ import annotations

import secrets
import signal
import time

import httpx
import psycopg
import pytest

from indelible.store.tenants import create_tenant
from tests.integration.report_helpers import around_now, pdf_text, seed

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _start, running_service

DONE_TIMEOUT = 240  # seconds for a report to render on a loaded machine


@pytest.fixture
def service(tmp_path, owner_url, app_url):
    with running_service(tmp_path, owner_url, app_url, "rep") as s:
        with psycopg.connect(app_url, autocommit=True) as conn:
            seed(conn, s.tenant, 6, comments=1)
        yield s


def _wait(client, location: str, statuses=("done", "failed")) -> dict:
    deadline = time.monotonic() + DONE_TIMEOUT
    while time.monotonic() < deadline:
        body = client.get(location).json()
        if body["status"] in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError(f"report still {body['status']} ({body['progress']})")


def test_an_auditor_asks_for_a_report_downloads_the_pdf_and_verifies_it(service, tmp_path):
    auditor = service.key("auditor")
    asked = auditor.post("/v1/reports", json=around_now())
    assert asked.status_code == 202, asked.text
    location = asked.headers["Location"]
    assert location == f"/v1/reports/{asked.json()['id']}"
    assert asked.json()["status"] in ("queued", "running", "done")

    done = _wait(auditor, location)
    assert done["status"] == "done", done
    links = {f["name"]: f for f in done["files"]}
    assert set(links) == {"report.pdf", "report.html", "report.json"}
    pdf = auditor.get(links["report.pdf"]["href"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert service.tenant in text and "Verification" in text and "verified" in text
    assert auditor.get(links["report.json"]["href"]).json()["summary"]["discrepancies"] == 6

    path = tmp_path / "downloaded.pdf"
    path.write_bytes(pdf.content)
    verified = indelible(service.env, "report", "verify", str(path))
    assert verified.returncode == 0, verified.stderr
    assert f"seq {done['entry_seq']} of tenant {service.tenant}" in verified.stdout
    path.write_bytes(pdf.content + b"\n")
    assert indelible(service.env, "report", "verify", str(path)).returncode == 1


def test_bad_parameters_get_a_422_naming_the_field(service):
    manager = service.key("compliance_manager")
    cases = [({"from": "2026-10-01", "to": "2026-09-01"}, "body.to", "after"),
             ({"from": "2016-01-01", "to": "2026-01-01"}, "body.to", "366 days"),
             ({"from": "2026-10-01", "to": "2026-11-01", "filters": {"status": ["lost"]}},
              "body.filters.status", "lost"),
             ({"from": "yesterday", "to": "2026-11-01"}, "body.from", "not a date"),
             ({"from": "2026-10-01", "to": "2026-11-01", "formats": ["docx"]}, "body.formats",
              "docx")]
    for body, field, words in cases:
        refused = manager.post("/v1/reports", json=body)
        assert refused.status_code == 422, (body, refused.text)
        problem = refused.json()
        assert refused.headers["content-type"] == "application/problem+json"
        assert any(e["field"] == field and words in e["rule"] for e in problem["errors"]), problem
    assert service.key("analyst").post("/v1/reports", json=around_now()).status_code == 403


def test_another_tenant_can_neither_see_nor_fetch_a_report(service, app_url):
    auditor = service.key("auditor")
    done = _wait(auditor, auditor.post("/v1/reports", json=around_now() | {"formats": ["json"]})
                 .headers["Location"])
    other = f"oth-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, other, base_origin="test.indelible.local/log")
    stranger = service.key("auditor", tenant=other)
    for path in (f"/v1/reports/{done['id']}", done["files"][0]["href"]):
        assert stranger.get(path).status_code == 404
        assert auditor.get(path).status_code == 200
    assert stranger.get("/v1/reports").json() == []


def test_a_report_asked_for_before_a_restart_is_finished_after_it(tmp_path, owner_url, app_url):
    env = cli_env(tmp_path / "data", owner_url)
    env["INDELIBLE_CHECKPOINT_INTERVAL"] = "0.2"
    tenant = f"rst-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
        seed(conn, tenant, 60, comments=30)  # enough entries to take a while to render
    token = indelible(env, "api-key", "create", "--tenant", tenant, "--role", "auditor").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    process, base = _start(env, tmp_path / "first.log")
    try:
        with httpx.Client(base_url=base, headers=headers) as auditor:
            location = auditor.post("/v1/reports", json=around_now()).headers["Location"]
            _wait(auditor, location, statuses=("running", "done", "failed"))
    finally:
        process.send_signal(signal.SIGKILL)  # a crash: no clean shutdown, mid-render
        process.wait(30)
    status_at_crash = _job_status(app_url, tenant, location)
    assert status_at_crash == "running"  # the claim died with the process
    process, base = _start(env, tmp_path / "second.log")
    try:
        with httpx.Client(base_url=base, headers=headers) as auditor:
            done = _wait(auditor, location)
        assert done["status"] == "done", done
        assert done["files"] and done["entry_seq"] is not None
    finally:
        assert _interrupt(process) == 0
    with psycopg.connect(app_url, autocommit=True) as conn:
        (generated,) = conn.execute("SELECT count(*) FROM ledger_entries WHERE tenant_id = %s "
                                    "AND type = 'report.generated'", (tenant,)).fetchone()
    assert generated == 1


def _job_status(app_url, tenant, location) -> str:
    with psycopg.connect(app_url, autocommit=True) as conn:
        (status,) = conn.execute("SELECT status FROM report_jobs WHERE tenant_id = %s AND "
                                 "report_id = %s", (tenant, location.rsplit("/", 1)[1])).fetchone()
    return status


def test_a_tenant_schedules_a_monthly_report_and_cancels_it(service, app_url):
    manager = service.key("compliance_manager")
    refused = manager.post("/v1/report-schedules", json={"every": "daily"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.every"
    made = manager.post("/v1/report-schedules", json={"every": "monthly", "formats": ["pdf"]})
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert schedule["every"] == "monthly" and schedule["next_run_at"].endswith("T00:00:00Z")
    assert [s["id"] for s in manager.get("/v1/report-schedules").json()] == [schedule["id"]]
    other = f"oth-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, other, base_origin="test.indelible.local/log")
    stranger = service.key("auditor", tenant=other)
    assert stranger.delete(f"/v1/report-schedules/{schedule['id']}").status_code == 404
    assert manager.delete(f"/v1/report-schedules/{schedule['id']}").status_code == 204
    assert manager.get("/v1/report-schedules").json()[0]["cancelled"] is True

