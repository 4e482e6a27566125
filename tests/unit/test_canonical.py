"""canonical_json is byte-identical to the rfc8785 reference on every admitted value
(DESIGN §5), and refuses everything else with the JSON path of the offending value."""

from __future__ import annotations

import enum
import math
from decimal import Decimal

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible.proofs import CanonicalError, canonical_json

M = 2**53 - 1
SETTINGS = settings(max_examples=400, deadline=None)

# Characters that exercise escaping and UTF-16 ordering: controls, quotes, backslash,
# DEL, line separators, private use and the top of the BMP.
TRICKY = "\x00\x01\x08\t\n\x0b\x0c\r\x1f \"\\/\x7f\u0080\u00e9\u2028\u2029\ud7ff\ue000\uf8ff\ufeff\uffff"
any_char = st.characters(exclude_categories=("Cs",))
bmp_char = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",))
strings = st.text(st.one_of(any_char, st.sampled_from(TRICKY), st.sampled_from("😀𐀀\U0010ffff")))
keys = st.text(st.one_of(bmp_char, st.sampled_from(TRICKY)), max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-M, M),
    st.sampled_from([M, -M, 0, 2**31, -(2**32)]),
    strings,
)
admitted = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(keys, inner, max_size=6),
    ),
    max_leaves=30,
)


@SETTINGS
@given(value=admitted)
def test_every_admitted_value_encodes_exactly_as_rfc8785(value):
    assert canonical_json(value) == rfc8785.dumps(value)


@SETTINGS
@given(value=st.dictionaries(keys, st.integers(0, 9), min_size=2, max_size=12))
def test_keys_are_ordered_as_jcs_orders_utf16_code_units(value):
    assert canonical_json(value) == rfc8785.dumps(value)


def test_private_use_and_bmp_keys_sort_like_jcs():
    value = {"\uffff": 1, "\ue000": 2, "a": 3, "\u00e9": 4, "": 5, "\ud7ff": 6}
    assert canonical_json(value) == rfc8785.dumps(value)


def test_a_typical_entry_encodes_to_the_expected_bytes():
    entry = {
        "v": 1, "seq": 42, "log": "example.com/t1", "prev": "",
        "actor": {"id": "u1", "role": "analyst", "kind": "user"},
        "data": {"amount": "12.50", "note": "Zürich\n"}, "ok": True, "none": None,
    }
    assert canonical_json(entry) == (
        '{"actor":{"id":"u1","kind":"user","role":"analyst"},"data":{"amount":"12.50",'
        '"note":"Zürich\\n"},"log":"example.com/t1","none":null,"ok":true,"prev":"","seq":42,"v":1}'
    ).encode("utf-8")


# --- refusals ----------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Role(str, enum.Enum):
    ANALYST = "analyst"


class Level(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"data": {"amount": 1.5}}, r"^\$\.data\.amount: floats are not allowed$"),
        ({"x": -0.0}, r"^\$\.x: floats are not allowed$"),
        ([0.0], r"^\$\[0\]: floats are not allowed$"),
        ({"x": math.nan}, r"^\$\.x: floats are not allowed$"),
        ({"x": math.inf}, r"^\$\.x: floats are not allowed$"),
        (1.0, r"^\$: floats are not allowed$"),
        ({"n": 2**53}, r"^\$\.n: integer 9007199254740992 is outside"),
        ({"n": -(2**53)}, r"^\$\.n: integer -9007199254740992 is outside"),
        ([[1, [10**30]]], r"^\$\[0\]\[1\]\[0\]: integer 10{30} is outside"),
        ({"a": {1: "x"}}, r"^\$\.a: object key 1 is a int, not a string$"),
        ({"a": {None: "x"}}, r"^\$\.a: object key None is a NoneType"),
        ({"a": {"k😀": 1}}, r'^\$\.a\["k\\ud83d\\ude00"\]: object keys must not contain'),
        ({"a": {"k\ud800": 1}}, r'^\$\.a\["k\\ud800"\]: object keys must not contain'),
        ({"s": ["ok", "bad\udfff"]}, r"^\$\.s\[1\]: strings must not contain lone surrogates"),
        ("\ud83d", r"^\$: strings must not contain lone surrogates"),
        ({"b": b"raw"}, r"^\$\.b: values of type bytes are not allowed$"),
        ({"s": {1, 2}}, r"^\$\.s: values of type set are not allowed$"),
        ({"d": Decimal("1.5")}, r"^\$\.d: values of type Decimal are not allowed$"),
        ({"c": Color.RED}, r"^\$\.c: values of type Color are not allowed$"),
        ({"r": Role.ANALYST}, r"^\$\.r: values of type Role are not allowed$"),
        ({"l": Level.ONE}, r"^\$\.l: values of type Level are not allowed$"),
        ({"with space": {"x-y": [1.5]}}, r'^\$\["with space"\]\["x-y"\]\[0\]: floats'),
    ],
)
def test_values_that_cannot_be_encoded_exactly_are_refused_with_their_path(value, message):
    with pytest.raises(CanonicalError, match=message):
        canonical_json(value)


def test_a_value_that_contains_itself_is_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(CanonicalError, match="nested too deeply"):
        canonical_json(loop)


def test_canonical_error_is_a_value_error():
    assert issubclass(CanonicalError, ValueError)


identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True)
segments = st.lists(st.one_of(identifiers, st.integers(0, 3)), max_size=6)
refused = st.sampled_from([1.0, -0.0, 2**53, -(2**60), "x\ud800", b"", Decimal(1), object()])


@settings(max_examples=150, deadline=None)
@given(path=segments, bad=refused, filler=st.dictionaries(identifiers, st.integers(0, 9), max_size=3))
def test_a_refused_value_anywhere_is_reported_at_its_exact_path(path, bad, filler):
    value: object = bad
    for segment in reversed(path):
        if isinstance(segment, int):
            value = ["pad"] * segment + [value]
        else:
            value = {**filler, segment: value}
    expected = "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)
    with pytest.raises(CanonicalError) as raised:
        canonical_json(value)
    assert str(raised.value).startswith(expected + ": ")


def test_astral_keys_are_refused_because_python_and_jcs_would_order_them_differently():
    import json

    value = {"\ue000": 1, "\U0001f600": 2}
    python_order = json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert python_order.replace(b" ", b"") != rfc8785.dumps(value)
    with pytest.raises(CanonicalError, match="above U\\+FFFF"):
        canonical_json(value)
