"""The direct lane (api/direct.py) answers a usual transition as FastAPI's path does, and
leaves everything else to that path: the same statuses, problems and headers either way.

A body sent as `application/json; charset=utf-8` takes the usual path (the lane takes only
plain `application/json`), so each pair below is the same request down both lanes."""

from __future__ import annotations

import re
import uuid

import httpx
import orjson
import pytest

from .test_discrepancy_walk import OPEN
from .test_http import running_service

PLAIN = {"Content-Type": "application/json"}  # the direct lane
USUAL = {"Content-Type": "application/json; charset=utf-8"}  # FastAPI's path
UNCHANGING = ("content-type", "www-authenticate")


@pytest.fixture(scope="module")
def service(tmp_path_factory, owner_url, app_url):
    with running_service(tmp_path_factory.mktemp("lane"), owner_url, app_url, "lane") as s:
        yield s


def _open(client: httpx.Client) -> str:
    opened = client.post("/v1/discrepancies", json={**OPEN, "external_ref": uuid.uuid4().hex})
    assert opened.status_code == 201, opened.text
    return opened.json()["id"]


def _both(client: httpx.Client, body, path: str | None = None, **headers):
    """The same transition request down the direct lane and down the usual path, each on a
    discrepancy of its own (fresh and open) unless `path` names one."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return [client.post(path or f"/v1/discrepancies/{_open(client)}/transitions", content=raw,
                        headers={**lane, **headers}) for lane in (PLAIN, USUAL)]


def _alike(direct: httpx.Response, usual: httpx.Response, *ignored: str) -> None:
    assert direct.status_code == usual.status_code, (direct.text, usual.text)
    for name in UNCHANGING:
        assert direct.headers.get(name) == usual.headers.get(name)
    assert direct.headers["x-request-id"] and usual.headers["x-request-id"]
    mine, theirs = direct.json(), usual.json()
    for name in ignored:  # values that differ between two discrepancies by nature
        assert (name in mine) == (name in theirs)
        mine.pop(name, None), theirs.pop(name, None)
    assert mine == theirs


def test_a_transition_is_answered_alike_by_both_lanes(service):
    analyst = service.key("analyst")
    direct, usual = _both(analyst, {"to": "acknowledged", "reason": "on it"})
    assert direct.status_code == 200
    _alike(direct, usual, "id", "seq", "updated_at", "opened_at", "external_ref",
           "acknowledged_at", "history_size")


def test_refusals_are_the_usual_paths_whichever_lane_took_the_request(service):
    analyst, auditor = service.key("analyst"), service.key("auditor")
    for refused, status in [
        (_both(analyst, {"to": "resolved", "resolution_code": "other", "note": "n"}), 409),  # the domain's
        (_both(analyst, {"to": "acknowledged", "extra": 1}), 422),  # the lane leaves it
        (_both(analyst, {"to": "acknowledged", "note": "n" * 4001}), 422),
        (_both(analyst, b'{"to": "acknowledged"'), 400),
        (_both(auditor, {"to": "acknowledged"},
               path=f"/v1/discrepancies/{_open(analyst)}/transitions"), 403),
        (_both(analyst, {"to": "acknowledged"}, path=f"/v1/discrepancies/{uuid.uuid4()}/transitions"),
         404),
        (_both(analyst, {"to": "acknowledged"}, path="/v1/discrepancies/not-a-uuid/transitions"),
         422),
        (_both(analyst, {"to": "acknowledged"}, **{"Idempotency-Key": "k" * 201}), 422),
    ]:
        direct, usual = refused
        assert direct.status_code == status, direct.text
        _alike(direct, usual, "discrepancy_id", "detail")


def test_a_body_the_lane_cannot_read_goes_the_usual_path_whole(service):
    analyst = service.key("analyst")
    path = f"/v1/discrepancies/{_open(analyst)}/transitions"
    moved = analyst.post(path, content=b'\xef\xbb\xbf{"to": "acknowledged"}', headers=PLAIN)
    assert moved.status_code == 200, moved.text  # json.loads reads a BOM; msgspec does not
    assert moved.json()["status"] == "acknowledged"


def test_an_idempotency_key_replays_across_lanes(service):
    analyst = service.key("analyst")
    path = f"/v1/discrepancies/{_open(analyst)}/transitions"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = analyst.post(path, content=b'{"to":"acknowledged"}', headers={**PLAIN, **key})
    again = analyst.post(path, content=b'{"to":"acknowledged"}', headers={**USUAL, **key})
    assert first.status_code == again.status_code == 200
    assert first.json()["seq"] == again.json()["seq"]
    other = analyst.post(path, content=b'{"to":"investigating"}', headers={**PLAIN, **key})
    assert other.status_code == 422 and other.json()["title"] == "Idempotency-Key reused"


def test_the_lane_answers_for_the_route_the_router_would_choose(service):
    """The lane runs before the router: no other POST route may match a transition's path."""
    paths = httpx.get(f"{service.base}/openapi.json").json()["paths"]
    sample = f"/v1/discrepancies/{uuid.uuid4()}/transitions"
    matching = [template for template, operations in paths.items() if "post" in operations
                and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), sample)]
    assert matching == ["/v1/discrepancies/{discrepancy_id}/transitions"]



