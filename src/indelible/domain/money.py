"""Amounts of money: decimal strings checked against ISO 4217 minor units.

An amount travels as a plain decimal string (``"10.50"``), never as a float: a float
cannot hold most cents exactly, and canonical JSON (DESIGN §5) has no decimal type.

Rules for an amount string, in the order they are checked:

1. it is a ``str`` (a float, int, bool or Decimal is refused by name);
2. it matches ``-?(0|[1-9][0-9]{0,17})(\\.[0-9]+)?``: an optional minus, at most 18
   integer digits without leading zeros, an optional fraction — no exponent, no ``+``,
   no spaces, no ``NaN`` or ``Infinity``;
3. it has at most as many decimal places as the currency's minor units (``JPY`` none,
   ``EUR`` two, ``KWD`` three, ``CLF`` four). Fewer are fine: ``"10.5"`` EUR is 10.50.

:func:`format_amount` renders with exactly the minor units, so parse → format → parse
is stable and ``"-0.00"`` renders as ``"0.00"``. A difference is ``actual - expected``.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact
from types import MappingProxyType

from .errors import InvalidCommandError

__all__ = ["CURRENCIES", "difference", "format_amount", "minor_units", "parse_amount"]

# ISO 4217 List One, active codes with a minor unit, as in force in November 2026:
# after HRK (2023), ZWL (2024), SLL and ANG (2025) and BGN (Bulgaria's euro changeover,
# 2026) were withdrawn. Codes whose minor unit is "N.A." — precious metals (XAU, XAG,
# XPD, XPT), bond-market units (XBA-XBD), XDR, XSU, XUA, the test code XTS and XXX — are
# not amounts of money and are refused. Fund codes with a minor unit (BOV, CHE, CHW,
# CLF, COU, MXV, USN, UYI, UYW) are accepted. Amendments: add a line, note it above.
_ISO_4217: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2,
    "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0, "CNY": 2,
    "COP": 2, "COU": 2, "CRC": 2, "CUC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0,
    "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2,
    "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2,
    "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2,
    "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2,
    "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2,
    "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2,
    "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
    "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2,
    "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2,
    "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
    "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2,
    "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2,
    "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2,
    "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0,
    "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}
CURRENCIES = MappingProxyType(_ISO_4217)  # code -> minor units (decimal places)

_CODE = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]+)?")
# Wide enough that no amount the pattern admits, nor a difference of two, is ever rounded.
_EXACT = Context(prec=64, traps=[Inexact])
_QUANTUM = {places: Decimal(1).scaleb(-places) for places in set(_ISO_4217.values())}


def minor_units(currency: object, field: str = "currency") -> int:
    """The number of decimal places ``currency`` allows; refuses anything not in the table."""
    places = _ISO_4217.get(currency) if type(currency) is str else None
    if places is not None:  # every code in the table is three upper-case letters
        return places
    if not isinstance(currency, str) or not _CODE.fullmatch(currency):
        raise InvalidCommandError(field, f"{_show(currency)} is not a three-letter "
                                         "upper-case ISO 4217 code")
    try:
        return CURRENCIES[currency]
    except KeyError:
        raise InvalidCommandError(
            field, f"{currency} is not an active ISO 4217 currency with minor units"
        ) from None


def parse_amount(value: object, currency: str, field: str) -> Decimal:
    """The exact Decimal of an amount string in ``currency``; see the module rules."""
    places = minor_units(currency)
    if not isinstance(value, str):
        raise InvalidCommandError(field, f"must be a decimal string, not {_type_name(value)}")
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise InvalidCommandError(
            field, f"{_show(value)} is not a plain decimal: digits with an optional leading "
                   "'-' and '.', at most 18 before the point (no exponent, '+', spaces or NaN)"
        )
    fraction = match.group(2)
    given = len(fraction) - 1 if fraction else 0
    if given > places:
        unit = "place" if given == 1 else "places"
        raise InvalidCommandError(
            field, f"{_clip(value)} has {given} decimal {unit} but {currency} allows {places}"
        )
    return Decimal(value)


def format_amount(amount: Decimal, currency: str) -> str:
    """``amount`` with exactly ``currency``'s minor units: JPY ``1500``, KWD ``1.250``.

    Never rounds: an amount with more places than the currency allows is a caller bug
    and raises :class:`ValueError`.
    """
    places = minor_units(currency)
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"not a finite Decimal: {amount!r}")
    try:
        exact = amount.quantize(_QUANTUM[places], context=_EXACT)
    except Inexact:
        raise ValueError(f"{amount} has more decimal places than {currency} allows") from None
    if exact.is_zero():
        exact = abs(exact)  # never "-0.00"
    return f"{exact:f}"


def difference(expected: Decimal, actual: Decimal) -> Decimal:
    """``actual - expected``, exactly: positive when more arrived than was expected."""
    return _EXACT.subtract(actual, expected)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _show(value: object) -> str:
    """A short, quoted rendering of untrusted input for an error message."""
    return _clip(repr(value))


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
