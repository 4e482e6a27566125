"""Exporting an evidence bundle: write it, then record the export as a ledger entry.

The `evidence.exported` entry (its own stream, `export/<uuid>`) names who exported what: the
query, the checkpoint the entries are proved against, the entry count and control totals,
and the SHA-256 of the bundle's manifest, so a bundle shown later can be matched to the
export the ledger recorded (and that entry proved like any other).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from indelible.bundles.export import BundleQuery, BundleSummary, Progress, write_bundle
from indelible.entry import NewEntry
from indelible.proofs.bundle import PREDICATE_TYPE
from indelible.usecases.principal import Ledger, Principal

PREFIX = "export/"
EXPORTED = "evidence.exported"

# Runs `fn(conn, *args)` against the tenant's data and returns its result (the HTTP app's
# `state.read`, or a CLI command's own connection).
Reader = Callable[..., Awaitable[Any]]


async def export_bundle(ledger: Ledger, who: Principal, read: Reader, query: BundleQuery,
                        out: BinaryIO, *, verifier_key: str,
                        progress: Progress | None = None) -> tuple[BundleSummary, Any]:
    """Write `query`'s bundle to `out`; return its summary and the `evidence.exported` entry.
    Raises NotFoundError (audit.py) naming what is missing or not yet signed."""
    if query.tenant != who.tenant:
        raise PermissionError(f"{who.actor_id} may not export tenant {query.tenant!r}")
    summary = await read(write_bundle, query, out, verifier_key=verifier_key, progress=progress)
    bundle_id = str(uuid.uuid4())
    entry = NewEntry(stream=PREFIX + bundle_id, type=EXPORTED, actor=who.entry_actor(),
                     expected_version=0,
                     data={"bundle_id": bundle_id, "format": PREDICATE_TYPE, **summary.to_json()})
    appended = await ledger.append(who.tenant, entry)
    return summary, appended
