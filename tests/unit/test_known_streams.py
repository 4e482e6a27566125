"""KnownStreams alone: what it remembers, when it lets go."""

from __future__ import annotations

from indelible.proofs import CompactRange
from indelible.store import known_streams
from indelible.store.known_streams import NO_STATE, KnownStreams
from indelible.store.logs import LogHead


def _head(size: int, last: bytes | None) -> LogHead:
    return LogHead("t", "o/t", size, last, CompactRange())


def test_what_is_remembered_holds_only_at_the_head_it_was_left_at():
    known = KnownStreams()
    known.remember("t", _head(0, None), 2, b"h2", {"s": 2}, {"s": "state"})

    assert known.confirmed("t", _head(2, b"h2"))
    assert known.candidates("t") == {"s": (2, "state")}
    assert not known.confirmed("t", _head(3, b"h3"))  # someone else appended
    assert known.candidates("t") == {}


def test_a_stream_appended_without_its_state_being_evolved_keeps_no_state():
    known = KnownStreams()
    known.remember("t", _head(0, None), 1, b"h1", {"s": 1, "r": 4}, {"s": "one"})
    known.remember("t", _head(1, b"h1"), 2, b"h2", {"s": 2, "r": 4}, {})

    assert known.candidates("t") == {"s": (2, NO_STATE), "r": (4, NO_STATE)}


def test_what_was_remembered_at_another_head_does_not_carry_over():
    known = KnownStreams()
    known.remember("t", _head(0, None), 1, b"h1", {"old": 1}, {})
    known.remember("t", _head(5, b"h5"), 6, b"h6", {"new": 1}, {})

    assert known.candidates("t") == {"new": (1, NO_STATE)}


def test_past_the_budget_the_least_recently_written_tenant_goes_first(monkeypatch):
    monkeypatch.setattr(known_streams, "MAX_STREAMS", 100)
    known = KnownStreams()
    known.remember("a", _head(0, None), 1, b"a", {f"s{i}": 1 for i in range(80)}, {})
    known.remember("b", _head(0, None), 1, b"b", {f"s{i}": 1 for i in range(50)}, {})
    assert known.candidates("a") == {} and len(known.candidates("b")) == 50

    known.remember("b", _head(1, b"b"), 2, b"c", {f"t{i}": 1 for i in range(70)}, {})
    kept = known.candidates("b")
    assert len(kept) == 75 and "s44" not in kept and "s45" in kept and "t69" in kept
