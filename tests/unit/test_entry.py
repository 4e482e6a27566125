"""The entry template encoder is byte-identical to RFC 8785 of the whole entry document."""

from __future__ import annotations

import pickle
import uuid
from datetime import datetime, timezone

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from indelible.entry import (Actor, EntryError, NewEntry, b64, encode_entry, format_time,
                             time_ordered_ids)

names = st.text(min_size=1, max_size=40).filter(lambda s: not any("\ud800" <= c <= "\udfff" for c in s))
keys = st.text(max_size=12, alphabet=st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs",)))
scalars = (st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
           | st.text(max_size=30, alphabet=st.characters(blacklist_categories=("Cs",))))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(stream=names, type_=names, actor_id=names, data=st.dictionaries(keys, values, max_size=6),
       meta=st.dictionaries(keys.filter(lambda k: k != "idempotency_key"), values, max_size=3),
       key=st.none() | names, seq=st.integers(0, 2**40), version=st.integers(1, 2**30),
       prev=st.none() | st.binary(min_size=32, max_size=32))
def test_the_spliced_entry_equals_rfc8785_of_the_whole_document(stream, type_, actor_id, data,
                                                                meta, key, seq, version, prev):
    at = datetime(2026, 11, 23, 5, 0, 0, 123456, tzinfo=timezone.utc)
    event_id = uuid.UUID(int=seq * 7919, version=4)
    command = NewEntry(stream=stream, type=type_, actor=Actor(actor_id, "analyst"), data=data,
                       meta=meta, idempotency_key=key)
    entry = encode_entry(command, origin="log.example/acme", seq=seq, prev=prev,
                         version=version, at=at, event_id=event_id)

    document = {"v": 1, "log": "log.example/acme", "seq": seq, "prev": b64(prev) if prev else "",
                "id": str(event_id), "at": format_time(at), "stream": stream, "version": version,
                "type": type_, "actor": {"id": actor_id, "kind": "user", "role": "analyst"},
                "data": data, "meta": {**meta, **({"idempotency_key": key} if key else {})}}
    assert entry == rfc8785.dumps(document)


def _command(**overrides) -> NewEntry:
    fields = {"stream": "disc/1", "type": "t", "actor": Actor("u", "analyst"), "data": {}}
    return NewEntry(**{**fields, **overrides})


@pytest.mark.parametrize("overrides, message", [
    ({"data": {"amount": 1.5}}, r"\$\.data\.amount: floats are not allowed"),
    ({"meta": {"n": 2**60}}, r"\$\.meta\.n: "),
    ({"stream": ""}, "stream must be a non-empty string"),
    ({"data": ["not", "an", "object"]}, "data and meta must be JSON objects"),
    ({"meta": {"idempotency_key": "x"}}, "meta.idempotency_key is reserved"),
    ({"expected_version": -1}, "expected_version must be >= 0"),
])
def test_a_command_that_cannot_be_an_entry_is_refused_naming_the_field(overrides, message):
    with pytest.raises(EntryError, match=message):
        encode_entry(_command(**overrides), origin="o", seq=0, prev=None, version=1,
                     at=datetime.now(timezone.utc))


def test_event_ids_are_uuid7_ordered_by_time():
    early = time_ordered_ids(datetime(2026, 1, 1, tzinfo=timezone.utc), 3)
    late = time_ordered_ids(datetime(2026, 1, 2, tzinfo=timezone.utc), 3)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in early + late)
    assert max(early) < min(late) and len(set(early)) == 3


def test_event_ids_are_the_uuids_the_standard_constructor_makes_of_their_value():
    for made in time_ordered_ids(datetime.now(timezone.utc), 50):
        standard = uuid.UUID(int=made.int)
        assert (made, str(made), made.bytes, hash(made)) == (
            standard, str(standard), standard.bytes, hash(standard))
        assert made.is_safe == standard.is_safe
        assert pickle.loads(pickle.dumps(made)) == standard
