"""Commands: what a person or an engine asks to happen to a discrepancy, and who asks.

A command checks itself when it is built: if it exists, it is well-formed, and values
are normalised (enums from their string values, amounts to the currency's minor units,
times to UTC with microseconds, metadata copied). A malformed field raises
:class:`~.errors.InvalidCommandError` naming the field and the rule. Whether the command
is allowed *now* depends on the discrepancy's state and the actor's role, and is decided
by :func:`~indelible.domain.decide`.

Limits (characters unless stated):

=====================  ==========================================================
external_ref           1-200, one line, no surrounding whitespace
source                 1-64, a slug: ``[a-z0-9][a-z0-9_.-]*`` (``stripe``, ``bank.eu``)
amounts                see :mod:`.money`; an amount_mismatch needs two different amounts
detected_at            RFC 3339 with a timezone, at most microseconds
metadata               a JSON object, at most 16 KiB serialized, no floats anywhere
transaction_refs       at most 100 distinct one-line ids of 1-200
reason                 1-1000; required to escalate, to auto-close, to change severity
resolution note        1-4000; resolving needs a resolution code and a note
comment                1-4000
assignee               1-200, one line; None unassigns
evidence               sha256 as 64 lowercase hex digits; name 1-255 without path
                       separators; size 0..2**53-1 bytes; media type ``type/subtype``
=====================  ==========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from decimal import Decimal

from .discrepancy import Kind, ResolutionCode, Severity
from .errors import InvalidCommandError
from .lifecycle import Role, Status
from .money import difference, format_amount, minor_units, parse_amount
from .validation import (
    MAX_SAFE_INTEGER,
    check_enum,
    check_json,
    check_line,
    check_text,
    check_time,
)

__all__ = [
    "Actor", "Assign", "AttachEvidence", "ChangeSeverity", "Command",
    "Comment", "OpenDiscrepancy", "Transition",
]

MAX_EXTERNAL_REF = 200
MAX_SOURCE = 64
MAX_METADATA = 16 * 1024  # bytes, serialized
MAX_TRANSACTION_REFS = 100
MAX_REF = 200
MAX_REASON = 1000
MAX_NOTE = 4000
MAX_COMMENT = 4000
MAX_ASSIGNEE = 200
MAX_FILE_NAME = 255
NEEDS_REASON = frozenset({Status.ESCALATED, Status.AUTO_CLOSED})
_ROLES = {role.value: role for role in Role}  # an actor is built for every decided command

SLUG_PATTERN = r"[a-z0-9][a-z0-9_.-]*"  # a source's name, below MAX_SOURCE characters
_SLUG = re.compile(SLUG_PATTERN)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _set(command: object, name: str, value: object) -> None:
    object.__setattr__(command, name, value)  # normalising a frozen dataclass on creation


@dataclass(frozen=True)
class Actor:
    """Who issues a command. A bad role is a caller bug (ValueError), not bad input."""

    id: str
    role: Role

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("actor id must be a non-empty string")
        known = _ROLES.get(self.role) if isinstance(self.role, str) else None
        _set(self, "role", known or Role(self.role))  # the lookup: 1/10 of Role()'s time


@dataclass(frozen=True)
class OpenDiscrepancy:
    """Record a discrepancy reported by a reconciliation engine (or a person)."""

    external_ref: str
    source: str
    kind: Kind
    expected_amount: str
    actual_amount: str
    currency: str
    detected_at: str
    severity: Severity | None = None  # None: the tenant's SeverityPolicy decides
    metadata: dict = field(default_factory=dict)
    transaction_refs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_line(self.external_ref, "external_ref", max_len=MAX_EXTERNAL_REF)
        check_source(self.source)
        _set(self, "kind", check_enum(Kind, self.kind, "kind"))
        minor_units(self.currency)
        expected = parse_amount(self.expected_amount, self.currency, "expected_amount")
        actual = parse_amount(self.actual_amount, self.currency, "actual_amount")
        if self.kind is Kind.AMOUNT_MISMATCH and expected == actual:
            raise InvalidCommandError(
                "actual_amount", "equals expected_amount, so it is not an amount_mismatch"
            )
        _set(self, "expected_amount", format_amount(expected, self.currency))
        _set(self, "actual_amount", format_amount(actual, self.currency))
        _set(self, "detected_at", check_time(self.detected_at, "detected_at"))
        if self.severity is not None:
            _set(self, "severity", check_enum(Severity, self.severity, "severity"))
        _set(self, "metadata", check_json(self.metadata, "metadata", max_bytes=MAX_METADATA))
        _set(self, "transaction_refs", _check_refs(self.transaction_refs))

    @classmethod
    def prechecked(cls, **values: object) -> OpenDiscrepancy:
        """The command from values already checked and normalised by exactly these rules,
        built without checking them twice: for the ingestion contract's decoder, which
        enforces them in C (ingest/contract.py). tests/unit/test_ingest_contract_fast.py
        proves, against this class's own constructor, that it builds nothing else."""
        if values.keys() != _OPEN_FIELDS:
            raise TypeError(f"prechecked needs exactly the fields {sorted(_OPEN_FIELDS)}")
        command = object.__new__(cls)
        vars(command).update(values)
        return command

    @property
    def difference(self) -> Decimal:
        """``actual_amount - expected_amount``, exactly."""
        return difference(Decimal(self.expected_amount), Decimal(self.actual_amount))


