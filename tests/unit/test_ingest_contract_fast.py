"""The contract's usual reading (msgspec, in C) against its explaining reading (orjson and the
domain's constructors, the reference kept from before): on any bytes, parse_message answers
what the reference answers — the same Detected or Matched, or a refusal with the very same
text — and the usual reading, whenever it vouches for a message, built the reference's value.

Exact equality of refusals holds by construction: every refusal is the reference's own (the
usual reading never refuses, it only declines to vouch). What these properties prove is the
other half: the usual reading accepts nothing the reference refuses and normalises alike.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from indelible.domain.commands import MAX_METADATA
from indelible.domain.money import CURRENCIES
from indelible.ingest.contract import (MAX_MESSAGE, ContractError, _read_usual, parse_message,
                                       read_explaining)
from indelible.ingest.simulate import messages

SETTINGS = settings(max_examples=600, deadline=None)
TENANT = "acme"
# Characters at the edges of the rules: whitespace that str.strip removes (and some it
# does not), C0/C1 controls, NUL, DEL, lone surrogates, astral characters, slug punctuation.
EDGES = ("\x00\x01\t\n\x0b\x0c\r\x1c\x1f \x7f\x80\x85\x9f\xa0\u1680\u2000\u2028\u2029\u202f"
         "\u3000\ufeff\ud800\udfff\U0001f600\U0010ffff-._/aZz09")
text = st.text(st.one_of(st.sampled_from(EDGES), st.characters()), max_size=12)
line = st.one_of(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True), text,
                 st.text(st.sampled_from("ab -"), min_size=199, max_size=202))
digits = st.from_regex(r"-?(0|[1-9][0-9]{0,2})(\.[0-9]{0,5})?", fullmatch=True)
amount = st.one_of(digits, digits, st.sampled_from(["-0", "-0.00", "0.0", "1e3", "+1", " 1",
                                                     "01", "1.", "NaN", "9" * 19, "9" * 18]))
currency = st.one_of(st.sampled_from(sorted(CURRENCIES)),
                     st.sampled_from(["XAU", "eur", "EURO", "", "XTS"]))
moment = st.one_of(
    st.from_regex(r"20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
                  r"(\.[0-9]{1,8})?([Zz]|[+-](0[0-9]|1[0-4]):[0-5][0-9])?", fullmatch=True),
    st.sampled_from(["2026-11-23T05:00:00Z", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", "2026-11-23T05:00:00Z\n", "yesterday"]))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**60, 2**60),
                        st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, 2**64, 2**70]),
                        st.floats(allow_nan=False), text)
free_json = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)), max_leaves=12)


def nested(depth: int) -> dict:
    value: object = "leaf"
    for _ in range(depth - 1):
        value = {"n": value}
    return {"n": value} if depth else {}


any_value = st.one_of(free_json, line, amount)
metadata = st.one_of(st.dictionaries(text, free_json, max_size=4), free_json,
                     st.integers(14, 17).map(nested))
refs = st.one_of(st.lists(line, max_size=3),
                 st.lists(st.sampled_from(["tx_1", "tx_2"]), max_size=3),
                 st.lists(st.just("r"), min_size=100, max_size=101).map(
                     lambda rs: [f"r{i}" for i, _ in enumerate(rs)]), any_value)
kinds = st.sampled_from(["amount_mismatch", "missing_transaction", "timing_gap", "duplicate",
                         "other", "Other", "", None])
severities = st.sampled_from(["low", "medium", "high", "critical", None, "urgent", 1])
detected_fields = {
    "source": line, "external_ref": line, "kind": kinds, "expected_amount": amount,
    "actual_amount": amount, "currency": currency, "detected_at": moment,
    "transaction_refs": refs, "severity": severities, "metadata": metadata}
matched_fields = {"source": line, "external_ref": line, "matched_at": moment,
                  "reason": st.one_of(text, st.sampled_from(["", None, False, 0, " ", "x" * 1001]))}
OPTIONAL = {"transaction_refs", "severity", "metadata", "reason"}


@st.composite
def bodies(draw) -> list[tuple[str, object]]:
    """A message as key-value pairs (so keys can repeat), mostly valid, often broken."""
    kind = draw(st.sampled_from(["discrepancy.detected", "discrepancy.matched"]))
    fields = detected_fields if kind == "discrepancy.detected" else matched_fields
    pairs: list[tuple[str, object]] = [("type", kind), ("tenant", TENANT)]
    for name, values in fields.items():
        if name not in OPTIONAL or draw(st.booleans()):
            pairs.append((name, draw(values)))
    broken = draw(st.sampled_from(["none", "none", "drop", "retype", "unknown", "tenant",
                                   "repeat", "type"]))
    if broken == "drop":
        pairs.pop(draw(st.integers(0, len(pairs) - 1)))
    elif broken == "retype":
        index = draw(st.integers(0, len(pairs) - 1))
        pairs[index] = (pairs[index][0], draw(any_value))
    elif broken == "unknown":
        pairs.append((draw(st.sampled_from(["surprise", "Source", "matched_at", "kind"])), 1))
    elif broken == "tenant":
        pairs[1] = ("tenant", draw(st.sampled_from(["other", "ACME", "", None, ["acme"]])))
    elif broken == "repeat":
        pairs.insert(draw(st.integers(0, len(pairs))), draw(st.sampled_from(pairs)))
        pairs.append((draw(st.sampled_from([name for name, _ in pairs])), draw(any_value)))
    elif broken == "type":
        pairs.append(("type", draw(st.sampled_from(["discrepancy.detected",
                                                    "discrepancy.matched", "other"]))))
    return pairs


def encode(pairs: list[tuple[str, object]], ascii_only: bool) -> bytes:
    """JSON text with the pairs in order, repeats kept; lone surrogates become escapes or,
    unescaped, invalid UTF-8 (both must be refused)."""
    items = ",".join(json.dumps(k, ensure_ascii=ascii_only) + ":"
                     + json.dumps(v, ensure_ascii=ascii_only) for k, v in pairs)
    return ("{" + items + "}").encode("utf-8", "surrogatepass")


def outcome(read, data: bytes) -> tuple:
    try:
        value = read(data, subject_tenant=TENANT)
    except ContractError as e:
        return ("refused", str(e))
    return ("accepted", value, repr(value))  # repr tells `true` from `1` in metadata


def assert_the_readings_agree(data: bytes) -> None:
    reference = outcome(read_explaining, data)
    assert outcome(parse_message, data) == reference
    usual = _read_usual(data, TENANT)
    if usual is not None:
        assert reference == ("accepted", usual, repr(usual))


@SETTINGS
@given(pairs=bodies(), ascii_only=st.booleans())
@example(pairs=[("type", "discrepancy.detected"), ("tenant", TENANT), ("source", "s"),
                ("external_ref", "r"), ("kind", "amount_mismatch"), ("expected_amount", "1.5"),
                ("actual_amount", "1.50"), ("currency", "EUR"),
                ("detected_at", "2026-11-23T05:00:00Z")], ascii_only=True)
def test_both_readings_agree_on_every_message(pairs, ascii_only):
    assert_the_readings_agree(encode(pairs, ascii_only))


@SETTINGS
@given(data=st.one_of(st.binary(max_size=64), st.sampled_from([
    b"", b" ", b"null", b"[]", b'"x"', b"1", b"{}", b'{"type":"discrepancy.matched"}',
    b"\xef\xbb\xbf{}", b'{"a":1} x', b"{\"type\": \"discrepancy.detected\", \x00}"])))
def test_both_readings_agree_on_bytes_that_are_not_a_message(data):
    assert_the_readings_agree(data)


@pytest.mark.parametrize("padding", [MAX_MESSAGE - 400, MAX_MESSAGE + 1])
def test_both_readings_agree_on_messages_near_the_size_limit(padding):
    body = {**messages(TENANT, 1, matched_share=0, seed=1)[0], "metadata": {}}
    data = orjson.dumps(body)
    body["metadata"] = {"pad": "x" * (padding - len(data) - 12)}
    assert_the_readings_agree(orjson.dumps(body))


@pytest.mark.parametrize("char", ["a", "\u00e9", "\u20ac", "\U0001f600", "\x01"])
def test_metadata_of_a_message_under_the_bound_cannot_exceed_the_limit(char):
    # The usual reading skips measuring metadata in messages under MAX_METADATA // 3 bytes:
    # json.dumps never writes a decoded character in more than 3 times its message bytes.
    body = {**messages(TENANT, 1, matched_share=0, seed=1)[0], "metadata": {}}
    room = MAX_METADATA // 3 - len(orjson.dumps(body)) - 12
    body["metadata"] = {"pad": char * (room // (len(orjson.dumps(char)) - 2))}
    data = orjson.dumps(body)
    assert len(data) <= MAX_METADATA // 3
    assert len(json.dumps(body["metadata"], separators=(",", ":"))) <= MAX_METADATA
    assert_the_readings_agree(data)


def test_the_usual_reading_vouches_for_what_the_simulator_publishes():
    # Otherwise every message would be read twice: still correct, but slower than before.
    for body in messages(TENANT, 300, matched_share=0.3, seed=7):
        data = orjson.dumps(body)
        assert _read_usual(data, TENANT) == read_explaining(data, subject_tenant=TENANT)
