"""RFC 8785 JSON Canonicalization Scheme (JCS) for the values a ledger entry may hold.

Entries are hashed as their JCS bytes (DESIGN §5), so two encoders must never disagree.
:func:`canonical_json` uses the standard library's C JSON encoder for speed, which is
byte-identical to JCS on exactly the values admitted by a validation walk first:

- ``dict`` with ``str`` keys, ``list``, ``tuple``, ``str``, ``int``, ``bool``, ``None``
  (exact types: subclasses such as enums are refused rather than guessed at);
- no floats at all: JCS numbers are IEEE 754 doubles, and amounts are decimal strings;
- integers within ±(2**53 - 1), the range a double holds exactly (RFC 8785 §3.2.2.3);
- no lone surrogates in any string (they cannot be encoded as UTF-8, RFC 8785 §3.2.2.2);
- no characters above U+FFFF in object keys: JCS sorts keys by UTF-16 code units
  (RFC 8785 §3.2.3) and Python by code points; the two orders differ only between such
  characters (surrogate pairs in UTF-16) and U+E000-U+FFFF, so refusing them makes the
  orders identical.

String escaping already agrees: both escape only ``"``, ``\\`` and U+0000-U+001F, using
``\\b \\t \\n \\f \\r`` and otherwise lowercase ``\\u00xx``. The property tests in
``tests/unit/test_canonical.py`` prove the equality against the ``rfc8785`` package.
"""

from __future__ import annotations

import json
import re

from .errors import CanonicalError

__all__ = ["MAX_SAFE_INTEGER", "canonical_json", "check_canonical"]

MAX_SAFE_INTEGER = 2**53 - 1
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_KEY_CHAR = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Refused(Exception):
    """Raised at the refused value; each enclosing container adds its key on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = []  # innermost first


def canonical_json(value: object) -> bytes:
    """The RFC 8785 canonical JSON bytes of ``value``.

    Raises :class:`CanonicalError` naming the JSON path of the first refused value, e.g.
    ``$.data.amount: floats are not allowed``.
    """
    check_canonical(value)
    return _ENCODER.encode(value).encode("utf-8")


def check_canonical(value: object) -> None:
    """Raise :class:`CanonicalError` unless ``value`` is one of the admitted values above,
    on which any JSON encoder that sorts keys by code point, escapes as described and adds
    no whitespace produces the JCS bytes (the appender uses orjson so; its property tests
    prove it against ``rfc8785``)."""
    try:
        _check(value)
    except _Refused as refused:
        raise CanonicalError(f"{_render(refused.path)}: {refused.reason}") from None
    except RecursionError as e:
        raise CanonicalError("$: nested too deeply (or contains itself)") from e


def _render(path: list[str | int]) -> str:
    parts = ["$"]
    for segment in reversed(path):
        if type(segment) is int:
            parts.append(f"[{segment}]")
        elif _IDENTIFIER.fullmatch(segment):
            parts.append(f".{segment}")
        else:
            parts.append(f"[{json.dumps(segment)}]")
    return "".join(parts)


def _check(value: object) -> None:
    """Raise :class:`_Refused` if ``value`` or anything inside it cannot be encoded exactly.

    Runs once per ledger entry on the append path, so the container loops skip the call
    for the common admitted scalars (ASCII strings, safe ints, bools, None).
    """
    kind = type(value)
    if kind is str:
        if not value.isascii() and _SURROGATE.search(value):
            raise _Refused("strings must not contain lone surrogates (not encodable as UTF-8)")
    elif kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _Refused(f"integer {value} is outside ±(2**53 - 1)")
    elif kind is dict:
        _check_dict(value)
    elif kind is list or kind is tuple:
        _check_list(value)
    elif kind is float:
        raise _Refused("floats are not allowed")
    elif kind is not bool and value is not None:
        raise _Refused(f"values of type {kind.__name__} are not allowed")


def _check_dict(value: dict) -> None:
    for key, item in value.items():
        if type(key) is not str:
            raise _Refused(f"object key {key!r} is a {type(key).__name__}, not a string")
        if not key.isascii() and _BAD_KEY_CHAR.search(key):
            refused = _Refused(
                "object keys must not contain lone surrogates or characters above U+FFFF"
            )
            refused.path.append(key)
            raise refused
        kind = type(item)
        if kind is str:
            if item.isascii():
                continue
        elif kind is bool or item is None:
            continue
        elif kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            continue
        try:
            _check(item)
        except _Refused as refused:
            refused.path.append(key)
            raise


def _check_list(value: list | tuple) -> None:
    for index, item in enumerate(value):
        kind = type(item)
        if kind is str:
            if item.isascii():
                continue
        elif kind is bool or item is None:
            continue
        elif kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            continue
        try:
            _check(item)
        except _Refused as refused:
            refused.path.append(index)
            raise
