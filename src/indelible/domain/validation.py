"""Field rules shared by the commands; each failure is an InvalidCommandError(field, rule).

Everything a command admits ends up inside a ledger entry, which is RFC 8785 canonical
JSON (DESIGN §5), and in PostgreSQL text columns. So, for every string: no lone
surrogates (not encodable as UTF-8) and no NUL (PostgreSQL text cannot hold it). For
free JSON (metadata): only dict/list/str/int/bool/None, integers within ±(2**53 - 1),
no floats, no NUL in strings or keys (PostgreSQL jsonb refuses ``\u0000``), object keys
free of lone surrogates and of characters above U+FFFF (JCS orders keys by UTF-16 code
units; see :mod:`indelible.proofs.canonical`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from indelible.proofs.canonical import MAX_SAFE_INTEGER  # pure, like the domain

from .errors import InvalidCommandError

__all__ = ["LINE_PATTERN", "check_enum", "check_json", "check_line", "check_text", "check_time"]

E = TypeVar("E", bound=StrEnum)
MAX_DEPTH = 16  # levels of nesting in free JSON
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_KEY = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Everything check_line accepts (below its max_len), as one pattern for decoders that check
# in C (ingest/contract.py): a first and a last character that are not whitespace (`\s` is
# str.strip's whitespace), and no control character, NUL or lone surrogate anywhere.
# tests/unit/test_domain_validation_patterns.py proves it accepts exactly what check_line does.
_NOT_IN_A_LINE = "\x00-\x1f\x7f-\x9f\ud800-\udfff"
LINE_PATTERN = f"[^\\s{_NOT_IN_A_LINE}](?:[^{_NOT_IN_A_LINE}]*[^\\s{_NOT_IN_A_LINE}])?"
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def check_text(value: object, field: str, *, max_len: int, min_len: int = 1) -> str:
    """A multi-line text (notes, comments, reasons): ``min_len..max_len`` characters,
    not blank, no NUL, no lone surrogates."""
    if not isinstance(value, str):
        raise InvalidCommandError(field, f"must be a string, not {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise InvalidCommandError(
            field, f"must be {min_len} to {max_len} characters, got {len(value)}"
        )
    if min_len and not value.strip():
        raise InvalidCommandError(field, "must not be blank")
    if "\x00" in value:
        raise InvalidCommandError(field, "must not contain NUL characters")
    if _SURROGATE.search(value):
        raise InvalidCommandError(field, "must not contain lone surrogates")
    return value


def check_line(value: object, field: str, *, max_len: int) -> str:
    """A one-line identifier or name: like :func:`check_text`, and also no control
    characters and no leading or trailing whitespace (it is compared and looked up)."""
    check_text(value, field, max_len=max_len)
    if _CONTROL.search(value):
        raise InvalidCommandError(field, "must not contain control characters")
    if value != value.strip():
        raise InvalidCommandError(field, "must not start or end with whitespace")
    return value


def check_enum(cls: type[E], value: object, field: str) -> E:
    """``value`` as a member of ``cls``; the refusal lists the allowed values."""
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(member.value for member in cls)
        raise InvalidCommandError(
            field, f"{_clip(repr(value))} is not one of: {allowed}"
        ) from None


def check_time(value: object, field: str) -> str:
    """An RFC 3339 timestamp with a UTC offset, as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    At most microsecond precision: finer digits are refused rather than dropped, so the
    recorded time is never silently different from the reported one.
    """
    if not isinstance(value, str):
        raise InvalidCommandError(field, f"must be an RFC 3339 string, not {type(value).__name__}")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise InvalidCommandError(
            field, f"{_clip(repr(value))} is not an RFC 3339 timestamp with a timezone, "
                   "e.g. 2026-11-23T05:00:00Z"
        )
    fraction = match.group(1) or ""
    if len(fraction) > 7:
        raise InvalidCommandError(field, "at most 6 fractional digits (microseconds)")
    try:
        moment = datetime.fromisoformat(value.upper())
        utc = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidCommandError(field, f"{value!r} is not a valid date and time") from None
    # isoformat, not strftime: strftime's %Y does not zero-pad years before 1000 on glibc
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def check_json(value: object, field: str, *, max_bytes: int) -> dict:
    """A JSON object safe for canonical encoding, copied; at most ``max_bytes`` when
    serialized with ``json.dumps(sort_keys=True, separators=(",", ":"))``."""
    if not isinstance(value, dict):
        raise InvalidCommandError(field, f"must be a JSON object, not {type(value).__name__}")
    copy = _copy_json(value, field, depth=0)
    size = len(json.dumps(copy, separators=(",", ":")).encode("utf-8"))  # order: same size
    if size > max_bytes:
        raise InvalidCommandError(field, f"is {size} bytes serialized; the limit is {max_bytes}")
    return copy


def _copy_json(value: object, path: str, *, depth: int) -> object:
    """A fresh copy of ``value`` (tuples become lists), or a refusal naming its path."""
    kind = type(value)
    if kind is str:
        if _SURROGATE.search(value):
            raise InvalidCommandError(path, "strings must not contain lone surrogates")
        if "\x00" in value:
            raise InvalidCommandError(path, "strings must not contain NUL characters")
        return value
    if kind is bool or value is None:
        return value
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise InvalidCommandError(path, "integers must be within ±(2**53 - 1); "
                                            "send larger numbers as strings")
        return value
    if kind is float:
        raise InvalidCommandError(path, "floats are not allowed; send amounts as decimal strings")
    if kind not in (dict, list, tuple):
        raise InvalidCommandError(path, f"values of type {kind.__name__} are not allowed")
    if depth >= MAX_DEPTH:
        raise InvalidCommandError(path, f"nested deeper than {MAX_DEPTH} levels")
    if kind is dict:
        return {_check_key(key, path): _copy_json(item, f"{path}.{key}", depth=depth + 1)
                for key, item in value.items()}
    return [_copy_json(item, f"{path}[{index}]", depth=depth + 1)
            for index, item in enumerate(value)]


def _check_key(key: object, path: str) -> str:
    if type(key) is not str:
        raise InvalidCommandError(path, f"object key {_clip(repr(key))} is not a string")
    if "\x00" in key:
        raise InvalidCommandError(path, "object keys must not contain NUL characters")
    if _BAD_KEY.search(key):
        raise InvalidCommandError(
            path, "object keys must not contain lone surrogates or characters above U+FFFF"
        )
    return key


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
