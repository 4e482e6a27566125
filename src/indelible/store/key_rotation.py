"""Which keys may sign a tenant's checkpoints: the ledger records every change of key.

Two service instances sharing a database must not sign one log with two keys unknowingly.
The checkpointer therefore refuses to sign over a stored checkpoint that another key signed,
unless the tenant's log holds a `log.signing_key_rotated` entry naming both keys (stream
`log/signing-key`, written by `indelible signing-key rotate`). The entry is hash-chained and
then signed like any other, so every change of key is in the audit trail, with its reason.
The latest rotation names the key in force; a key it replaced is retired and may not sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from indelible.domain.errors import InvalidCommandError
from indelible.domain.validation import check_text
from indelible.entry import Actor, NewEntry, decode_entry
from indelible.proofs import NoteSigner, NoteVerifier, ProofError, open_note
from indelible.store.checkpoints import latest_checkpoint

STREAM = "log/signing-key"
ROTATED = "log.signing_key_rotated"
MAX_REASON = 1000


class KeyRotationError(ValueError):
    pass


@dataclass(frozen=True)
class Rotation:
    seq: int
    previous: str  # verifier key text
    next: str  # verifier key text
    reason: str


def rotations(conn: psycopg.Connection, tenant: str) -> list[Rotation]:
    rows = conn.execute("SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s AND "
                        "stream_id = %s ORDER BY stream_version", (tenant, STREAM))
    found = []
    for seq, entry in rows:
        data = decode_entry(bytes(entry))["data"]
        found.append(Rotation(seq, data["previous"], data["next"], data["reason"]))
    return found


@dataclass(frozen=True)
class KeyPolicy:
    """The verifiers a signer may build on, or why it may not sign at all."""

    verifiers: tuple[NoteVerifier, ...]  # ours first
    retired_by: Rotation | None = None  # set: our key was rotated out; do not sign

    def verifier_for(self, key_id: bytes) -> NoteVerifier | None:
        return next((v for v in self.verifiers if v.key_id == key_id), None)


def key_policy(conn: psycopg.Connection, tenant: str, signer: NoteSigner) -> KeyPolicy:
    ours = signer.verifier_key_text()
    texts, retired = [ours], None
    recorded = rotations(conn, tenant)
    for r in recorded:
        texts += [t for t in (r.previous, r.next) if t not in texts]
    if recorded and recorded[-1].next != ours:
        retired = recorded[-1]
    verifiers = []
    for text in texts:
        try:
            verifiers.append(NoteVerifier.from_key_text(text))
        except ProofError:
            continue  # a malformed key in a rotation entry cannot verify anything
    return KeyPolicy(tuple(verifiers), retired)


def rotate_command(*, previous: str, signer: NoteSigner, reason: str, by: Actor) -> NewEntry:
    """The entry recording that `signer`'s key succeeds `previous` (a verifier key text)."""
    try:
        old = NoteVerifier.from_key_text(previous.strip())
    except ProofError as e:
        raise KeyRotationError(f"previous key: {e}") from e
    if old.key_id == signer.key_id:
        raise KeyRotationError("the previous key is this instance's own key: nothing to rotate")
    try:
        check_text(reason, "reason", max_len=MAX_REASON)
    except InvalidCommandError as e:
        raise KeyRotationError(str(e)) from e
    return NewEntry(stream=STREAM, type=ROTATED, actor=by,
                    data={"previous": previous.strip(), "next": signer.verifier_key_text(),
                          "reason": reason})


def check_previous(conn: psycopg.Connection, tenant: str, previous: str) -> None:
    """Refuse a rotation from a key that did not sign the latest stored checkpoint: the
    operator most likely named the wrong key, and the checkpointer would still refuse."""
    latest = latest_checkpoint(conn, tenant)
    if latest is None:
        return
    try:
        open_note(latest.note, NoteVerifier.from_key_text(previous.strip()))
    except ProofError as e:
        raise KeyRotationError(f"the latest stored checkpoint (size {latest.size}) is not "
                               f"signed by the previous key you named: {e}") from e
