"""API keys: random bearer tokens, stored only as SHA-256 hashes.

Issuing and revoking are ledger entries on stream `apikey/<key id>`; the `api_keys` table is
their projection (rebuildable). A token is `idl_` + 43 base64url characters (256 random bits):
its hash may sit in the ledger, since nothing can be learned from the hash of a random secret.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import psycopg

from indelible.entry import Actor, NewEntry, time_ordered_ids
from indelible.store.appender import Change, Decision
from indelible.store.errors import AppendRefusedError

ROLES = ("analyst", "compliance_manager", "auditor", "admin", "system")
PREFIX = "apikey/"
MAX_NAME = 100


class InvalidKeyRequestError(ValueError):
    pass


class KeyAlreadyRevokedError(AppendRefusedError):
    pass


class UnknownKeyError(AppendRefusedError):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and role their key grants."""

    tenant: str
    key_id: str
    role: str
    name: str

    def actor(self) -> Actor:
        return Actor(f"key:{self.key_id}", self.role, "system" if self.role == "system" else "user")


@dataclass(frozen=True)
class KeyState:
    key_id: str
    name: str
    role: str
    token_sha256: str
    issued_seq: int
    issued_at: datetime
    issued_by: str
    revoked_seq: int | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return "idl_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def issue_command(*, role: str, name: str | None, by: Actor) -> tuple[str, NewEntry]:
    """(the token, shown once; the entry that issues it)."""
    if role not in ROLES:
        raise InvalidKeyRequestError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    name = name or f"{role} key"
    if not 0 < len(name) <= MAX_NAME or any(ord(c) < 0x20 for c in name):
        raise InvalidKeyRequestError(f"name must be 1..{MAX_NAME} characters, no control characters")
    token = new_token()
    key_id = str(time_ordered_ids(datetime.now(timezone.utc), 1)[0])
    entry = NewEntry(stream=PREFIX + key_id, type="api_key.issued", actor=by, expected_version=0,
                     data={"key_id": key_id, "name": name, "role": role,
                           "token_sha256": token_hash(token).hex()})
    return token, entry


def revoke_decision(key_id: str, *, by: Actor) -> Decision:
    def decide(state: KeyState | None) -> NewEntry:
        if state is None:
            raise UnknownKeyError(f"API key {key_id} does not exist in this tenant")
        if state.revoked_seq is not None:
            raise KeyAlreadyRevokedError(f"API key {key_id} was already revoked at seq {state.revoked_seq}")
        return NewEntry(stream=PREFIX + key_id, type="api_key.revoked", actor=by,
                        data={"key_id": key_id})
    return Decision(PREFIX + key_id, decide)


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    return authenticate_hash(conn, token_hash(token))


def authenticate_hash(conn: psycopg.Connection, hashed: bytes) -> Principal | None:
    """The key whose token hashes to `hashed`, with role and revocation read from the ledger
    (the console keeps only this hash in its session and asks again at every page)."""
    row = conn.execute("SELECT tenant_id, key_id::text, role, name FROM indelible_authenticate(%s)",
                       (hashed,)).fetchone()
    return Principal(*row) if row else None


def key_names(conn: psycopg.Connection, tenant: str, key_ids: list[str]) -> dict[str, str]:
    """{key id: the name it was issued under}, for showing who acted (`key:<id>` actors)."""
    rows = conn.execute("SELECT key_id::text, name FROM api_keys WHERE tenant_id = %s AND "
                        "key_id::text = ANY(%s)", (tenant, key_ids))
    return dict(rows.fetchall())


def list_keys(conn: psycopg.Connection, tenant: str) -> list[KeyState]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = %s "
                        "ORDER BY issued_seq", (tenant,))
    return [_state(r) for r in rows]


_COLUMNS = ("key_id::text, name, role, encode(token_hash, 'hex'), issued_seq, issued_at, "
            "issued_by, revoked_seq, revoked_at, revoked_by")


def _state(row) -> KeyState:
    return KeyState(*row)


class ApiKeys:
    """StreamModel of `apikey/…` streams → the api_keys table."""

    def owns(self, stream: str) -> bool:
        return stream.startswith(PREFIX)

    def load(self, conn, tenant, streams):
        ids = [s.removeprefix(PREFIX) for s in streams]
        rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = %s "
                            "AND key_id = ANY(%s::uuid[])", (tenant, ids))
        return {PREFIX + r[0]: _state(r) for r in rows}

    def evolve(self, state: KeyState | None, e: Change) -> KeyState:
        if e.type == "api_key.issued":
            d = e.data
            return KeyState(d["key_id"], d["name"], d["role"], d["token_sha256"], e.seq,
                            e.recorded_at, e.actor_id)
        return replace(state, revoked_seq=e.seq, revoked_at=e.recorded_at, revoked_by=e.actor_id)

    def digest(self, stream: str, state: KeyState) -> None:
        return None  # authentication reads the ledger, not this row (migration 11)

    def project(self, conn, tenant, states):
        from indelible.store.key_cache import notify_revoked

        for s in states.values():  # every process forgets remembered keys at commit
            if s.revoked_seq is not None:
                notify_revoked(conn, s.key_id)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO api_keys (tenant_id, key_id, name, role, token_hash, issued_seq, "
                "issued_at, issued_by, revoked_seq, revoked_at, revoked_by) "
                "VALUES (%s, %s, %s, %s, decode(%s, 'hex'), %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (tenant_id, key_id) DO UPDATE SET revoked_seq = EXCLUDED.revoked_seq, "
                "revoked_at = EXCLUDED.revoked_at, revoked_by = EXCLUDED.revoked_by",
                [(tenant, s.key_id, s.name, s.role, s.token_sha256, s.issued_seq, s.issued_at,
                  s.issued_by, s.revoked_seq, s.revoked_at, s.revoked_by) for s in states.values()])
