"""The ledger entry: the exact bytes that are hashed (DESIGN section 5). Pure, no I/O.

An entry is RFC 8785 canonical JSON of
    {"v":1, "log":origin, "seq":n, "prev":base64(leaf hash of n-1) or "", "id":uuid,
     "at":RFC 3339 UTC with microseconds, "stream":..., "version":n, "type":...,
     "actor":{"id","role","kind"}, "data":{...}, "meta":{...}}
`meta.idempotency_key`, when present, is copied to an indexed column like the others.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from indelible.proofs import canonical_json

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


@dataclass(frozen=True)
class EncodedEntry:
    """An entry as stored: its canonical bytes and the columns indexed out of it."""

    seq: int
    event_id: uuid.UUID
    stream: str
    version: int
    type: str
    recorded_at: datetime
    actor_id: str
    idempotency_key: str | None
    entry: bytes


def format_time(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_entry(command: NewEntry, *, origin: str, seq: int, prev: bytes | None,
                 version: int, at: datetime, event_id: uuid.UUID | None = None) -> EncodedEntry:
    """Build the canonical bytes of one entry; raises EntryError naming what is wrong."""
    event_id = event_id or uuid.uuid4()
    meta = dict(command.meta)
    if command.idempotency_key is not None:
        meta["idempotency_key"] = command.idempotency_key
    document = {
        "v": FORMAT_VERSION, "log": origin, "seq": seq, "prev": b64(prev) if prev else "",
        "id": str(event_id), "at": format_time(at), "stream": command.stream,
        "version": version, "type": command.type, "actor": command.actor.to_json(),
        "data": command.data, "meta": meta,
    }
    try:
        entry = canonical_json(document)
    except ValueError as e:
        raise EntryError(str(e)) from e
    return EncodedEntry(seq=seq, event_id=event_id, stream=command.stream, version=version,
                        type=command.type, recorded_at=at, actor_id=command.actor.id,
                        idempotency_key=command.idempotency_key, entry=entry)


def decode_entry(entry: bytes) -> dict:
    """Parse stored entry bytes (for reading and verification; never re-encoded)."""
    try:
        document = json.loads(entry)
    except (ValueError, UnicodeDecodeError) as e:
        raise EntryError(f"entry is not valid JSON: {e}") from e
    if not isinstance(document, dict) or document.get("v") != FORMAT_VERSION:
        raise EntryError(f"entry is not a version {FORMAT_VERSION} ledger entry")
    return document
