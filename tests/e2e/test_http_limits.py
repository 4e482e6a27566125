"""Unbounded input, through a running `indelible up`: the key is checked and the size limited
before any body is read; a refused evidence upload leaves nothing behind."""

from __future__ import annotations

import hashlib
import socket
import time
from urllib.parse import urlsplit

import psycopg
import pytest

from indelible.api.guard import JSON_LIMIT
from indelible.store.evidence import MAX_FILE

from .test_discrepancy_walk import OPEN
from .test_http import running_service


@pytest.fixture(scope="module")
def service(tmp_path_factory, owner_url, app_url):
    with running_service(tmp_path_factory.mktemp("limits"), owner_url, app_url, "limits") as s:
        yield s


def _raw_post(base: str, path: str, headers: dict, first_bytes: bytes) -> tuple[int, bytes, float]:
    """Declare a body, send only its first bytes, and read the answer: the service must
    answer without waiting for (or buffering) the rest."""
    url = urlsplit(base)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.hostname}\r\n{head}\r\n".encode()
                  + first_bytes)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer, time.monotonic() - started


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_huge_body_without_a_key_is_refused_before_it_is_read(service):
    status, answer, took = _raw_post(service.base, "/v1/discrepancies", {
        "Content-Type": "application/json", "Content-Length": str(50 * 1024 * 1024)},
        b"{" + b" " * 65536)
    assert status == 401 and b"www-authenticate: bearer" in answer.lower()
    assert took < 5


def test_a_malformed_body_without_a_key_is_401_not_422(service):
    import httpx
    response = httpx.post(f"{service.base}/v1/discrepancies", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    wrong = httpx.post(f"{service.base}/v1/discrepancies", content=b"{not json",
                       headers={"Content-Type": "application/json",
                                "Authorization": "Bearer idl_nobody"})
    assert wrong.status_code == 401, wrong.text


def test_a_declared_oversized_body_with_a_key_is_413_naming_the_limit(service):
    analyst = service.key("analyst")
    token = analyst.headers["Authorization"]
    status, answer, took = _raw_post(service.base, "/v1/discrepancies", {
        "Content-Type": "application/json", "Content-Length": str(JSON_LIMIT + 1),
        "Authorization": token}, b"{")
    assert status == 413 and took < 5 and f'"limit":{JSON_LIMIT}'.encode() in answer
    status, answer, took = _raw_post(
        service.base, "/v1/discrepancies/00000000-0000-4000-8000-000000000000/evidence?name=b",
        {"Content-Length": str(MAX_FILE + 1), "Authorization": token}, b"x" * 65536)
    assert status == 413 and took < 5 and f'"limit":{MAX_FILE}'.encode() in answer


def test_a_streamed_body_without_length_is_cut_at_the_limit(service):
    analyst = service.key("analyst")

    def chunks():
        for _ in range(64):
            yield b" " * 65536  # 4 MiB in all, no Content-Length: chunked

    response = analyst.post("/v1/discrepancies", content=chunks(),
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert str(JSON_LIMIT) in response.json()["detail"]


def _blob_exists(app_url: str, tenant: str, content: bytes) -> bool:
    with psycopg.connect(app_url) as conn:
        conn.execute("SELECT set_config('indelible.tenant', %s, false)", (tenant,))
        return conn.execute("SELECT 1 FROM evidence_files WHERE tenant_id = %s AND sha256 = %s",
                            (tenant, hashlib.sha256(content).digest())).fetchone() is not None


def test_a_refused_evidence_upload_stores_no_file(service, app_url):
    analyst, manager = service.key("analyst"), service.key("compliance_manager")
    d = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "limits-1"}).json()
    path = f"/v1/discrepancies/{d['id']}"
    for to in ("acknowledged", "investigating"):
        assert analyst.post(f"{path}/transitions", json={"to": to}).status_code == 200
    resolved = manager.post(f"{path}/transitions", json={
        "to": "resolved", "resolution_code": "corrected_in_ledger", "note": "fixed"})
    assert resolved.status_code == 200, resolved.text

    late = b"a statement that arrives after the decision " + d["id"].encode()
    refused = analyst.post(f"{path}/evidence", params={"name": "late.pdf"}, content=late)
    assert refused.status_code == 409, refused.text
    assert not _blob_exists(app_url, service.tenant, late)

    unknown = b"evidence for a discrepancy that does not exist"
    missing = analyst.post("/v1/discrepancies/00000000-0000-4000-8000-000000000000/evidence",
                           params={"name": "x.pdf"}, content=unknown)
    assert missing.status_code == 404
    assert not _blob_exists(app_url, service.tenant, unknown)

    open_one = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "limits-2"}).json()
    kept = b"accepted evidence " + open_one["id"].encode()
    accepted = analyst.post(f"/v1/discrepancies/{open_one['id']}/evidence",
                            params={"name": "ok.pdf"}, content=kept)
    assert accepted.status_code == 201 and _blob_exists(app_url, service.tenant, kept)


def test_history_comes_a_bounded_page_at_a_time(service):
    analyst = service.key("analyst")
    d = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "limits-3"}).json()
    path = f"/v1/discrepancies/{d['id']}"
    for i in range(4):
        assert analyst.post(f"{path}/comments", json={"text": f"note {i}"}).status_code == 201
    assert analyst.post(f"{path}/transitions", json={"to": "acknowledged"}).status_code == 200
    first = analyst.get(f"{path}/history", params={"limit": 3}).json()
    assert len(first["entries"]) == 3 and first["next_after_seq"] == first["entries"][-1]["seq"]
    rest = analyst.get(f"{path}/history", params={"limit": 3,
                                                  "after_seq": first["next_after_seq"]}).json()
    assert [e["type"] for e in rest["entries"]][-1] == "discrepancy.transitioned"
    assert rest["entries"][-1]["status_before"] == "open" and rest["next_after_seq"] is None
    assert len(first["entries"]) + len(rest["entries"]) == 6
    assert analyst.get(f"{path}/history", params={"limit": 5000}).status_code == 422
