"""One shape for errors and times, through a running `indelible up` (issue 9, item 6): field
paths named by location, malformed JSON 400, other media types 415 (after 401), every status
documented, `…Z` timestamps, `as_of` bounded by the log, one 404 for tenants a key cannot see."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest

from indelible.store.tenants import create_tenant

from .test_discrepancy_walk import OPEN
from .test_http import running_service

UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def service(tmp_path_factory, owner_url, app_url):
    with running_service(tmp_path_factory.mktemp("shapes"), owner_url, app_url, "shape") as s:
        yield s


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [e["field"] for e in response.json()["errors"]]


def test_field_paths_name_the_location_whether_the_schema_or_the_domain_refuses(service):
    analyst, manager = service.key("analyst"), service.key("compliance_manager")
    schema = analyst.post("/v1/discrepancies", json={**OPEN, "currency": "eur"})
    domain = analyst.post("/v1/discrepancies", json={**OPEN, "currency": "QQQ"})
    assert (schema.status_code, domain.status_code) == (422, 422)
    assert _fields(schema) == _fields(domain) == ["body.currency"]
    assert domain.json()["detail"].startswith("body.currency: ")
    late = analyst.post("/v1/discrepancies", json={**OPEN, "detected_at": "yesterday"})
    assert _fields(late) == ["body.detected_at"]

    policy = manager.put("/v1/severity-policy", json={
        "thresholds": {"USD": {"medium": "10", "high": "5", "critical": "50"}},
        "reason": "r", "expected_version": 0})
    assert policy.status_code == 422 and _fields(policy)[0].startswith("body.thresholds.USD.")

    d = analyst.post("/v1/discrepancies", json=OPEN).json()
    evidence = f"/v1/discrepancies/{d['id']}/evidence"
    named = analyst.post(evidence, params={"name": "a/b.pdf"}, content=b"x")
    typed = analyst.post(evidence, params={"name": "b.pdf"}, content=b"x",
                         headers={"Content-Type": "not a type"})
    assert (_fields(named), _fields(typed)) == (["query.name"], ["header.Content-Type"])
    naive = analyst.get("/v1/discrepancies", params={"opened_after": "2026-11-23T05:00:00"})
    assert _fields(naive) == ["query.opened_after"]


def test_malformed_json_is_a_400_naming_the_body(service):
    analyst = service.key("analyst")
    broken = analyst.post("/v1/discrepancies", content=b'{"external_ref": "x", "source": ',
                          headers={"Content-Type": "application/json"})
    assert broken.status_code == 400, broken.text
    assert _fields(broken) == ["body"] and "not valid JSON" in broken.json()["detail"]


def test_a_json_route_refuses_another_media_type_with_415_after_the_key_is_checked(service):
    analyst = service.key("analyst")
    body = httpx.Request("POST", "/", json=OPEN).content
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        refused = analyst.post("/v1/discrepancies", content=body, headers=headers)
        assert refused.status_code == 415, (headers, refused.text)
        assert _fields(refused) == ["header.Content-Type"]
    anonymous = httpx.post(f"{service.base}/v1/discrepancies", content=body,
                           headers={"Content-Type": "text/plain"})
    assert anonymous.status_code == 401
    assert analyst.post("/v1/discrepancies", content=body,  # recorded by an earlier test: 200
                        headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200
    d = analyst.post("/v1/discrepancies", json=OPEN).json()
    attached = analyst.post(f"/v1/discrepancies/{d['id']}/evidence", params={"name": "n.txt"},
                            content=b"note", headers={"Content-Type": "text/plain"})
    assert attached.status_code == 201  # evidence takes any media type: it is the file's


def test_every_status_the_api_answers_is_in_the_openapi_document(service):
    paths = httpx.get(f"{service.base}/openapi.json").json()["paths"]

    def statuses(path: str, method: str) -> set[int]:
        return {int(code) for code in paths[path][method]["responses"]}
    assert {200, 201, 400, 401, 403, 409, 413, 415, 422, 503} <= statuses("/v1/discrepancies", "post")
    assert {413, 415} & statuses("/v1/discrepancies/{discrepancy_id}/evidence", "post") == {413}
    assert statuses("/v1/verifier-key", "get") == {200}  # public: no 401
    for path, operations in paths.items():
        for method, operation in operations.items():
            takes_json = "application/json" in operation.get("requestBody", {}).get("content", {})
            assert not takes_json or {400, 415, 422} <= statuses(path, method), (method, path)
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    assert "application/problem+json" in response["content"], (method, path, code)

    analyst = service.key("analyst")
    first = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "documented-replay"})
    replay = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "documented-replay"})
    assert (first.status_code, replay.status_code) == (201, 200)


def test_every_timestamp_is_utc_with_a_z(service):
    admin, analyst = service.key("admin"), service.key("analyst")
    issued = admin.post("/v1/api-keys", json={"role": "auditor"}).json()
    assert admin.delete(f"/v1/api-keys/{issued['key_id']}").status_code == 200
    key = next(k for k in admin.get("/v1/api-keys").json()["keys"] if k["key_id"] == issued["key_id"])
    d = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "timed"}).json()
    path = f"/v1/discrepancies/{d['id']}"
    for to in ("acknowledged", "investigating"):
        assert analyst.post(f"{path}/transitions", json={"to": to}).status_code == 200
    assert analyst.post(f"{path}/transitions", json={
        "to": "resolved", "resolution_code": "corrected_in_ledger", "note": "n"}).status_code == 200
    snapshot = analyst.get(f"{path}/snapshot").json()
    history = analyst.get(f"{path}/history").json()["entries"]
    times = [key["issued_at"], key["revoked_at"], snapshot["frozen_at"], d["opened_at"],
             d["updated_at"], d["detected_at"], *(h["at"] for h in history)]
    assert [t for t in times if not UTC_Z.match(t)] == []


def test_as_of_beyond_the_end_of_the_log_says_so(service):
    analyst = service.key("analyst")
    d = analyst.post("/v1/discrepancies", json={**OPEN, "external_ref": "time-travel"}).json()
    path = f"/v1/discrepancies/{d['id']}"
    seq = analyst.get(f"{path}/history").json()["entries"][-1]["seq"]
    assert analyst.get(path, params={"as_of": seq}).status_code == 200
    just_now = datetime.now(timezone.utc).isoformat()  # after the opening, before the request
    assert analyst.get(path, params={"as_of": just_now}).status_code == 200

    beyond = analyst.get(path, params={"as_of": 10**12})
    assert beyond.status_code == 422 and _fields(beyond) == ["query.as_of"]
    problem = beyond.json()
    assert problem["title"] == "Beyond the end of the log" and problem["log_size"] > seq
    assert f"0..{problem['log_size'] - 1}" in problem["detail"] and UTC_Z.match(problem["latest_at"])
    tomorrow = analyst.get(path, params={"as_of": (datetime.now(timezone.utc) + timedelta(days=1))
                                         .strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert tomorrow.status_code == 422 and "later than now" in tomorrow.json()["detail"]


def test_another_tenants_log_looks_exactly_like_one_that_does_not_exist(service, app_url):
    other = f"{service.tenant}-x"
    with psycopg.connect(app_url, autocommit=True) as conn:
        create_tenant(conn, other, base_origin="test.indelible.local/log")
    stranger = service.key("auditor", tenant=other)
    missing = f"{service.tenant}-none"
    for path in ("checkpoint", "entries/1", "consistency?size1=1&size2=2"):
        hidden = stranger.get(f"/v1/logs/{service.tenant}/{path}")
        absent = stranger.get(f"/v1/logs/{missing}/{path}")
        assert hidden.status_code == absent.status_code == 404, path
        assert hidden.text.replace(service.tenant, "T") == absent.text.replace(missing, "T")
        assert "no ledger log" not in hidden.text and "create it" not in hidden.text
