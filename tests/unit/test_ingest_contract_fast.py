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
any_char = st.characters(exclude_categories=("Cs",))
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


# What a well-behaved engine sends: each field within its rules.
good_line = st.text(st.one_of(any_char.filter(lambda c: c.isprintable()),
                              st.sampled_from(" \xa0é€😀")), min_size=1, max_size=30).filter(
    lambda s: s == s.strip() and s.isprintable() or s == s.strip() and " " in s)
good_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53 - 1), 2**53 - 1),
              st.text(any_char.filter(lambda c: c != "\x00"), max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
        st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)).filter(
            lambda c: c != "\x00"), max_size=6), inner, max_size=3)), max_leaves=8)
good_time = st.from_regex(r"(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])[Tt]"
                          r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
                          r"([Zz]|[+-](0[0-9]|1[0-3]):[0-5][0-9])", fullmatch=True)


@st.composite
def good_amounts(draw, currency: str) -> str:
    places = draw(st.integers(0, CURRENCIES[currency]))
    whole = draw(st.sampled_from(["0", "-0", "1", "-12", "9" * 18, "100"]))
    return whole + ("." + draw(st.text("0123456789", min_size=places, max_size=places))
                    if places else "")


# What breaks a rule, field by field (and some odd values that do not).
line = st.one_of(text, st.text(st.sampled_from("ab -"), min_size=199, max_size=202))
digits = st.from_regex(r"-?(0|[1-9][0-9]{0,2})(\.[0-9]{0,5})?", fullmatch=True)
amount = st.one_of(digits, st.sampled_from(["-0", "-0.00", "0.0", "1e3", "+1", " 1", "01", "1.",
                                            "NaN", "9" * 19, "9" * 18, "1.2345", "1.001"]))
moment = st.one_of(
    st.from_regex(r"20[0-9]{2}-(0[1-9]|1[0-2])-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
                  r"(\.[0-9]{1,8})?([Zz]|[+-](0[0-9]|1[0-4]):[0-5][0-9])?", fullmatch=True),
    st.sampled_from(["2026-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", "2026-11-23T05:00:00Z\n", "yesterday"]))
any_value = st.one_of(free_json, line, amount)
BAD = {
    "source": st.one_of(line, st.sampled_from(["Stripe", "a" * 65, "a" * 64, "a\n", "_a"])),
    "external_ref": line, "kind": st.sampled_from(["Other", "", None, 1]),
    "expected_amount": amount, "actual_amount": amount,
    "currency": st.sampled_from(["XAU", "eur", "EURO", "", "XTS", 978]),
    "detected_at": moment, "matched_at": moment,
    "transaction_refs": st.one_of(
        st.lists(line, max_size=3), st.lists(st.sampled_from(["tx_1", "tx_2"]), max_size=3),
        st.integers(100, 101).map(lambda n: [f"r{i}" for i in range(n)]), any_value),
    "severity": st.sampled_from(["urgent", "Low", 1, ""]),
    "metadata": st.one_of(st.dictionaries(text, free_json, max_size=4), free_json,
                          st.integers(14, 17).map(nested)),
    "reason": st.one_of(text, st.sampled_from(["", None, False, 0, " ", "x" * 1001, "x" * 1000])),
}


@st.composite
def detected(draw) -> dict:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    body = {"source": draw(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True)),
            "external_ref": draw(good_line),
            "kind": draw(st.sampled_from(["amount_mismatch", "missing_transaction", "timing_gap",
                                          "duplicate", "other"])),
            "expected_amount": draw(good_amounts(currency)),
            "actual_amount": draw(good_amounts(currency)), "currency": currency,
            "detected_at": draw(good_time)}
    optional = {"transaction_refs": st.lists(good_line, max_size=3, unique=True),
                "severity": st.sampled_from(["low", "medium", "high", "critical", None]),
                "metadata": st.dictionaries(st.text(max_size=6).filter(lambda k: "\x00" not in k),
                                            good_json, max_size=4)}
    for name, values in optional.items():
        if draw(st.booleans()):
            body[name] = draw(values)
    return body


@st.composite
def matched(draw) -> dict:
    body = {"source": draw(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True)),
            "external_ref": draw(good_line), "matched_at": draw(good_time)}
    if draw(st.booleans()):
        body["reason"] = draw(st.one_of(good_line, st.none(), st.just("")))
    return body


@st.composite
def bodies(draw) -> list[tuple[str, object]]:
    """A message as key-value pairs (so keys can repeat): valid, or broken in one way."""
    kind = draw(st.sampled_from(["discrepancy.detected", "discrepancy.matched"]))
    fields = draw(detected() if kind == "discrepancy.detected" else matched())
    pairs: list[tuple[str, object]] = [("type", kind), ("tenant", TENANT), *fields.items()]
    broken = draw(st.sampled_from(["none", "value", "value", "value", "drop", "retype",
                                   "unknown", "tenant", "repeat", "type"]))
    if broken == "value":
        index = draw(st.integers(2, len(pairs) - 1))
        name = pairs[index][0]
        pairs[index] = (name, draw(BAD[name]))
    elif broken == "drop":
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


