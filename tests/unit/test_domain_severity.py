"""The tenant severity policy: its rules, its refusals, and what the opening event records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from indelible.domain import (
    BUILT_IN,
    Actor,
    InvalidCommandError,
    OpenDiscrepancy,
    Role,
    Severity,
    decide,
    parse_policy,
)

USD = {"medium": "500.00", "high": "10000.00", "critical": "250000.00"}
POLICY = parse_policy({"thresholds": {"USD": USD, "JPY": {"medium": "50000", "high": "1000000",
                                                          "critical": "25000000"}}}, seq=42)
ENGINE = Actor("engine:stripe", Role.SYSTEM)


@pytest.mark.parametrize(("difference", "currency", "severity"), [
    ("0", "USD", Severity.LOW),
    ("499.99", "USD", Severity.LOW),
    ("500", "USD", Severity.MEDIUM),
    ("-500.00", "USD", Severity.MEDIUM),  # the absolute difference counts
    ("9999.99", "USD", Severity.MEDIUM),
    ("10000.00", "USD", Severity.HIGH),
    ("-250000.00", "USD", Severity.CRITICAL),
    ("49999", "JPY", Severity.LOW),
    ("1000000", "JPY", Severity.HIGH),
])
def test_a_listed_currency_is_banded_by_its_own_thresholds(difference, currency, severity):
    assert POLICY.assign(Decimal(difference), currency) == (
        severity, {"severity_basis": "tenant_policy", "severity_policy_seq": 42})


def test_an_unlisted_currency_follows_the_built_in_rule():
    # built-in: from 10,000 minor units medium, so 100.00 EUR is medium, 99.99 low
    assert POLICY.assign(Decimal("100.00"), "EUR") == (Severity.MEDIUM, {"severity_basis": "built_in"})
    assert BUILT_IN.assign(Decimal("99.99"), "USD") == (Severity.LOW, {"severity_basis": "built_in"})


def test_a_policy_reads_back_as_the_document_that_set_it():
    document = {"thresholds": {"KWD": {"medium": "1.5", "high": "20", "critical": "300.250"}}}
    policy = parse_policy(document)
    assert policy.to_dict() == {"thresholds": {"KWD": {
        "medium": "1.500", "high": "20.000", "critical": "300.250"}}}
    assert parse_policy(policy.to_dict()) == policy


@pytest.mark.parametrize(("document", "field", "rule"), [
    ([], "policy", "must be an object"),
    ({"thresholds": {}}, "thresholds", "at least one currency"),
    ({"thresholds": {"USD": USD}, "extra": 1}, "extra", "unknown field"),
    ({"thresholds": {"usd": USD}}, "thresholds.usd", "three-letter upper-case ISO 4217"),
    ({"thresholds": {"XAU": USD}}, "thresholds.XAU", "not an active ISO 4217 currency"),
    ({"thresholds": {"USD": {"medium": "1", "high": "2"}}}, "thresholds.USD",
     "exactly \"medium\", \"high\" and \"critical\""),
    ({"thresholds": {"USD": {**USD, "low": "0"}}}, "thresholds.USD", "exactly"),
    ({"thresholds": {"USD": {**USD, "high": 10000.0}}}, "thresholds.USD.high",
     "decimal string, not a float"),
    ({"thresholds": {"JPY": {"medium": "0.5", "high": "2", "critical": "3"}}},
     "thresholds.JPY.medium", "1 decimal place but JPY allows 0"),
    ({"thresholds": {"USD": {**USD, "medium": "0"}}}, "thresholds.USD.medium", "greater than zero"),
    ({"thresholds": {"USD": {**USD, "high": "500.00"}}}, "thresholds.USD.high",
     "greater than medium (500.00)"),
    ({"thresholds": {"USD": {**USD, "critical": "1.00"}}}, "thresholds.USD.critical",
     "greater than high (10000.00)"),
])
def test_a_bad_policy_is_refused_naming_the_field_and_the_rule(document, field, rule):
    with pytest.raises(InvalidCommandError) as refused:
        parse_policy(document)
    assert refused.value.field == field
    assert rule in refused.value.rule


def report(**changes) -> OpenDiscrepancy:
    fields = {"external_ref": "pi_1", "source": "stripe", "kind": "amount_mismatch",
              "expected_amount": "10000.00", "actual_amount": "10300.00", "currency": "USD",
              "detected_at": "2026-11-23T10:00:00Z", **changes}
    return OpenDiscrepancy(**fields)


def test_the_opening_event_records_which_rule_gave_the_severity():
    by_policy = decide(None, report(), ENGINE, discrepancy_id="d1", severity_policy=POLICY).data
    assert (by_policy["severity"], by_policy["severity_basis"], by_policy["severity_policy_seq"]) \
        == ("low", "tenant_policy", 42)  # 300.00 is below the policy's 500.00
    built_in = decide(None, report(), ENGINE, discrepancy_id="d1").data
    assert (built_in["severity"], built_in["severity_basis"]) == ("medium", "built_in")  # 30,000 cents
    assert "severity_policy_seq" not in built_in
    reported = decide(None, report(severity="low"), ENGINE, discrepancy_id="d1",
                      severity_policy=POLICY).data
    assert (reported["severity"], reported["severity_basis"]) == ("low", "reported")


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001])
def test_a_policy_change_needs_a_reason_worth_keeping(reason):
    from indelible.entry import Actor as EntryActor
    from indelible.store import severity_policy

    with pytest.raises(InvalidCommandError) as refused:
        severity_policy.change(POLICY, reason=reason, actor=EntryActor("op", "admin", "operator"),
                               expected_version=0)
    assert refused.value.field == "reason"
