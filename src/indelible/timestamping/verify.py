"""`indelible verify`'s look at timestamp tokens: each must hold over its checkpoint's note,
signed by a TSA the configured CA certificates vouch for."""

from __future__ import annotations

import psycopg

from indelible.proofs import ProofError
from indelible.proofs.timestamp import TimestampChecker
from indelible.store import timestamps


def verify_tokens(conninfo: str, tenant: str, checker: TimestampChecker, report) -> int:
    """Add a `timestamp` finding to `report` per token that does not hold; returns how many
    tokens were checked."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        stored = timestamps.all_tokens(conn, tenant)
    for size, note, token in stored:
        try:
            checker(token, note.encode())
        except ProofError as e:
            report.add("timestamp", f"the RFC 3161 token of the checkpoint of size {size} does "
                       f"not hold: {e}", size - 1)
    return len(stored)
