"""Shared helpers for storage tests: realistic commands and a superuser who can tamper."""

from __future__ import annotations

import uuid

import psycopg

from indelible.entry import Actor, NewEntry
from indelible.proofs import CompactRange, NoteVerifier, perfect_subtrees
from indelible.store.tree import StoredTree

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


def truncate_log(rogue, conn, tenant: str, size: int) -> None:
    """As a superuser would: cut the log back to `size` entries, deleting the checkpoints
    beyond it, and make every derived table agree."""
    tree = StoredTree(conn, tenant)
    frontier = CompactRange(size, [tree.subtree(level, index)
                                   for level, index in perfect_subtrees(0, size)])
    last = tree.subtree(0, size - 1)
    rogue.execute("DELETE FROM ledger_entries WHERE tenant_id = %s AND seq >= %s", (tenant, size))
    rogue.execute("DELETE FROM merkle_nodes WHERE tenant_id = %s AND ((idx + 1) << level) > %s",
                  (tenant, size))
    rogue.execute("DELETE FROM checkpoints WHERE tenant_id = %s AND size > %s", (tenant, size))
    rogue.execute("UPDATE log_heads SET size = %s, last_leaf_hash = %s, frontier = %s "
                  "WHERE tenant_id = %s", (size, last, frontier.to_bytes(), tenant))