_OPEN_FIELDS = {f.name for f in fields(OpenDiscrepancy)}


def check_source(value: object) -> None:
    """A reconciliation source's name: a one-line slug (`stripe`, `bank.ach`)."""
    check_line(value, "source", max_len=MAX_SOURCE)
    if not _SLUG.fullmatch(value):
        raise InvalidCommandError(
            "source", f"{value!r} is not a slug: lower-case letters, digits and '_.-', "
                      "starting with a letter or digit"
        )


def _check_refs(value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise InvalidCommandError(
            "transaction_refs", f"must be a list of strings, not {type(value).__name__}"
        )
    if len(value) > MAX_TRANSACTION_REFS:
        raise InvalidCommandError(
            "transaction_refs", f"has {len(value)} items; the limit is {MAX_TRANSACTION_REFS}"
        )
    for index, ref in enumerate(value):
        check_line(ref, f"transaction_refs[{index}]", max_len=MAX_REF)
    if len(set(value)) != len(value):
        raise InvalidCommandError("transaction_refs", "must not repeat an id")
    return tuple(value)


@dataclass(frozen=True)
class Transition:
    """Move a discrepancy to another status (see :data:`~.lifecycle.TRANSITIONS`)."""

    to: Status
    reason: str | None = None  # required to escalate or auto-close
    resolution_code: ResolutionCode | None = None  # required to resolve, refused otherwise
    note: str | None = None  # required to resolve, refused otherwise

    def __post_init__(self) -> None:
        _set(self, "to", check_enum(Status, self.to, "to"))
        if self.reason is not None:
            check_text(self.reason, "reason", max_len=MAX_REASON)
        elif self.to in NEEDS_REASON:
            raise InvalidCommandError("reason", f"is required to move to {self.to}")
        if self.to is Status.RESOLVED:
            if self.resolution_code is None:
                raise InvalidCommandError("resolution_code", "is required to resolve")
            code = check_enum(ResolutionCode, self.resolution_code, "resolution_code")
            _set(self, "resolution_code", code)
            if self.note is None:
                raise InvalidCommandError("note", "is required to resolve")
            check_text(self.note, "note", max_len=MAX_NOTE)
        else:
            for name in ("resolution_code", "note"):
                if getattr(self, name) is not None:
                    raise InvalidCommandError(name, "is only accepted when moving to resolved")


@dataclass(frozen=True)
class Assign:
    """Give a discrepancy to someone (an actor id), or to nobody with None."""

    assignee: str | None

    def __post_init__(self) -> None:
        if self.assignee is not None:
            check_line(self.assignee, "assignee", max_len=MAX_ASSIGNEE)


@dataclass(frozen=True)
class Comment:
    """Annotate a discrepancy; accepted in every status, terminal ones included."""

    text: str

    def __post_init__(self) -> None:
        check_text(self.text, "text", max_len=MAX_COMMENT)


@dataclass(frozen=True)
class ChangeSeverity:
    """Re-grade a discrepancy; the reason is part of the record."""

    severity: Severity
    reason: str

    def __post_init__(self) -> None:
        _set(self, "severity", check_enum(Severity, self.severity, "severity"))
        check_text(self.reason, "reason", max_len=MAX_REASON)


@dataclass(frozen=True)
class AttachEvidence:
    """Record a file stored content-addressed elsewhere: its hash, name, size and type."""

    sha256: str  # 64 lower-case hex digits
    name: str
    size: int  # bytes
    media_type: str  # type/subtype (RFC 6838 names, no parameters), stored lower-case

    def __post_init__(self) -> None:
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise InvalidCommandError("sha256", "must be 64 lower-case hexadecimal digits")
        check_line(self.name, "name", max_len=MAX_FILE_NAME)
        if "/" in self.name or "\\" in self.name:
            raise InvalidCommandError("name", "must be a file name without '/' or '\\'")
        if type(self.size) is not int or not 0 <= self.size <= MAX_SAFE_INTEGER:
            raise InvalidCommandError("size", "must be an integer from 0 to 2**53 - 1 (bytes)")
        media_type = self.media_type
        if not isinstance(media_type, str) or not media_type.isascii() \
                or not _MEDIA_TYPE.fullmatch(media_type.lower()):
            raise InvalidCommandError(
                "media_type", f"{media_type!r:.60} is not a media type like application/pdf"
            )
        _set(self, "media_type", media_type.lower())


Command = (OpenDiscrepancy | Transition | Assign | Comment | ChangeSeverity
           | AttachEvidence)
