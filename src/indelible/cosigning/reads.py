"""What auditors read: checkpoints with their cosignatures, and the latest one a policy accepts.

The quorum is decided by the pure check (`proofs.check_witness_quorum`) over the cosigned
note itself, never by counting rows: a row someone inserted by hand verifies like any other
line, and one that does not verify counts for nothing.
"""

from __future__ import annotations

import psycopg

from indelible.audit import NotFoundError, current_checkpoint
from indelible.proofs import ProofError, WitnessPolicy, check_witness_quorum
from indelible.store.checkpoints import StoredCheckpoint, checkpoint_at
from indelible.store.cosignatures import sizes_with, with_cosignatures

__all__ = ["NotWitnessedError", "witnessed_checkpoint", "witnessed_size"]


class NotWitnessedError(NotFoundError):
    """No checkpoint of the log carries the quorum of cosignatures the policy asks for."""


def witnessed_checkpoint(conn: psycopg.Connection, tenant: str, policy: WitnessPolicy,
                         covering: int = 0) -> StoredCheckpoint:
    """The largest checkpoint (of at least `covering` entries) the policy accepts, cosigned."""
    latest = current_checkpoint(conn, tenant)  # with its cosignatures
    try:
        check_witness_quorum(latest.note, policy)
        return latest
    except ProofError as e:
        why_latest = str(e)
    keys = [w.key_text() for w in policy.witnesses]
    for size in sizes_with(conn, tenant, keys, policy.quorum):
        if size < covering:
            break
        candidate = with_cosignatures(conn, checkpoint_at(conn, tenant, size))
        try:
            check_witness_quorum(candidate.note, policy)
            return candidate
        except ProofError:
            continue
    need = f" covering entry {covering - 1}" if covering else ""
    raise NotWitnessedError(f"tenant {tenant!r} has no checkpoint{need} cosigned by "
                            f"{policy.quorum} of the listed witnesses; the latest (size "
                            f"{latest.size}): {why_latest}")


def witnessed_size(conn: psycopg.Connection, tenant: str,
                   policy: WitnessPolicy) -> tuple[int, str | None]:
    """(size of the largest checkpoint the policy accepts, 0 if none; why the latest checkpoint
    is not accepted, None if it is). The caller verifies the checkpoints' own signatures."""
    try:
        latest = current_checkpoint(conn, tenant)  # with its cosignatures
    except NotFoundError:
        return 0, f"tenant {tenant!r} has no signed checkpoint"
    try:
        check_witness_quorum(latest.note, policy)
        return latest.size, None
    except ProofError as e:
        why = str(e)
    try:
        return witnessed_checkpoint(conn, tenant, policy).size, why
    except NotWitnessedError:
        return 0, why