@pytest.mark.parametrize("char", ["a", "\u00e9", "\u20ac", "\U0001f600", "\x01", "\x7f"])
def test_metadata_of_a_message_under_the_bound_cannot_exceed_the_limit(char):
    # The usual reading skips measuring metadata in messages under MAX_METADATA // 6 bytes:
    # json.dumps never writes a decoded character in more than 6 times its message bytes
    # (a DEL, sent raw as orjson does, is the worst: one byte, then \u007f).
    body = {**messages(TENANT, 1, matched_share=0, seed=1)[0], "metadata": {}}
    room = MAX_METADATA // 6 - len(orjson.dumps(body)) - 12
    body["metadata"] = {"pad": char * (room // (len(orjson.dumps(char)) - 2))}
    data = orjson.dumps(body)
    assert len(data) <= MAX_METADATA // 6
    assert len(json.dumps(body["metadata"], separators=(",", ":"))) <= MAX_METADATA
    assert_the_readings_agree(data)


VALID = {"type": "discrepancy.detected", "tenant": TENANT, "source": "stripe",
         "external_ref": "po-1", "kind": "amount_mismatch", "expected_amount": "9850.00",
         "actual_amount": "10000.00", "currency": "EUR", "detected_at": "2026-11-23T05:00:00Z",
         "transaction_refs": ["ch_1"], "severity": "high", "metadata": {"batch": 7}}
MATCH = {"type": "discrepancy.matched", "tenant": TENANT, "source": "stripe",
         "external_ref": "po-1", "matched_at": "2026-11-23T06:00:00+01:00", "reason": "late"}


@pytest.mark.parametrize("edit", [
    {"tenant": "other"}, {"transaction_refs": ["a", "a"]}, {"transaction_refs": [" a"]},
    {"transaction_refs": [f"r{i}" for i in range(101)]}, {"metadata": nested(17)},
    {"metadata": {"n": 2**53}}, {"metadata": {"n": -(2**53)}}, {"metadata": {"n": 1.0}},
    {"metadata": {"\U0001f600": 1}}, {"metadata": {"a\x00": 1}}, {"metadata": {"a": "\x00"}},
    {"metadata": [1]}, {"metadata": None}, {"metadata": {"del": "\x7f" * 3000}}, {"expected_amount": "10000.0"},
    {"expected_amount": "1.001"}, {"expected_amount": "01"}, {"currency": "XAU"},
    {"currency": "eur"}, {"kind": "other", "actual_amount": "1e3"}, {"external_ref": "po-1\n"},
    {"external_ref": "po-1 "}, {"external_ref": "\u3000po"}, {"external_ref": "p\x85o"},
    {"external_ref": "x" * 201}, {"source": "stripe\n"}, {"source": "Stripe"},
    {"source": "s" * 65}, {"detected_at": "2026-02-30T00:00:00Z"}, {"kind": "Other"},
    {"detected_at": "2026-11-23T05:00:00.1234567Z"}, {"detected_at": "2026-11-23T05:00:00"},
    {"severity": "urgent"}, {"transaction_refs": None}, {"type": "discrepancy.matched"},
    {"type": ["discrepancy.detected"]}, {"surprise": None},
])
def test_the_usual_reading_declines_what_the_reference_refuses(edit):
    data = orjson.dumps({**VALID, **edit})
    assert outcome(read_explaining, data)[0] == "refused"
    assert _read_usual(data, TENANT) is None
    assert_the_readings_agree(data)


@pytest.mark.parametrize("body", [
    VALID, {**VALID, "metadata": nested(16)}, {**VALID, "metadata": {"n": 2**53 - 1}},
    {**VALID, "metadata": {"n": -(2**53 - 1), "\uffff": ["\U0001f600", None, True]}},
    {**VALID, "severity": None}, {**VALID, "kind": "other", "actual_amount": "9850"},
    {**VALID, "currency": "JPY", "expected_amount": "-0", "actual_amount": "5"},
    {**VALID, "currency": "KWD", "expected_amount": "1.5", "actual_amount": "-0.000"},
    {**VALID, "external_ref": "x" * 200, "source": "s" * 64, "transaction_refs": []},
    {**VALID, "external_ref": "a\u00a0b", "detected_at": "2026-11-23t05:00:00.5z"},
    MATCH, {**MATCH, "reason": ""}, {**MATCH, "reason": None}, {**MATCH, "reason": "x" * 1000},
])
def test_the_usual_reading_vouches_for_valid_messages_as_the_reference_reads_them(body):
    data = orjson.dumps(body)
    assert _read_usual(data, TENANT) is not None
    assert_the_readings_agree(data)


def test_the_usual_reading_vouches_for_what_the_simulator_publishes():
    # Otherwise every message would be read twice: still correct, but slower than before.
    for body in messages(TENANT, 300, matched_share=0.3, seed=7):
        data = orjson.dumps(body)
        assert _read_usual(data, TENANT) == read_explaining(data, subject_tenant=TENANT)


def test_a_deeply_nested_value_before_the_type_is_refused_with_the_references_reason():
    # msgspec looks ahead for the `type` tag by skipping values recursively: nested deep
    # enough, that raises RecursionError, which must not escape in place of a refusal.
    depth = 5000
    data = b'{"x":' + b"[" * depth + b"]" * depth + b',"type":"discrepancy.matched"}'
    assert outcome(read_explaining, data)[0] == "refused"
    assert_the_readings_agree(data)
