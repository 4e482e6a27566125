"""The domain's rules spelled as patterns, for decoders that check in C (ingest/contract.py),
accept exactly what the domain's own checks accept."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from indelible.domain import InvalidCommandError
from indelible.domain.commands import MAX_SOURCE, SLUG_PATTERN, check_source
from indelible.domain.validation import LINE_PATTERN, check_line

SETTINGS = settings(max_examples=2000, deadline=None)
# Every character str.strip removes, controls, NUL, DEL, lone surrogates, astral ones.
EDGES = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + \
    "\x00\x01\x1f\x7f\x80\x9f\xa0\ufeff\ud800\udfff\U0001f600a-._Z0"
strings = st.text(st.one_of(st.sampled_from(EDGES), st.characters()), max_size=8)


def accepted(check, value) -> bool:
    try:
        check(value)
    except InvalidCommandError:
        return False
    return True


@SETTINGS
@given(value=strings)
@example(value="a\n")
@example(value="\u3000a")
def test_the_line_pattern_accepts_exactly_what_check_line_accepts(value):
    assert bool(re.fullmatch(LINE_PATTERN, value)) == accepted(
        lambda v: check_line(v, "f", max_len=len(value)), value)


@SETTINGS
@given(value=st.one_of(strings, st.from_regex(SLUG_PATTERN, fullmatch=True)))
def test_the_slug_pattern_below_max_source_is_check_source(value):
    matches = bool(re.fullmatch(SLUG_PATTERN, value)) and len(value) <= MAX_SOURCE
    assert matches == accepted(check_source, value)
