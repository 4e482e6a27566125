"""Commands validate themselves when built: every rule has a refusal naming field and rule."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from indelible.domain import (
    Actor,
    Assign,
    AttachEvidence,
    ChangeSeverity,
    Comment,
    InvalidCommandError,
    Kind,
    OpenDiscrepancy,
    ResolutionCode,
    Role,
    Severity,
    Status,
    Transition,
)
from indelible.proofs import CanonicalError, canonical_json

SHA = "a" * 64


def open_command(**changes) -> OpenDiscrepancy:
    fields = {"external_ref": "pi_3NfX", "source": "stripe", "kind": "amount_mismatch",
                  "expected_amount": "100.00", "actual_amount": "99.50", "currency": "EUR",
                  "detected_at": "2026-11-22T10:00:00Z"}
    fields.update(changes)
    return OpenDiscrepancy(**fields)


def refused(match: str):
    return pytest.raises(InvalidCommandError, match=match)


# --- opening ---------------------------------------------------------------------------


def test_a_valid_report_is_normalised():
    command = open_command(expected_amount="100", actual_amount="99.5", kind="timing_gap",
                           detected_at="2026-11-22T11:30:00.25+01:30", severity="high",
                           transaction_refs=["tx1", "tx2"], metadata={"a": (1, "x")})
    assert command.kind is Kind.TIMING_GAP
    assert (command.expected_amount, command.actual_amount) == ("100.00", "99.50")
    assert command.detected_at == "2026-11-22T10:00:00.250000Z"
    assert command.severity is Severity.HIGH
    assert command.transaction_refs == ("tx1", "tx2")
    assert command.metadata == {"a": [1, "x"]}
    assert str(command.difference) == "-0.50"


def test_metadata_is_copied_so_the_caller_cannot_change_it_later():
    metadata = {"nested": {"k": "v"}}
    command = open_command(metadata=metadata)
    metadata["nested"]["k"] = "changed"
    assert command.metadata == {"nested": {"k": "v"}}


@pytest.mark.parametrize(("value", "match"), [
    ("", "external_ref: must be 1 to 200 characters, got 0"),
    ("x" * 201, "external_ref: must be 1 to 200 characters, got 201"),
    ("   ", "external_ref: must not be blank"),
    ("a\nb", "external_ref: must not contain control characters"),
    ("a\x00b", "external_ref: must not contain NUL characters"),
    ("a\ud800", "external_ref: must not contain lone surrogates"),
    (" a", "external_ref: must not start or end with whitespace"),
    (42, "external_ref: must be a string, not int"),
])
def test_external_ref_rules(value, match):
    with refused(match):
        open_command(external_ref=value)


@pytest.mark.parametrize(("value", "match"), [
    ("Stripe", "source: 'Stripe' is not a slug"),
    ("-bank", "source: '-bank' is not a slug"),
    ("pay pal", "source: 'pay pal' is not a slug"),
    ("s" * 65, "source: must be 1 to 64 characters, got 65"),
    ("", "source: must be 1 to 64 characters"),
    (None, "source: must be a string, not NoneType"),
])
def test_source_must_be_a_short_slug(value, match):
    with refused(match):
        open_command(source=value)


def test_source_slugs_may_hold_dots_dashes_and_underscores():
    assert open_command(source="bank.eu-west_1").source == "bank.eu-west_1"


def test_kind_must_be_known():
    with refused("kind: 'refund' is not one of: amount_mismatch, missing_transaction, "
                 "timing_gap, duplicate, other"):
        open_command(kind="refund")


def test_currency_and_amounts_are_checked_with_the_field_named():
    with refused("currency: XAU is not an active ISO 4217 currency"):
        open_command(currency="XAU")
    with refused("expected_amount: must be a decimal string, not a float"):
        open_command(expected_amount=100.0)
    with refused("actual_amount: 99.505 has 3 decimal places but EUR allows 2"):
        open_command(actual_amount="99.505")
    with refused("expected_amount: '1e2' is not a plain decimal"):
        open_command(expected_amount="1e2")


def test_an_amount_mismatch_needs_two_different_amounts():
    with refused("actual_amount: equals expected_amount, so it is not an amount_mismatch"):
        open_command(expected_amount="10", actual_amount="10.00")
    assert open_command(kind="timing_gap", expected_amount="10", actual_amount="10").difference == 0


@pytest.mark.parametrize(("value", "match"), [
    ("2026-11-22T10:00:00", "detected_at: .* is not an RFC 3339 timestamp with a timezone"),
    ("2026-11-22 10:00:00Z", "detected_at: .* is not an RFC 3339 timestamp"),
    ("22/11/2026", "detected_at: .* is not an RFC 3339 timestamp"),
    ("2026-11-22T10:00:00.1234567Z", r"detected_at: at most 6 fractional digits \(microseconds\)"),
    ("2026-02-30T10:00:00Z", "detected_at: .* is not a valid date and time"),
    ("2026-11-22T24:00:00Z", "detected_at: .* is not a valid date and time"),
    ("0001-01-01T00:00:00+01:00", "detected_at: .* is not a valid date and time"),
    ("２０２６-11-22T10:00:00Z", "detected_at: .* is not an RFC 3339 timestamp"),
    (1732269600, "detected_at: must be an RFC 3339 string, not int"),
])
def test_detected_at_must_be_rfc3339_with_a_timezone(value, match):
    with refused(match):
        open_command(detected_at=value)


@pytest.mark.parametrize(("value", "normalised"), [
    ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00.000000Z"),
    ("2026-11-22t10:00:00.5z", "2026-11-22T10:00:00.500000Z"),
    ("2026-11-22T01:00:00-09:00", "2026-11-22T10:00:00.000000Z"),
    ("2026-11-23T00:30:00.123456+14:00", "2026-11-22T10:30:00.123456Z"),
    ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00.000000Z"),
])
def test_detected_at_is_normalised_to_utc_microseconds(value, normalised):
    assert open_command(detected_at=value).detected_at == normalised


def test_severity_when_given_must_be_known():
    with refused("severity: 'urgent' is not one of: low, medium, high, critical"):
        open_command(severity="urgent")


@pytest.mark.parametrize(("metadata", "match"), [
    ([], "metadata: must be a JSON object, not list"),
    ({"rate": 1.1}, "metadata.rate: floats are not allowed; send amounts as decimal strings"),
    ({"a": [{"b": 0.5}]}, r"metadata.a\[0\].b: floats are not allowed"),
    ({"n": 2**53}, r"metadata.n: integers must be within ±\(2\*\*53 - 1\)"),
    ({"d": __import__("decimal").Decimal("1")}, "metadata.d: values of type Decimal are not allowed"),
    ({"s": {1, 2}}, "metadata.s: values of type set are not allowed"),
    ({"t": "a\udc00"}, "metadata.t: strings must not contain lone surrogates"),
    ({"t": "a\x00"}, "metadata.t: strings must not contain NUL characters"),
    ({"k\x00": 1}, "metadata: object keys must not contain NUL characters"),
    ({1: "x"}, "metadata: object key 1 is not a string"),
    ({"k\U0001f600": 1}, "metadata: object keys must not contain .* above U\\+FFFF"),
])
def test_metadata_must_be_canonical_json_without_floats(metadata, match):
    with refused(match):
        open_command(metadata=metadata)


def test_metadata_nesting_is_bounded():
    deep: dict = {}
    for _ in range(20):
        deep = {"x": deep}
    with refused("metadata(.x)+: nested deeper than 16 levels"):
        open_command(metadata=deep)


def test_metadata_is_at_most_16_kib_serialized():
    fits = {"blob": "x" * (16 * 1024 - len('{"blob":""}'))}
    assert len(json.dumps(fits, sort_keys=True, separators=(",", ":"))) == 16 * 1024
    assert open_command(metadata=fits).metadata == fits
    with refused("metadata: is 16385 bytes serialized; the limit is 16384"):
        open_command(metadata={"blob": fits["blob"] + "x"})


@pytest.mark.parametrize(("refs", "match"), [
    ("tx1", "transaction_refs: must be a list of strings, not str"),
    (["tx"] * 101, "transaction_refs: has 101 items; the limit is 100"),
    (["tx1", ""], r"transaction_refs\[1\]: must be 1 to 200 characters"),
    (["tx1", 7], r"transaction_refs\[1\]: must be a string, not int"),
    (["tx1", "tx1"], "transaction_refs: must not repeat an id"),
])
def test_transaction_refs_rules(refs, match):
    with refused(match):
        open_command(transaction_refs=refs)


# --- transitions -----------------------------------------------------------------------


def test_a_transition_names_a_known_status():
    assert Transition("investigating").to is Status.INVESTIGATING
    with refused("to: 'closed' is not one of: open, acknowledged"):
        Transition("closed")


@pytest.mark.parametrize("target", ["escalated", "auto_closed"])
def test_escalating_and_auto_closing_need_a_reason(target):
    with refused(f"reason: is required to move to {target}"):
        Transition(target)
    assert Transition(target, reason="48 h without action").reason == "48 h without action"


def test_a_reason_is_bounded():
    with refused("reason: must be 1 to 1000 characters, got 1001"):
        Transition("acknowledged", reason="r" * 1001)
    with refused("reason: must not be blank"):
        Transition("acknowledged", reason=" \n")


def test_resolving_needs_a_resolution_code_and_a_note():
    with refused("resolution_code: is required to resolve"):
        Transition("resolved", note="Fixed.")
    with refused("resolution_code: 'fixed' is not one of: corrected_in_ledger"):
        Transition("resolved", resolution_code="fixed", note="Fixed.")
    with refused("note: is required to resolve"):
        Transition("resolved", resolution_code="written_off")
    with refused("note: must not be blank"):
        Transition("resolved", resolution_code="written_off", note="   ")
    with refused("note: must be 1 to 4000 characters, got 4001"):
        Transition("resolved", resolution_code="written_off", note="n" * 4001)
    done = Transition("resolved", resolution_code="written_off", note="n" * 4000)
    assert done.resolution_code is ResolutionCode.WRITTEN_OFF


@pytest.mark.parametrize("field", ["resolution_code", "note"])
def test_resolution_fields_are_refused_on_other_moves(field):
    value = "written_off" if field == "resolution_code" else "A note."
    with refused(f"{field}: is only accepted when moving to resolved"):
        Transition("investigating", **{field: value})


# --- case work -------------------------------------------------------------------------


@pytest.mark.parametrize(("assignee", "match"), [
    ("", "assignee: must be 1 to 200 characters"),
    ("a" * 201, "assignee: must be 1 to 200 characters, got 201"),
    ("ana\t", "assignee: must not contain control characters"),
    (5, "assignee: must be a string, not int"),
])
def test_an_assignee_is_a_one_line_id_or_none(assignee, match):
    with refused(match):
        Assign(assignee)
    assert Assign(None).assignee is None


@pytest.mark.parametrize(("text", "match"), [
    ("", "text: must be 1 to 4000 characters, got 0"),
    ("c" * 4001, "text: must be 1 to 4000 characters, got 4001"),
    ("\n\n", "text: must not be blank"),
    (None, "text: must be a string, not NoneType"),
])
def test_a_comment_has_1_to_4000_characters(text, match):
    with refused(match):
        Comment(text)
    assert Comment("line one\nline two").text == "line one\nline two"


def test_a_severity_change_names_a_severity_and_a_reason():
    with refused("severity: 'severe' is not one of: low, medium, high, critical"):
        ChangeSeverity("severe", "why")
    with refused("reason: must be 1 to 1000 characters, got 0"):
        ChangeSeverity("high", "")
    with refused("reason: must be a string, not NoneType"):
        ChangeSeverity("high", None)
    assert ChangeSeverity("critical", "regulator asked").severity is Severity.CRITICAL


@pytest.mark.parametrize(("changes", "match"), [
    ({"sha256": "A" * 64}, "sha256: must be 64 lower-case hexadecimal digits"),
    ({"sha256": "a" * 63}, "sha256: must be 64 lower-case hexadecimal digits"),
    ({"sha256": None}, "sha256: must be 64 lower-case hexadecimal digits"),
    ({"name": ""}, "name: must be 1 to 255 characters"),
    ({"name": "n" * 256}, "name: must be 1 to 255 characters, got 256"),
    ({"name": "../etc/passwd"}, "name: must be a file name without '/' or '\\\\'"),
    ({"name": "c:\\x.pdf"}, "name: must be a file name without"),
    ({"name": "a\x1b.pdf"}, "name: must not contain control characters"),
    ({"size": -1}, r"size: must be an integer from 0 to 2\*\*53 - 1 \(bytes\)"),
    ({"size": True}, "size: must be an integer"),
    ({"size": 1.0}, "size: must be an integer"),
    ({"size": 2**53}, "size: must be an integer"),
    ({"media_type": "pdf"}, "media_type: 'pdf' is not a media type like application/pdf"),
    ({"media_type": "text/plain; charset=utf-8"}, "media_type: .* is not a media type"),
    ({"media_type": "tëxt/plain"}, "media_type: .* is not a media type"),
    ({"media_type": 3}, "media_type: 3 is not a media type"),
])
def test_evidence_rules(changes, match):
    fields = {"sha256": SHA, "name": "statement.pdf", "size": 1024, "media_type": "application/pdf"}
    fields.update(changes)
    with refused(match):
        AttachEvidence(**fields)


def test_evidence_media_types_are_stored_lower_case():
    evidence = AttachEvidence(SHA, "x.json", 0, "Application/VND.API+JSON")
    assert evidence.media_type == "application/vnd.api+json"


def test_an_actor_has_an_id_and_a_known_role():
    assert Actor("u1", "auditor").role is Role.AUDITOR
    assert Actor("u1", Role.SYSTEM).role is Role.SYSTEM
    with pytest.raises(ValueError, match="'superuser' is not a valid Role"):
        Actor("u1", "superuser")
    with pytest.raises(ValueError, match=r"\['analyst'\] is not a valid Role"):
        Actor("u1", ["analyst"])  # unhashable: refused like any other, not a TypeError
    with pytest.raises(ValueError, match="actor id must be a non-empty string"):
        Actor("", Role.ANALYST)



texts = st.text(st.one_of(st.characters(exclude_characters="\x00"),
                          st.sampled_from("\ud800\U0001f600\ue000\uffff")), max_size=8)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**54), 2**54), st.floats(), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(metadata=st.dictionaries(texts, json_values, max_size=4))
def test_metadata_is_accepted_exactly_when_the_ledger_can_encode_it(metadata):
    """NUL, depth and size are the domain's own extra limits; they are kept out here."""
    assume(depth(metadata) <= 16)
    try:
        encoded = canonical_json(metadata)
    except CanonicalError:
        with pytest.raises(InvalidCommandError):
            open_command(metadata=metadata)
        return
    assert canonical_json(open_command(metadata=metadata).metadata) == encoded
