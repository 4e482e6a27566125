"""What a report is asked for: a period and filters, checked once for every entry point.

`parse_request` turns a caller's JSON-like mapping (the HTTP body, the CLI's options, a
schedule) into a `ReportRequest` or raises `InvalidReportError` listing every (field, rule)
that is wrong, so HTTP answers one 422 naming each field. `ReportRequest.to_json()` is the
canonical form recorded in the `report.generated` entry: the same request always gives the
same bytes, which reproducible rendering depends on.

Periods are half-open, `[from, to)`, in UTC: a quarter is `2026-10-01` to `2027-01-01`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from indelible import domain
from indelible.domain.money import CURRENCIES

FORMATS = ("pdf", "html", "json")  # in the order files are listed
MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8",
               "json": "application/json"}
MAX_PERIOD = timedelta(days=366)  # a year (leap years included); longer: one report per year
MAX_IDS = 1_000  # discrepancies named one by one
MAX_VALUES = 50  # values per list filter
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class InvalidReportError(ValueError):
    """One or more fields of a report request break a rule: `errors` lists (field, rule)."""

    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = errors


@dataclass(frozen=True)
class ReportRequest:
    period_from: datetime  # UTC, inclusive
    period_to: datetime  # UTC, exclusive
    formats: tuple[str, ...] = FORMATS
    statuses: tuple[str, ...] = ()  # empty: any
    severities: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    discrepancy_ids: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """The canonical parameters (sorted lists, RFC 3339 UTC times with a Z)."""
        return {"from": format_utc(self.period_from), "to": format_utc(self.period_to),
                "formats": list(self.formats),
                "filters": {"status": list(self.statuses), "severity": list(self.severities),
                            "source": list(self.sources), "currency": list(self.currencies),
                            "discrepancy_ids": list(self.discrepancy_ids)}}

    @property
    def label(self) -> str:
        """The period as a person reads it: `2026-10-01 to 2026-12-31` (inclusive days)."""
        last = self.period_to - timedelta(microseconds=1)
        if self.period_from.time() == self.period_to.time() == datetime.min.time():
            return f"{self.period_from.date()} to {last.date()}"
        return f"{format_utc(self.period_from)} to {format_utc(self.period_to)} (exclusive)"


def format_utc(t: datetime) -> str:
    t = t.astimezone(timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{t.microsecond:06d}Z" if t.microsecond else "Z")


def parse_request(body: Mapping) -> ReportRequest:
    """The request, or InvalidReportError naming every bad field."""
    errors: list[tuple[str, str]] = []
    if not isinstance(body, Mapping):
        raise InvalidReportError([("body", "must be a JSON object")])
    unknown = sorted(set(body) - {"from", "to", "formats", "filters"})
    errors += [(name, "unknown field; allowed: from, to, formats, filters") for name in unknown]
    start = _time(body.get("from"), "from", errors)
    end = _time(body.get("to"), "to", errors)
    if start and end:
        if end <= start:
            errors.append(("to", f"must be after from ({format_utc(start)})"))
        elif end - start > MAX_PERIOD:
            errors.append(("to", f"the period is {(end - start).days} days; at most "
                                 f"{MAX_PERIOD.days} days per report (ask for one per year)"))
    formats = _formats(body.get("formats", list(FORMATS)), errors)
    filters = body.get("filters") or {}
    if not isinstance(filters, Mapping):
        errors.append(("filters", "must be an object"))
        filters = {}
    known = {"status", "severity", "source", "currency", "discrepancy_ids"}
    errors += [(f"filters.{k}", f"unknown filter; allowed: {', '.join(sorted(known))}")
               for k in sorted(set(filters) - known)]
    statuses = _values(filters, "status", [s.value for s in domain.Status], errors)
    severities = _values(filters, "severity", [s.value for s in domain.Severity], errors)
    currencies = _values(filters, "currency", sorted(CURRENCIES), errors)
    sources = _listed(filters, "source", errors, _SOURCE.match,
                      "a source name (letters, digits, . _ : -, at most 100)")
    ids = _listed(filters, "discrepancy_ids", errors, _is_uuid, "a discrepancy id (UUID)",
                  limit=MAX_IDS)
    if errors:
        raise InvalidReportError(errors)
    return ReportRequest(start, end, formats, statuses, severities, sources, currencies,
                         tuple(str(uuid.UUID(i)) for i in ids))


def _time(value, name: str, errors: list) -> datetime | None:
    if value is None:
        errors.append((name, "is required: a date (2026-10-01, midnight UTC) or an RFC 3339 "
                             "time with its offset"))
        return None
    if not isinstance(value, str):
        errors.append((name, "must be a string"))
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), timezone.utc)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.append((name, f"{value!r} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
        return None
    if parsed.tzinfo is None:
        errors.append((name, f"{value!r} has no UTC offset (add Z or +hh:mm)"))
        return None
    return parsed.astimezone(timezone.utc)


def _formats(value, errors: list) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list) or not value:
        errors.append(("formats", f"a non-empty list of {', '.join(FORMATS)}"))
        return ()
    bad = [v for v in value if v not in FORMATS]
    if bad:
        errors.append(("formats", f"unknown format {bad[0]!r}; allowed: {', '.join(FORMATS)}"))
        return ()
    return tuple(f for f in FORMATS if f in value)


def _values(filters: Mapping, name: str, allowed: list[str], errors: list) -> tuple[str, ...]:
    def ok(v):
        return v in allowed
    return _listed(filters, name, errors, ok, "one of " + ", ".join(allowed[:12]) +
                   (", ..." if len(allowed) > 12 else ""))


def _listed(filters: Mapping, name: str, errors: list, ok, what: str,
            limit: int = MAX_VALUES) -> tuple[str, ...]:
    value = filters.get(name, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append((f"filters.{name}", "must be a list of strings"))
        return ()
    if len(value) > limit:
        errors.append((f"filters.{name}", f"at most {limit} values, got {len(value)}"))
        return ()
    for v in value:
        if not ok(v):
            errors.append((f"filters.{name}", f"unknown value {v!r}: expected {what}"))
            return ()
    return tuple(sorted(set(value)))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
