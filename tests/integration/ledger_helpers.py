"""Shared helpers for storage tests: realistic commands and a superuser who can tamper."""

from __future__ import annotations

import uuid

import psycopg

from indelible.entry import Actor, NewEntry
from indelible.proofs import NoteVerifier

ANALYST = Actor("user-1", "analyst")


def command(i: int, *, stream: str | None = None, key: str | None = None, **extra) -> NewEntry:
    # Not `disc/`: synthetic events are not the discrepancy domain's, and verification
    # replays `disc/` streams through the domain and compares them with the read model.
    return NewEntry(stream=stream or f"test/{uuid.uuid4()}", type="discrepancy.detected",
                    actor=ANALYST, data={"n": i, "amount": f"{i}.25", "currency": "EUR"},
                    idempotency_key=key, **extra)


def verifier_of(signer) -> NoteVerifier:
    return NoteVerifier.from_key_text(signer.verifier_key_text())


def superuser(owner_url: str) -> psycopg.Connection:
    """A connection that bypasses the append-only triggers, as a rogue DBA would."""
    conn = psycopg.connect(owner_url, autocommit=True)
    conn.execute("SET session_replication_role = replica")
    return conn
