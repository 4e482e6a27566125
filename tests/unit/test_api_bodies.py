"""The direct lane's msgspec decoders admit exactly what the usual path's pydantic models
admit, with the same values (api/bodies.py); the pydantic model is the oracle."""

from __future__ import annotations

import json

import msgspec
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible.api import bodies
from indelible.api.routes.discrepancies import OpenRequest, TransitionRequest

REFUSED = "refused"
STATUSES = ["open", "acknowledged", "investigating", "resolved", "escalated", "auto_closed"]
LIMITS = {"reason": 1000, "resolution_code": 64, "note": 4000}


def usual(raw: bytes, model=TransitionRequest):
    """What FastAPI's path makes of a JSON body: `json.loads`, then the strict model."""
    try:
        value = json.loads(raw)
    except ValueError:
        return REFUSED
    try:
        return model.model_validate(value).model_dump(mode="json")
    except pydantic.ValidationError:
        return REFUSED


def direct(raw: bytes, decoder=bodies.TRANSITION):
    try:
        return msgspec.structs.asdict(decoder.decode(raw))
    except msgspec.DecodeError:  # ValidationError is one
        return REFUSED


def around(limit: int):
    """Text of a length at, below or just over `limit`, with characters beyond ASCII (a
    limit counts characters, not bytes)."""
    return st.integers(limit - 2, limit + 2).flatmap(
        lambda n: st.text(st.sampled_from("aé€😀\x00\"\\\n"), min_size=max(n, 0),
                          max_size=max(n, 0)))


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
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


def _text_around(low: int, high: int):
    return st.one_of(around(low), around(high), st.text(max_size=4))


opening = {
    "external_ref": _text_around(1, 200), "source": _text_around(1, 64),
    "kind": st.sampled_from(["amount_mismatch", "missing_transaction", "timing_gap",
                             "duplicate", "other", "Other"]) | values,
    "expected_amount": _text_around(1, 40), "actual_amount": _text_around(1, 40),
    "currency": st.sampled_from(["EUR", "usd", "EURO", "EU", "EUR\n", "\nEUR", "ÉUR"]) | values,
    "detected_at": _text_around(1, 40),
    "severity": st.sampled_from(["low", "medium", "high", "critical", "urgent"]) | values,
    "metadata": st.dictionaries(st.text(max_size=3), values, max_size=3) | values,
    "transaction_refs": st.lists(st.text(max_size=3), max_size=3)
    | st.lists(st.just("r"), min_size=99, max_size=101) | values,
}
REQUIRED = ["external_ref", "source", "kind", "expected_amount", "actual_amount", "currency",
            "detected_at"]
open_bodies = st.sets(st.sampled_from([*opening, "extra"]), max_size=12).flatmap(
    lambda keys: st.fixed_dictionaries({k: opening.get(k, values) for k in keys}))
VALID = {"external_ref": "po-1", "source": "stripe", "kind": "other", "expected_amount": "1.00",
         "actual_amount": "2.00", "currency": "EUR", "detected_at": "2026-11-23T05:00:00Z"}
# A valid report with one member changed, added or left out: what that one member admits is
# then what decides.
one_changed = st.sampled_from([*opening, "extra"]).flatmap(
    lambda name: st.one_of(opening.get(name, values), st.none()).map(
        lambda value: {**VALID, name: value}) | st.just(
        {k: v for k, v in VALID.items() if k != name}))


@settings(max_examples=1500, deadline=None)
@given(open_bodies | one_changed)
def test_an_open_body_is_admitted_by_both_or_by_neither_with_the_same_values(body):
    for raw in (json.dumps(body, ensure_ascii=False).encode(), json.dumps(body).encode()):
        assert direct(raw, bodies.OPEN) == usual(raw, OpenRequest)


@pytest.mark.parametrize("currency", ["EUR\n", "EU", "eur"])
def test_a_currency_is_three_capitals_and_nothing_after_in_both(currency):
    raw = json.dumps({**dict.fromkeys(REQUIRED, "1"), "kind": "other",
                      "currency": currency}).encode()
    assert direct(raw, bodies.OPEN) == usual(raw, OpenRequest) == REFUSED


def test_infinity_which_json_loads_reads_beyond_json_is_left_to_the_usual_path():
    raw = json.dumps({**VALID, "metadata": {"a": float("inf")}}).encode()
    assert direct(raw, bodies.OPEN) == REFUSED  # the domain refuses floats there anyway
    assert usual(raw, OpenRequest) != REFUSED
