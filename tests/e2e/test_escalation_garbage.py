"""Garbage a client may send to the escalation API, through the real `indelible up`: every
answer is a 4xx problem naming what was wrong, never a 500, and nothing is written."""

from __future__ import annotations

import pytest

from .test_http import running_service


@pytest.fixture
def service(tmp_path, owner_url, app_url):
    with running_service(tmp_path, owner_url, app_url, "garb") as s:
        yield s


def _rule(**over) -> dict:
    rule = {"id": "r1", "name": "R1", "severity": "*", "after": "PT1H",
            "action": {"type": "notify", "target": "ops", "message": "{id}"}}
    return {**rule, **over}


BAD_RULES = [
    ("rules[r1].after", [_rule(after="PT" + "9" * 5000 + "S")]),  # past int()'s digit limit
    ("rules[r1].after", [_rule(after="PT\u0663H")]),  # a non-ASCII digit
    ("rules[r1].after", [_rule(after="P" + "9" * 40 + "D")]),
    ("rules[r1].priority", [_rule(priority=10**30)]),
]


@pytest.mark.parametrize("field,rules", BAD_RULES, ids=[f"{i}" for i in range(len(BAD_RULES))])
def test_bad_rules_are_refused_naming_the_field(service, field, rules):
    admin = service.key("admin")
    for path in ("/v1/escalation-rules/preview", "/v1/escalation-rules"):
        body = {"rules": rules, "reason": "x", "expected_version": 0}
        if path.endswith("preview"):
            body = {"rules": rules}
        response = admin.request("POST" if path.endswith("preview") else "PUT", path, json=body)
        assert response.status_code == 422, (path, response.status_code, response.text[:300])
        assert field in response.text, response.text[:500]
    assert admin.get("/v1/escalation-rules").json()["version"] == 0


BAD_CALENDARS = [
    ("time_zone", {"time_zone": "a" * 300}),  # a file name too long for the zone lookup
    ("time_zone", {"time_zone": "Europe"}),  # a directory of the zone database
]


def test_bad_calendars_and_times_are_refused_naming_the_field(service):
    admin, manager = service.key("admin"), service.key("compliance_manager")
    for field, calendar in BAD_CALENDARS:
        response = admin.put("/v1/business-calendar",
                             json={**calendar, "reason": "x", "expected_version": 0})
        assert response.status_code == 422, (calendar, response.status_code, response.text[:300])
        assert field in response.text
    for as_of in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "99999999999999999999"):
        response = admin.get("/v1/escalation-rules", params={"as_of": as_of})
        assert response.status_code in (200, 422), (as_of, response.status_code, response.text)
    opened = service.key("analyst").post("/v1/discrepancies", json={
        "external_ref": "po-g", "source": "stripe", "kind": "amount_mismatch",
        "expected_amount": "1.00", "actual_amount": "2.00", "currency": "EUR",
        "detected_at": "2026-11-23T05:00:00Z", "severity": "high"})
    assert opened.status_code == 201, opened.text
    d = opened.json()["id"]
    for until in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-30T10:00"):
        response = manager.post(f"/v1/discrepancies/{d}/escalation/pause",
                                json={"reason": "x", "until": until})
        assert response.status_code == 422, (until, response.status_code, response.text)
        assert "until" in response.text
    nested = '{"rules": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = admin.post("/v1/escalation-rules/preview", content=nested,
                          headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
