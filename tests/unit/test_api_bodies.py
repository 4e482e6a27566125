"""The direct lane's msgspec decoders admit exactly what the usual path's pydantic models
admit, with the same values (api/bodies.py); the pydantic model is the oracle."""

from __future__ import annotations

import json

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible.api import bodies
from indelible.api.routes.discrepancies import TransitionRequest

REFUSED = "refused"
STATUSES = ["open", "acknowledged", "investigating", "resolved", "escalated", "auto_closed"]
LIMITS = {"reason": 1000, "resolution_code": 64, "note": 4000}


def usual(raw: bytes):
    """What FastAPI's path makes of a JSON body: `json.loads`, then the strict model."""
    try:
        value = json.loads(raw)
    except ValueError:
        return REFUSED
    try:
        return TransitionRequest.model_validate(value).model_dump(mode="json")
    except pydantic.ValidationError:
        return REFUSED


def direct(raw: bytes):
    import msgspec

    try:
        return msgspec.structs.asdict(bodies.TRANSITION.decode(raw))
    except msgspec.DecodeError:  # ValidationError is one
        return REFUSED


def around(limit: int):
    """Text of a length at, below or just over `limit`, with characters beyond ASCII (a
    limit counts characters, not bytes)."""
    return st.integers(limit - 2, limit + 2).flatmap(
        lambda n: st.text(st.sampled_from("aé€😀\x00\"\\\n"), min_size=max(n, 0),
                          max_size=max(n, 0)))


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False), st.text(max_size=5))
values = st.one_of(scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(st.text(max_size=3), scalars, max_size=2))
fields = {"to": st.one_of(st.sampled_from(STATUSES), st.sampled_from(["Open", "closed", ""]),
                          values),
          **{name: st.one_of(st.none(), around(limit), values) for name, limit in LIMITS.items()}}
bodies_ = st.dictionaries(st.sampled_from([*fields, "extra", "To"]), st.none(), max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({k: fields.get(k, values) for k in keys}))


@settings(max_examples=600, deadline=None)
@given(bodies_)
def test_a_json_object_is_admitted_by_both_or_by_neither_with_the_same_values(body):
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert direct(raw) == usual(raw)
    escaped = json.dumps(body).encode()  # non-ASCII as \u escapes
    assert direct(escaped) == usual(escaped)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60) | st.builds(lambda b, cut: json.dumps(b).encode()[:cut], bodies_,
                                          st.integers(0, 80)))
def test_bytes_the_direct_lane_admits_the_usual_path_admits_alike(raw):
    got = direct(raw)
    assert got == REFUSED or got == usual(raw)


@pytest.mark.parametrize("raw", [
    b'{"to":"acknowledged","to":"resolved"}',  # duplicate keys: the last one counts in both
    b' {"to":"open"}\n', b'{"to":"open","reason":null,"note":"\\u00e9\\ud83d\\ude00"}',
])
def test_json_details_read_alike(raw):
    assert direct(raw) == usual(raw) != REFUSED


@pytest.mark.parametrize("raw", [
    b'{"to":"open","reason":"\\ud800"}',  # a lone surrogate
    b'{"to":"open"} x', b'{"to":NaN}', b'{"to":"open","note":1e400}', b'',
])
def test_what_both_refuse(raw):
    assert direct(raw) == usual(raw) == REFUSED


@pytest.mark.parametrize("raw", [
    b'\xef\xbb\xbf{"to":"open"}',  # a BOM, and UTF-16: json.loads reads them, msgspec not
    '{"to":"open"}'.encode("utf-16"),
])
def test_bodies_msgspec_cannot_read_are_left_to_the_usual_path(raw):
    assert direct(raw) == REFUSED
    assert usual(raw) != REFUSED


@pytest.mark.parametrize("field", LIMITS)
@pytest.mark.parametrize("over", [-1, 0, 1])
@pytest.mark.parametrize("char", ["a", "😀"])
def test_length_limits_count_characters_alike(field, over, char):
    raw = json.dumps({"to": "resolved", field: char * (LIMITS[field] + over)}).encode()
    assert direct(raw) == usual(raw)
    assert (usual(raw) == REFUSED) == (over > 0)
