"""Strict decoders for the text formats (signed notes, checkpoints, tlog-proofs).

The C2SP formats use standard base64 (RFC 4648 §4) and ASCII decimals without leading
zeroes. Each value has exactly one accepted spelling, so two parties can never disagree
about what a text says: non-canonical base64 (bad padding, stray bits) is refused too.
"""

from __future__ import annotations

import base64
import re

from .errors import ProofError

__all__ = ["MAX_UINT64", "b64decode", "b64encode", "check_text", "decimal"]

MAX_UINT64 = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, where: str, what: str) -> bytes:
    """Decode canonical standard base64; :class:`ProofError` '<where>: <what> ...' otherwise."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as e:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise ProofError(f"{where}: {what} is not valid base64") from e
    if b64encode(data) != text:
        raise ProofError(f"{where}: {what} is not canonical base64")
    return data


def decimal(text: str, where: str, what: str) -> int:
    """Parse an ASCII decimal with no leading zeroes that fits in a uint64."""
    if not _DECIMAL.fullmatch(text):
        raise ProofError(f"{where}: {what} {text!r} is not a canonical decimal")
    value = int(text)
    if value > MAX_UINT64:
        raise ProofError(f"{where}: {what} {text} does not fit in 64 bits")
    return value


def check_text(text: object, what: str) -> str:
    """Refuse non-str, lone surrogates (not UTF-8) and ASCII controls other than newline."""
    if type(text) is not str:
        raise ProofError(f"{what} must be a str, got {type(text).__name__}")
    if not text.isascii():
        bad = _SURROGATE.search(text)
        if bad:
            raise ProofError(f"{what} is not valid UTF-8 (lone surrogate at offset {bad.start()})")
    bad = _CONTROL.search(text)
    if bad:
        raise ProofError(
            f"{what} contains control character U+{ord(bad.group()):04X} at offset {bad.start()}"
        )
    return text

