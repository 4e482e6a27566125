"""ISO 8601 durations for rule thresholds: ``PT4H``, ``P1D``, ``P2W``, ``PT90S``, ``P1DT12H``.

A threshold is an exact number of seconds. Years and months are refused: their length
depends on the calendar (is ``P1M`` 28 days or 31?), and a compliance threshold must not.
A day is 24 hours (86,400 s); counted in business time it is 24 *business* hours.
"""

from __future__ import annotations

import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

MAX_SECONDS = 366 * 86_400 * 10  # ten years: anything longer is a typo, not a policy

# ASCII digits only (\d would admit other scripts' digits, which int() reads too).
_ISO = re.compile(r"P(?:(?P<W>[0-9]+)W)?(?:(?P<D>[0-9]+)D)?"
                  r"(?:T(?:(?P<H>[0-9]+)H)?(?:(?P<M>[0-9]+)M)?(?:(?P<S>[0-9]+)S)?)?")
MAX_DIGITS = 12  # more than ten years in seconds; and far below int()'s 4300-digit limit
_UNIT = {"W": 7 * 86_400, "D": 86_400, "H": 3_600, "M": 60, "S": 1}


class DurationError(ValueError):
    """Not a duration a rule accepts; the message says why."""


def parse_duration(text: object) -> int:
    """Seconds in ``text``; DurationError naming what is wrong."""
    if not isinstance(text, str):
        raise DurationError(f"must be an ISO 8601 duration string such as \"PT4H\", "
                            f"not {type(text).__name__}")
    match = _ISO.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        if re.fullmatch(r"P(\d+Y)?(\d+M)?.*", text) and re.search(r"P[^T]*[YM]", text):
            raise DurationError(f"{text!r}: years and months have no fixed length; "
                                "use days (P30D) or weeks (P4W)")
        raise DurationError(f"{text!r} is not an ISO 8601 duration such as PT4H, P1D, "
                            "P1DT12H or PT30S (weeks, days, hours, minutes, whole seconds)")
    if any(value is not None and len(value) > MAX_DIGITS for value in match.groupdict().values()):
        raise DurationError(f"{text[:40]!r}... is longer than ten years")
    seconds = sum(int(value) * _UNIT[unit] for unit, value in match.groupdict().items()
                  if value is not None)
    if seconds <= 0:
        raise DurationError(f"{text!r} is zero; a threshold must be at least one second")
    if seconds > MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than ten years")
    return seconds


def format_duration(seconds: int) -> str:
    """The canonical text of a number of seconds (``P1DT4H``); parse_duration's inverse on
    canonical texts."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if seconds else "PT0S"
