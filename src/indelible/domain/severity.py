"""The severity of a new discrepancy when its reporter gave none.

A tenant sets a policy: per currency, three thresholds on the absolute difference, in that
currency's own amounts::

    {"thresholds": {"USD": {"medium": "500.00", "high": "10000.00", "critical": "250000.00"},
                    "JPY": {"medium": "50000", "high": "1000000", "critical": "25000000"}}}

``|difference| >= critical`` is critical, else ``>= high`` high, else ``>= medium`` medium,
else low. Thresholds are per currency because nothing here converts currencies: 500 is a
lot of euros and very few yen. A currency the policy does not list, and every currency of
a tenant without a policy, follows the built-in rule (:data:`BUILT_IN_THRESHOLDS`).

The opening event records which rule decided (``severity_basis``: ``reported``,
``built_in`` or ``tenant_policy`` with ``severity_policy_seq``, the ledger seq of the
policy entry), so an auditor can re-derive every assigned severity from the log alone.
A policy applies to discrepancies opened after it is set; it never rewrites earlier ones.
The service reads the policy when it takes a report in, before the ledger lock, so a report
committed in the moment a change lands may still cite the previous policy: its entry says
so by seq.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from .discrepancy import Severity
from .errors import InvalidCommandError
from .money import format_amount, minor_units, parse_amount

__all__ = ["BUILT_IN_THRESHOLDS", "LEVELS", "SeverityPolicy", "default_severity", "parse_policy"]

LEVELS = ("medium", "high", "critical")  # the thresholds each currency sets, rising

# The built-in rule, by |difference| in the currency's minor units (cents, fils, yen):
# from 10,000 medium (100.00 EUR), from 1,000,000 high (10,000.00 EUR), from 100,000,000
# critical (1,000,000.00 EUR). Minor units keep JPY, KWD and EUR within a small factor of
# each other where major units would be 150 times apart.
BUILT_IN_THRESHOLDS: tuple[int, int, int] = (10_000, 1_000_000, 100_000_000)

_SEVERITIES = (Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


def _band(amount: Decimal, thresholds: tuple[Decimal, ...] | tuple[int, ...]) -> Severity:
    severity = Severity.LOW
    for threshold, level in zip(thresholds, _SEVERITIES, strict=True):
        if amount >= threshold:
            severity = level
    return severity


def default_severity(difference: Decimal, currency: str) -> Severity:
    """The built-in rule (see :data:`BUILT_IN_THRESHOLDS`)."""
    return _band(abs(difference).scaleb(minor_units(currency)), BUILT_IN_THRESHOLDS)


@dataclass(frozen=True)
class SeverityPolicy:
    """A tenant's thresholds; ``seq`` is the ledger entry that set them (None: built-in)."""

    thresholds: Mapping[str, tuple[Decimal, Decimal, Decimal]] = field(
        default_factory=lambda: MappingProxyType({}))
    seq: int | None = None

    def assign(self, difference: Decimal, currency: str) -> tuple[Severity, dict]:
        """The severity of ``difference`` and the basis to record with it."""
        own = self.thresholds.get(currency)
        if own is None:
            return default_severity(difference, currency), {"severity_basis": "built_in"}
        return _band(abs(difference), own), {"severity_basis": "tenant_policy",
                                             "severity_policy_seq": self.seq}

    def to_dict(self) -> dict:
        return {"thresholds": {
            currency: {level: format_amount(value, currency) for level, value in zip(LEVELS, values)}
            for currency, values in sorted(self.thresholds.items())}}


BUILT_IN = SeverityPolicy()


def parse_policy(document: object, *, seq: int | None = None) -> SeverityPolicy:
    """Check a policy document (see the module); errors name the offending field."""
    if not isinstance(document, Mapping):
        raise InvalidCommandError("policy", "must be an object with \"thresholds\"")
    unknown = sorted(set(document) - {"thresholds"})
    if unknown:
        raise InvalidCommandError(unknown[0], "unknown field; a policy has only \"thresholds\"")
    table = document.get("thresholds")
    if not isinstance(table, Mapping) or not table:
        raise InvalidCommandError("thresholds", "must be an object of at least one currency, "
                                                "e.g. {\"USD\": {\"medium\": ..., ...}}")
    parsed = {}
    for currency, levels in table.items():
        where = f"thresholds.{currency}"
        minor_units(currency, where)
        if not isinstance(levels, Mapping) or set(levels) != set(LEVELS):
            raise InvalidCommandError(where, "must set exactly \"medium\", \"high\" and "
                                             "\"critical\"")
        values = tuple(parse_amount(levels[level], currency, f"{where}.{level}")
                       for level in LEVELS)
        if values[0] <= 0:
            raise InvalidCommandError(f"{where}.medium", "must be greater than zero")
        for (lower, low), (upper, high) in zip(zip(LEVELS, values), zip(LEVELS[1:], values[1:])):
            if high <= low:
                raise InvalidCommandError(f"{where}.{upper}",
                                          f"must be greater than {lower} ({levels[lower]})")
        parsed[currency] = values
    return SeverityPolicy(MappingProxyType(dict(sorted(parsed.items()))), seq)
