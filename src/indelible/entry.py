"""The ledger entry: the exact bytes that are hashed (DESIGN section 5). Pure, no I/O.

An entry is RFC 8785 canonical JSON of
    {"v":1, "log":origin, "seq":n, "prev":base64(leaf hash of n-1) or "", "id":uuid,
     "at":RFC 3339 UTC with microseconds, "stream":..., "version":n, "type":...,
     "actor":{"id","role","kind"}, "data":{...}, "meta":{...}}
`meta.idempotency_key`, when present, is copied to an indexed column like the others.
"""

from __future__ import annotations

import binascii
import functools
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from indelible.proofs import CanonicalError, check_canonical

FORMAT_VERSION = 1
MAX_NAME = 200  # characters in stream ids, types, actor fields, idempotency keys


class EntryError(ValueError):
    """A command cannot become a ledger entry; the message names the field."""


@dataclass(frozen=True)
class Actor:
    id: str
    role: str
    kind: str = "user"  # user | system | engine

    def to_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "role": self.role}


@dataclass(frozen=True)
class NewEntry:
    """A command to append one entry to a tenant's log."""

    stream: str
    type: str
    actor: Actor
    data: Mapping = field(default_factory=dict)
    expected_version: int | None = None  # None: any; 0: the stream must not exist yet
    idempotency_key: str | None = None
    meta: Mapping = field(default_factory=dict)

    def check(self) -> None:
        for name, value in (("stream", self.stream), ("type", self.type),
                            ("actor.id", self.actor.id), ("actor.role", self.actor.role),
                            ("actor.kind", self.actor.kind)):
            _check_name(name, value)
        if self.idempotency_key is not None:
            _check_name("idempotency_key", self.idempotency_key)
        if self.expected_version is not None and self.expected_version < 0:
            raise EntryError(f"expected_version must be >= 0, got {self.expected_version}")
        if "idempotency_key" in self.meta:
            raise EntryError("meta.idempotency_key is reserved: pass idempotency_key instead")


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise EntryError(f"{name} must be a non-empty string of at most {MAX_NAME} characters")


def time_ordered_ids(at: datetime, count: int) -> list[uuid.UUID]:
    """`count` UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then 74 random bits.

    Ordered by time, so each batch adds to the right edge of the event_id index instead of
    touching random pages of it; one urandom call serves the whole batch.
    """
    millis = int(at.timestamp() * 1000) << 80
    noise = os.urandom(10 * count)
    return [_uuid_of(((millis | int.from_bytes(noise[i:i + 10], "big")) & _UUID7_CLEAR)
                     | _UUID7_BITS)
            for i in range(0, 10 * count, 10)]


_UUID7_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)  # version and variant bits
_UUID7_BITS = (0x7 << 76) | (0x2 << 62)  # version 7, RFC 9562 variant
_new_uuid = uuid.UUID.__new__
_set_slot = object.__setattr__


def _uuid_of(value: int) -> uuid.UUID:
    """`uuid.UUID(int=value)` for a value known to fit 128 bits, at a third of the cost (one
    per appended entry): UUID.__init__ ends by setting exactly these two slots, after
    argument checks the callers here need not repeat. tests/unit/test_entry.py compares the
    result with `uuid.UUID(int=...)`."""
    made = _new_uuid(uuid.UUID)
    _set_slot(made, "int", value)
    _set_slot(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def format_time(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


@dataclass(frozen=True)
class PreparedEntry:
    """A checked command with its caller-supplied parts already in canonical JSON.

    Preparing needs no log state, so callers do it in their own thread, before the log
    head is locked; under the lock only seq, prev, version, id and time remain.
    """

    command: NewEntry
    actor_json: str
    data_json: str
    meta_json: str
    stream_json: str
    type_json: str


def prepare_entry(command: NewEntry) -> PreparedEntry:
    """Check a command and encode its own parts; raises EntryError naming what is wrong."""
    command.check()
    if not isinstance(command.data, Mapping) or not isinstance(command.meta, Mapping):
        raise EntryError("data and meta must be JSON objects")
    meta = dict(command.meta)
    if command.idempotency_key is not None:
        meta["idempotency_key"] = command.idempotency_key
    return PreparedEntry(command, _actor_json(command.actor), _canonical(command.data, "data"),
                         _canonical(meta, "meta"), _canonical(command.stream, "stream"),
                         _canonical(command.type, "type"))


@functools.lru_cache(maxsize=4096)
def _actor_json(actor: Actor) -> str:
    return _canonical(actor.to_json(), "actor")


def _canonical(value, name: str = "") -> str:
    """Canonical JSON text of one part; a refusal names its path within the whole entry.

    The same walk as `proofs.canonical_json` admits the value; orjson then encodes it (about
    twice as fast as the standard library's encoder on the append path). On admitted values
    the bytes are identical: keys sorted by code point, the same escapes, no whitespace;
    tests/unit/test_entry_canonical.py proves it against `rfc8785` with the same properties
    as canonical_json's own tests."""
    try:
        check_canonical(value)
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except CanonicalError as e:
        path, _, reason = str(e).partition(":")
        raise EntryError(f"$.{name}{path[1:]}:{reason}") from e
    except orjson.JSONEncodeError as e:  # admitted by the walk, deeper than orjson nests
        raise EntryError(f"$.{name}: nested too deeply ({e})") from e


def log_json(origin: str) -> str:
    return _canonical(origin)


def encode_prepared(p: PreparedEntry, *, log: str, seq: int, prev: str, event_id: str,
                    at: str, version: int) -> bytes:
    """The canonical bytes of one entry, spliced from canonical parts.

    Keys appear in RFC 8785 order (all ASCII, so UTF-16 order is byte order); every spliced
    value is itself canonical JSON, `prev`, `event_id` and `at` are base64, UUID and time
    strings that need no escaping, so the result equals `canonical_json` of the whole
    document — the unit property tests prove it against the `rfc8785` package.
    `log` is `log_json(origin)`.
    """
    return (f'{{"actor":{p.actor_json},"at":"{at}","data":{p.data_json},"id":"{event_id}",'
            f'"log":{log},"meta":{p.meta_json},"prev":"{prev}","seq":{seq},'
            f'"stream":{p.stream_json},"type":{p.type_json},"v":{FORMAT_VERSION},'
            f'"version":{version}}}').encode("utf-8")


def encode_entry(command: NewEntry, *, origin: str, seq: int, prev: bytes | None, version: int,
                 at: datetime, event_id: uuid.UUID | None = None) -> bytes:
    """One entry's canonical bytes, from scratch (the appender uses the prepared path)."""
    return encode_prepared(prepare_entry(command), log=log_json(origin), seq=seq,
                           prev=b64(prev) if prev else "", event_id=str(event_id or uuid.uuid4()),
                           at=format_time(at), version=version)


def recorded_meta(document: dict) -> dict:
    """A stored entry's `meta` object; empty when an edit of the database left anything
    else there (a tampered entry vouches for no digest or key, it does not fail a batch)."""
    meta = document.get("meta")
    return meta if isinstance(meta, dict) else {}


def decode_entry(entry: bytes) -> dict:
    """Parse stored entry bytes (for reading and verification; never re-encoded)."""
    try:
        document = json.loads(entry)
    except (ValueError, UnicodeDecodeError) as e:
        raise EntryError(f"entry is not valid JSON: {e}") from e
    if not isinstance(document, dict) or document.get("v") != FORMAT_VERSION:
        raise EntryError(f"entry is not a version {FORMAT_VERSION} ledger entry")
    return document