def test_a_report_is_answered_alike_by_both_lanes_and_a_repeat_is_a_200(service):
    analyst = service.key("analyst")
    ref = uuid.uuid4().hex
    direct, usual = [analyst.post("/v1/discrepancies", headers=lane, content=orjson.dumps(
        {**OPEN, "external_ref": f"{ref}-{i}"})) for i, lane in enumerate((PLAIN, USUAL))]
    assert direct.status_code == 201
    _alike(direct, usual, "id", "external_ref", "opened_at", "updated_at", "seq")
    again = analyst.post("/v1/discrepancies", headers=PLAIN,
                         content=orjson.dumps({**OPEN, "external_ref": f"{ref}-0"}))
    assert again.status_code == 200 and again.json()["id"] == direct.json()["id"]
    refused = analyst.post("/v1/discrepancies", headers=PLAIN,
                           content=orjson.dumps({**OPEN, "currency": "EUR\n"}))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.currency"


def test_a_deeply_nested_report_is_refused_alike_by_both_lanes(service):
    """Nesting the domain refuses (past 16 levels) is refused naming the field by both
    lanes, wherever json.loads, pydantic's serializer or msgspec give up on their own."""
    analyst = service.key("analyst")
    for depth, status in [(17, 422), (300, 422), (2000, 400), (5000, 400)]:
        metadata = b"[" * depth + b"]" * depth
        answers = []
        for lane in (PLAIN, USUAL):
            body = orjson.dumps({**OPEN, "external_ref": uuid.uuid4().hex, "metadata": {}})
            body = body.replace(b'"metadata":{}', b'"metadata":{"a":' + metadata + b"}")
            with httpx.Client(base_url=service.base, headers=analyst.headers) as fresh:
                # a connection of its own: the server closes one after a 500
                answers.append(fresh.post("/v1/discrepancies", content=body, headers=lane))
        direct, usual = answers
        assert usual.status_code == status, (depth, usual.text)
        _alike(direct, usual)
        if status == 422:
            assert usual.json()["errors"][0]["field"].startswith("body.metadata.a")


def test_a_report_with_a_float_json_cannot_hold_is_refused_not_stored_as_null(service):
    """NaN and infinities are JSON to json.loads: the domain refuses them as floats, as any
    float (pydantic's JSON dump would have made them null)."""
    analyst = service.key("analyst")
    for number in (b"NaN", b"1e400", b"-Infinity"):
        body = orjson.dumps({**OPEN, "external_ref": uuid.uuid4().hex, "metadata": {}})
        body = body.replace(b'"metadata":{}', b'"metadata":{"a":' + number + b"}")
        direct, usual = [analyst.post("/v1/discrepancies", content=body, headers=lane)
                         for lane in (PLAIN, USUAL)]
        assert usual.status_code == 422, usual.text
        assert usual.json()["errors"][0] == {"field": "body.metadata.a", "rule": (
            "floats are not allowed; send amounts as decimal strings")}
        _alike(direct, usual)
