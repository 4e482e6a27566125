"""The appender's encoder (check_canonical + orjson, in entry.py) produces exactly the
rfc8785 bytes on every admitted value, and refuses exactly what canonical_json refuses."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given

from indelible.entry import EntryError, _canonical
from indelible.proofs import CanonicalError, canonical_json
from tests.unit.test_canonical import SETTINGS, TRICKY, admitted, keys

from hypothesis import strategies as st


@SETTINGS
@given(value=admitted)
def test_the_append_encoder_equals_rfc8785_on_every_admitted_value(value):
    assert _canonical(value).encode("utf-8") == rfc8785.dumps(value) == canonical_json(value)


@SETTINGS
@given(value=st.dictionaries(keys, st.integers(0, 9), min_size=2, max_size=12))
def test_the_append_encoder_orders_keys_as_jcs(value):
    assert _canonical(value).encode("utf-8") == rfc8785.dumps(value)


def test_every_escape_agrees():
    value = {c: c for c in TRICKY} | {"all": "".join(map(chr, range(0x80)))}
    assert _canonical(value).encode("utf-8") == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [1.5, {"a": [2**53]}, {"k": "\ud800"}, {"\U0001f600": 1},
                                   {1: "x"}, {"s": {1, 2}}])
def test_the_append_encoder_refuses_what_canonical_json_refuses(value):
    with pytest.raises(CanonicalError) as reference:
        canonical_json(value)
    with pytest.raises(EntryError, match="data") as ours:
        _canonical(value, "data")
    assert str(reference.value).split(": ", 1)[1] in str(ours.value)


def test_nesting_deeper_than_orjson_allows_is_refused_with_a_reason():
    value: list = []
    for _ in range(300):
        value = [value]
    with pytest.raises(EntryError, match=r"\$\.data: nested too deeply"):
        _canonical(value, "data")
