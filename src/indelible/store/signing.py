"""Signing a tenant's checkpoint without trusting the database it guards.

Legal order of one signing (under the kept-state lock, in one REPEATABLE READ snapshot):
  1. read the log head and the keys the tenant's log allows (key_rotation.py); refuse if a
     recorded rotation retired this instance's key;
  2. open the latest stored checkpoint with an allowed key: a key nobody recorded refuses;
     a bad signature, or row columns that disagree with the signed note, is an alarm;
  3. what the new checkpoint must extend: the kept checkpoint (outside the database) and the
     stored one. With nothing kept (an upgrade, a fresh data directory) the stored one is
     adopted, with a warning;
  4. prove, from the stored hashes, that the current tree extends each of them, CHECKED
     against their signed roots — never against a root column of the database;
  5. sign, keep the note (fsync) and only then publish it (insert, commit).

Crash ordering (step 5). The note is kept before it is published, so nothing this instance
has published is ever missing from the kept state: deleting a published checkpoint row cannot
make it sign a history that contradicts it. A crash between keeping and committing leaves the
kept state one checkpoint ahead of the database. That does not wedge the signer: entries are
committed before they are signed, so the log still holds the kept size, the next pass proves
the kept root against it and publishes the kept note (or a larger one extending it). A log
that no longer holds what was kept has lost committed, signed entries: an alarm, never a
state to recover from silently (an operator restoring a backup removes the kept file knowingly).
"""

from __future__ import annotations

import base64
import binascii
import logging

import psycopg

from indelible import proofs
from indelible.kept import KeptCheckpoints
from indelible.proofs import Checkpoint, NoteSigner, ProofError
from indelible.store.checkpoints import StoredCheckpoint, insert_checkpoint, latest_checkpoint
from indelible.store.errors import LogIntegrityError
from indelible.store.key_rotation import KeyPolicy, key_policy
from indelible.store.logs import LogHead, read_head
from indelible.store.tree import StoredTree

log = logging.getLogger(__name__)


class ForeignKeyError(LogIntegrityError):
    """The stored checkpoints were signed by a key the tenant's log does not name."""


def alarm(tenant: str, message: str, kind: type[LogIntegrityError] = LogIntegrityError):
    """Log at CRITICAL and return the error to raise: a refusal to sign is never quiet."""
    text = f"INTEGRITY ALARM: tenant {tenant!r}: {message}; refusing to sign"
    log.critical(text)
    return kind(text)


def sign_checkpoint(conn: psycopg.Connection, tenant: str, signer: NoteSigner,
                    kept: KeptCheckpoints) -> StoredCheckpoint | None:
    """Sign the tenant's current size if it grew since the last checkpoint; else None."""
    with kept.hold(tenant), conn.transaction():
        # 1. One snapshot for head, stored hashes, rotations and checkpoints.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        head = read_head(conn, tenant)
        policy = key_policy(conn, tenant, signer)
        if policy.retired_by is not None:
            r = policy.retired_by
            raise alarm(tenant, f"this instance's key {signer.key_id.hex()} was retired by the "
                        f"rotation at seq {r.seq}; the key in force is {r.next}", ForeignKeyError)
        # 2., 3.
        stored_row = latest_checkpoint(conn, tenant)
        stored = _open_stored(tenant, stored_row, policy, head.origin)
        mine = kept.get(tenant)
        if mine is None and stored is not None:
            log.warning("tenant %r: no kept checkpoint in %s; adopting the stored checkpoint "
                        "at size %d, whose signature verifies", tenant, kept.directory, stored.size)
        # 4.
        tree = StoredTree(conn, tenant)
        root = _current_root(tree, tenant, head)
        for floor in (mine.checkpoint if mine else None, stored):
            if floor is not None:
                _prove_extends(tree, tenant, floor, head.size, root)
        # 5.
        if head.size == 0:
            return None
        if mine is not None and mine.size == head.size:
            if stored is None or stored.size < head.size:  # kept, then lost before commit
                log.warning("tenant %r: publishing the kept checkpoint at size %d, which "
                            "the database lacks", tenant, head.size)
                insert_checkpoint(conn, tenant, head.size, root, mine.note, signer.key_id)
            return None
        if stored is not None and stored.size == head.size:
            kept.put(tenant, stored_row.note)  # adopted, or signed by a sibling instance
            return None
        note = proofs.sign_checkpoint(Checkpoint(head.origin, head.size, root), signer)
        kept.put(tenant, note)
        insert_checkpoint(conn, tenant, head.size, root, note, signer.key_id)
        return latest_checkpoint(conn, tenant)


def _open_stored(tenant: str, row: StoredCheckpoint | None, policy: KeyPolicy,
                 origin: str) -> Checkpoint | None:
    if row is None:
        return None
    ids = _signature_key_ids(row.note)
    verifier = next((v for v in policy.verifiers if v.key_id in ids), None)
    if verifier is None:
        held = ", ".join(v.key_id.hex() for v in policy.verifiers)
        raise alarm(tenant, f"the stored checkpoint at size {row.size} was signed by key id(s) "
                    f"{', '.join(sorted(i.hex() for i in ids)) or 'none'}, which this instance "
                    f"does not hold and no recorded rotation names (allowed: {held}). If that "
                    "key is legitimately yours, record the change: indelible signing-key rotate "
                    f"--tenant {tenant} --previous <its verifier key> --reason <why>",
                    ForeignKeyError)
    try:
        cp = proofs.open_checkpoint(row.note, verifier, origin=origin)
    except ProofError as e:
        raise alarm(tenant, f"the stored checkpoint at size {row.size} does not verify: "
                    f"{e}") from e
    if (cp.size, cp.root_hash) != (row.size, row.root_hash):
        raise alarm(tenant, f"the stored checkpoint row at size {row.size} disagrees with its "
                    f"signed note (size {cp.size})")
    return cp


def _signature_key_ids(note: str) -> set[bytes]:
    """Key ids named by the note's signature lines (verification is done by the caller)."""
    ids = set()
    for line in note[note.rfind("\n\n") + 2:].splitlines():
        try:
            ids.add(base64.b64decode(line.rsplit(" ", 1)[-1], validate=True)[:4])
        except (binascii.Error, ValueError):
            continue
    return ids


def _current_root(tree: StoredTree, tenant: str, head: LogHead) -> bytes:
    root = head.frontier.root()
    if head.size and tree.root(head.size) != root:
        raise alarm(tenant, f"stored hashes disagree with the log head at size {head.size}")
    return root


def _prove_extends(tree: StoredTree, tenant: str, signed: Checkpoint, size: int,
                   root: bytes) -> None:
    if size < signed.size:
        raise alarm(tenant, f"the log holds {size} entries but a checkpoint signed by this "
                    f"service commits to {signed.size}: signed entries were removed")
    try:
        proof = tree.consistency_proof(signed.size, size)
        proofs.verify_consistency(signed.size, size, proof, signed.root_hash, root)
    except (ProofError, LogIntegrityError) as e:
        raise alarm(tenant, f"the log at size {size} does not extend the checkpoint signed at "
                    f"size {signed.size}: {e}") from e
