"""What an operator's tools read from `indelible up`: Prometheus metrics on their own port,
JSON log lines with request ids and tenants (and never a secret), /readyz."""

from __future__ import annotations

import json
import secrets
import socket
import time

import httpx
import psycopg
import pytest

from indelible.runtime import free_port
from indelible.store.tenants import create_tenant

from .cli_helpers import cli_env, indelible
from .test_http import _interrupt, _start


@pytest.fixture(scope="module")
def service(tmp_path_factory, owner_url, app_url):
    tmp = tmp_path_factory.mktemp("operability")
    tenant = f"ops-{secrets.token_hex(3)}"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, tenant, base_origin="test.indelible.local/log")
    metrics_port = free_port()
    env = {**cli_env(tmp / "data", owner_url), "INDELIBLE_LOG_FORMAT": "json",
           "INDELIBLE_INGEST_ENABLED": "false",
           "INDELIBLE_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"}
    log = tmp / "service.log"
    process, base = _start(env, log)
    token = indelible(env, "api-key", "create", "--tenant", tenant, "--role", "analyst").stdout.strip()
    try:
        yield {"base": base, "tenant": tenant, "token": token, "log": log,
               "metrics": f"http://127.0.0.1:{metrics_port}/metrics"}
    finally:
        assert _interrupt(process) == 0


def _report(service, ref: str) -> httpx.Response:
    return httpx.post(f"{service['base']}/v1/discrepancies",
                      headers={"Authorization": f"Bearer {service['token']}",
                               "X-Request-ID": f"trace-{ref}"},
                      json={"external_ref": ref, "source": "stripe", "kind": "amount_mismatch",
                            "expected_amount": "10.00", "actual_amount": "12.00",
                            "currency": "EUR", "detected_at": "2026-11-23T05:00:00Z"})


def test_metrics_are_on_their_own_port_not_on_the_api_port(service):
    # A reference no tenant name can contain by chance (names end in random hex).
    ref = "ref-metrics-label-probe"
    assert _report(service, ref).status_code == 201
    on_api = httpx.get(f"{service['base']}/metrics")
    assert on_api.status_code == 404 and "INDELIBLE_METRICS_LISTEN" in on_api.json()["detail"]
    text = httpx.get(service["metrics"]).text
    tenant = service["tenant"]
    assert f'indelible_appends_total{{tenant="{tenant}",type="discrepancy.opened"}} 1.0' in text
    assert "indelible_append_batch_entries_bucket" in text
    assert "indelible_append_commit_seconds_bucket" in text
    assert ('indelible_http_request_seconds_count{method="POST",route="/v1/discrepancies",'
            'status="2xx"}') in text
    assert f'indelible_checkpoint_age_seconds{{tenant="{tenant}"}}' in text
    assert "indelible_database_up 1.0" in text
    assert 'indelible_embedded_server_up{server="postgresql"}' not in text  # not embedded here
    # No tenant data in any label but the tenant's name: no ids, references or actors.
    assert ref not in text and "stripe" not in text


def test_json_log_lines_carry_the_request_id_and_tenant_and_never_the_key(service):
    assert _report(service, "log-1").status_code == 201
    refused = httpx.get(f"{service['base']}/v1/discrepancies",
                        headers={"Authorization": "Bearer idl_thisIsNotAKeyButLooksLikeOne"})
    assert refused.status_code == 401 and refused.headers["x-request-id"]
    lines = [json.loads(line) for line in service["log"].read_text().splitlines()]  # all JSON
    assert any("serving on" in line["message"] for line in lines)
    (mine,) = [line for line in lines if line.get("request_id") == "trace-log-1"]
    assert mine["tenant"] == service["tenant"] and mine["logger"] == "indelible.access"
    assert mine["message"].startswith("POST /v1/discrepancies 201")
    text = service["log"].read_text()
    assert service["token"] not in text and "idl_thisIsNotAKeyButLooksLikeOne" not in text
    assert service["token"][4:20] not in text


def test_readyz_says_ready_with_its_checks_passing(service):
    response = httpx.get(f"{service['base']}/readyz")
    assert response.status_code == 200, response.text


def test_a_transition_answered_by_the_direct_lane_is_measured_under_its_route(service):
    opened = _report(service, "ref-direct-lane-probe")
    moved = httpx.post(f"{service['base']}/v1/discrepancies/{opened.json()['id']}/transitions",
                       headers={"Authorization": f"Bearer {service['token']}",
                                "Content-Type": "application/json"},  # the lane's (api/direct.py)
                       content=b'{"to":"acknowledged"}')
    assert moved.status_code == 200 and moved.headers["x-request-id"]
    assert ('indelible_http_request_seconds_count{method="POST",'
            'route="/v1/discrepancies/{discrepancy_id}/transitions",status="2xx"}'
            ) in httpx.get(service["metrics"]).text


def _transition_counts(service) -> dict[str, float]:
    """indelible_http_request_seconds_count of the transition route, by status class."""
    prefix = ('indelible_http_request_seconds_count{method="POST",'
              'route="/v1/discrepancies/{discrepancy_id}/transitions",status="')
    counts = {}
    for line in httpx.get(service["metrics"]).text.splitlines():
        if line.startswith(prefix):
            counts[line[len(prefix):len(prefix) + 3]] = float(line.rsplit(" ", 1)[1])
    return counts


def test_a_client_gone_mid_body_is_a_client_error_whichever_lane_took_it(service):
    """The usual path answers a body cut short by a disconnect with 400 (FastAPI), not a
    server error: the direct lane must not log a traceback and count a 5xx for it."""
    base = httpx.URL(service["base"])
    before = _transition_counts(service)
    for content_type in ("application/json", "application/json; charset=utf-8"):
        opened = _report(service, f"ref-gone-{content_type}")
        request = (f"POST /v1/discrepancies/{opened.json()['id']}/transitions HTTP/1.1\r\n"
                   f"Host: {base.host}\r\nAuthorization: Bearer {service['token']}\r\n"
                   f"Content-Type: {content_type}\r\nContent-Length: 100\r\n\r\n"
                   '{"to": "ack').encode()
        with socket.create_connection((base.host, base.port)) as client:
            client.sendall(request)
    deadline = time.monotonic() + 30
    while sum(_transition_counts(service).values()) < sum(before.values()) + 2:
        assert time.monotonic() < deadline, "the two cut requests were never measured"
        time.sleep(0.05)
    after = _transition_counts(service)
    assert after.get("5xx", 0) == before.get("5xx", 0)
    assert after["4xx"] == before.get("4xx", 0) + 2
