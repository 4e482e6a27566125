"""Building a resolved discrepancy with evidence, exporting its bundle, and rewriting zips."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile

from indelible import domain
from indelible.bootstrap import projections
from indelible.bundles.export import BundleQuery
from indelible.proofs import canonical_json
from indelible.proofs.bundle import MANIFEST
from indelible.store.signing import sign_checkpoint
from indelible.usecases import discrepancies
from indelible.usecases.bundles import export_bundle
from indelible.usecases.principal import DirectLedger, Principal

EVIDENCE = b"%PDF-1.4 the processor's fee statement\n"


def run(coro):
    return asyncio.run(coro)


def resolved_case(conn, tenant: str, ref: str = "po-1042") -> str:
    """A discrepancy opened, acknowledged, investigated, given evidence and resolved."""
    ledger = DirectLedger(conn, projections())
    ana = Principal(tenant, "key:ana", "analyst")
    opened = run(discrepancies.report(ledger, ana, domain.OpenDiscrepancy(
        external_ref=ref, source="stripe", kind="amount_mismatch", expected_amount="9850.00",
        actual_amount="10000.00", currency="EUR", detected_at="2026-11-23T05:00:00Z")))
    case = opened.discrepancy_id
    for to in ("acknowledged", "investigating"):
        run(discrepancies.move(ledger, ana, case, domain.Transition(to=to)))
    run(discrepancies.attach_evidence(ledger, ana, case, domain.AttachEvidence(
        sha256=hashlib.sha256(EVIDENCE).hexdigest(), name="fees.pdf", size=len(EVIDENCE),
        media_type="application/pdf"), EVIDENCE))
    run(discrepancies.move(ledger, ana, case, domain.Transition(
        to="resolved", resolution_code="corrected_in_ledger", note="Processor fee booked")))
    return case


def export(conn, tenant: str, signer, kept, query: BundleQuery, *, sign: bool = True):
    """(zip bytes, summary, the evidence.exported entry)."""
    if sign:
        sign_checkpoint(conn, tenant, signer, kept)
    out = io.BytesIO()

    async def read(fn, *args, **kwargs):
        return fn(conn, *args, **kwargs)

    who = Principal(tenant, "key:auditor", "auditor")
    summary, entry = run(export_bundle(DirectLedger(conn, projections()), who, read, query, out,
                                       verifier_key=signer.verifier_key_text()))
    return out.getvalue(), summary, entry


def files_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in sorted(files):
            z.writestr(name, files[name])
    return out.getvalue()


def flip(data: bytes, at: int | None = None) -> bytes:
    """One byte changed (by default in the middle)."""
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def relist(files: dict[str, bytes]) -> dict[str, bytes]:
    """The manifest rewritten to match the files, as a forger who drops a file would."""
    doc = json.loads(files[MANIFEST])
    doc["subject"] = [{"name": n, "digest": {"sha256": hashlib.sha256(d).hexdigest()}}
                      for n, d in sorted(files.items()) if n != MANIFEST]
    return {**files, MANIFEST: canonical_json(doc)}
