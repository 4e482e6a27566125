"""Amounts are decimal strings checked against ISO 4217 minor units; floats never pass."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible.domain import (
    CURRENCIES,
    InvalidCommandError,
    difference,
    format_amount,
    parse_amount,
)
from indelible.domain.money import minor_units


@pytest.mark.parametrize(("code", "places"), [
    ("EUR", 2), ("USD", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0), ("VND", 0), ("ISK", 0),
    ("CLP", 0), ("XAF", 0), ("XOF", 0), ("UYI", 0), ("KWD", 3), ("BHD", 3), ("JOD", 3),
    ("OMR", 3), ("TND", 3), ("LYD", 3), ("IQD", 3), ("CLF", 4), ("UYW", 4), ("XCG", 2),
    ("ZWG", 2), ("SLE", 2), ("VES", 2), ("VED", 2),
])
def test_the_table_knows_the_minor_units_of_active_currencies(code, places):
    assert minor_units(code) == places


@pytest.mark.parametrize("code", ["XAU", "XAG", "XPT", "XPD", "XDR", "XXX", "XTS", "XBA",
                                  "XSU", "XUA", "HRK", "ZWL", "SLL", "ANG", "BGN", "ABC"])
def test_codes_without_minor_units_or_withdrawn_are_refused(code):
    with pytest.raises(InvalidCommandError, match=f"currency: {code} is not an active ISO 4217"):
        minor_units(code)


@pytest.mark.parametrize("code", ["eur", "EU", "EURO", "", "E1R", 978, None])
def test_a_currency_must_be_three_upper_case_letters(code):
    with pytest.raises(InvalidCommandError, match="currency: .* is not a three-letter upper-case"):
        minor_units(code)


def test_every_code_in_the_table_is_three_letters_with_zero_to_four_places():
    assert len(CURRENCIES) > 150
    for code, places in CURRENCIES.items():
        assert len(code) == 3 and code.isalpha() and code.isupper()
        assert places in (0, 2, 3, 4)


def test_jpy_takes_no_decimals():
    assert parse_amount("1500", "JPY", "amount") == Decimal(1500)
    with pytest.raises(InvalidCommandError, match="amount: 1500.5 has 1 decimal place but JPY allows 0"):
        parse_amount("1500.5", "JPY", "amount")


def test_kwd_takes_three_decimals():
    assert parse_amount("1.250", "KWD", "amount") == Decimal("1.25")
    with pytest.raises(InvalidCommandError, match="amount: 1.2500 has 4 decimal places but KWD allows 3"):
        parse_amount("1.2500", "KWD", "amount")


def test_eur_takes_two_decimals_and_the_message_names_the_field_and_the_rule():
    assert parse_amount("10.5", "EUR", "expected_amount") == Decimal("10.5")
    with pytest.raises(InvalidCommandError) as refused:
        parse_amount("10.123", "EUR", "expected_amount")
    assert str(refused.value) == "expected_amount: 10.123 has 3 decimal places but EUR allows 2"
    assert refused.value.field == "expected_amount"
    assert refused.value.rule == "10.123 has 3 decimal places but EUR allows 2"


@pytest.mark.parametrize(("value", "named"), [
    (10.5, "a float"), (10, "an integer"), (True, "a boolean"), (None, "null"),
    (Decimal("10.5"), "a Decimal"), (b"10.5", "a bytes"),
])
def test_non_strings_are_refused_by_name(value, named):
    with pytest.raises(InvalidCommandError, match=f"amount: must be a decimal string, not {named}"):
        parse_amount(value, "EUR", "amount")


@pytest.mark.parametrize("value", [
    "1e3", "1E3", "+1", " 1", "1 ", "1,00", "NaN", "nan", "Infinity", "-Infinity", "",
    "-", ".5", "5.", "01", "00.5", "--1", "1.2.3", "0x10", "١٢", "1_000",
    "1234567890123456789",  # 19 integer digits
])
def test_anything_but_a_plain_decimal_is_refused(value):
    with pytest.raises(InvalidCommandError, match="amount: .* is not a plain decimal"):
        parse_amount(value, "EUR", "amount")


def test_eighteen_integer_digits_and_negative_amounts_are_accepted():
    assert parse_amount("123456789012345678.99", "EUR", "a") == Decimal("123456789012345678.99")
    assert parse_amount("-0.01", "EUR", "a") == Decimal("-0.01")


def test_an_unknown_currency_is_refused_before_the_amount_is_read():
    with pytest.raises(InvalidCommandError, match="currency: XAU is not an active ISO 4217"):
        parse_amount("1", "XAU", "amount")


def test_a_long_bad_value_is_clipped_in_the_message():
    with pytest.raises(InvalidCommandError) as refused:
        parse_amount("1" * 30 + "x" * 1000, "EUR", "amount")
    assert len(str(refused.value)) < 250


@pytest.mark.parametrize(("text", "currency", "shown"), [
    ("1500", "JPY", "1500"), ("10.5", "EUR", "10.50"), ("1.25", "KWD", "1.250"),
    ("0", "CLF", "0.0000"), ("-0", "EUR", "0.00"), ("-0.00", "EUR", "0.00"),
    ("-3.1", "USD", "-3.10"), ("123456789012345678", "JPY", "123456789012345678"),
])
def test_format_amount_renders_exactly_the_minor_units(text, currency, shown):
    assert format_amount(parse_amount(text, currency, "a"), currency) == shown


def test_format_amount_never_rounds():
    with pytest.raises(ValueError, match="more decimal places than EUR allows"):
        format_amount(Decimal("1.005"), "EUR")
    with pytest.raises(ValueError, match="not a finite Decimal"):
        format_amount(Decimal("NaN"), "EUR")
    with pytest.raises(ValueError, match="not a finite Decimal"):
        format_amount(1.5, "EUR")


def test_the_difference_is_actual_minus_expected_and_exact():
    expected = parse_amount("100.10", "EUR", "e")
    actual = parse_amount("99.99", "EUR", "a")
    assert format_amount(difference(expected, actual), "EUR") == "-0.11"
    big = parse_amount("999999999999999999.99", "EUR", "e")
    assert format_amount(difference(-big, big), "EUR") == "1999999999999999999.98"


@st.composite
def amounts(draw):
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    places = CURRENCIES[currency]
    whole = draw(st.integers(0, 10**18 - 1))
    text = ("-" if draw(st.booleans()) else "") + str(whole)
    decimals = draw(st.integers(0, places))
    if decimals:
        text += "." + "".join(draw(st.lists(st.sampled_from("0123456789"),
                                            min_size=decimals, max_size=decimals)))
    return text, currency


@settings(max_examples=300, deadline=None)
@given(amounts())
def test_parse_format_parse_is_stable_within_the_currency_scale(case):
    text, currency = case
    value = parse_amount(text, currency, "a")
    shown = format_amount(value, currency)
    assert parse_amount(shown, currency, "a") == value
    assert format_amount(parse_amount(shown, currency, "a"), currency) == shown
    places = CURRENCIES[currency]
    assert len(shown.partition(".")[2]) == places
