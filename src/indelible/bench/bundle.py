"""`indelible bench bundle`: evidence bundle export and offline verification.

The bench tenant's log is grown (with `append_batch`) to hold at least `range` entries and a
resolved discrepancy, and signed, so every figure is for a real, signed log.

1. Export throughput. Ours: `write_bundle` of the last `range` entries (entries, one
   inclusion proof each, checkpoints, manifest) into a file, entries/s. Baseline:
   reading the same rows raw: a server-side cursor over `seq, entry` of the range, every
   row fetched by the client, the least any exporter must read.
2. verify-bundle throughput. Ours: `verify_bundle` of that zip as `indelible verify-bundle`
   reads it (manifest digests, every inclusion proof, the chain, totals), entries/s; it must
   find it intact. Baseline: the
   same raw read of the rows.
3. One discrepancy's bundle: `verify_bundle` of it, p50/p99 ms over repeated runs; target
   well under a second. Baseline: reading that discrepancy's rows raw.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from indelible import domain
from indelible.auditor import BundleReader, render_snapshot
from indelible.bench.common import BenchError, Measurement, latency_ms, rate
from indelible.bench.verify import grow_log
from indelible.bootstrap import Database, projections
from indelible.bundles.export import BundleQuery, write_bundle
from indelible.kept import KeptCheckpoints
from indelible.proofs import NoteSigner, NoteVerifier
from indelible.proofs.bundle import verify_bundle
from indelible.store.logs import read_head
from indelible.store.signing import sign_checkpoint
from indelible.usecases import discrepancies
from indelible.usecases.principal import DirectLedger, Principal

TARGET_ONE_MS = 1000.0  # "well under a second" for one discrepancy's bundle


@dataclass(frozen=True)
class BundleOptions:
    range: int = 100_000  # entries in the exported range
    repeats: int = 20  # verifications of one discrepancy's bundle
    seed_batch: int = 10_000


def run(db: Database, tenant: str, signer: NoteSigner, kept: KeptCheckpoints,
        options: BundleOptions) -> tuple[list[Measurement], dict]:
    verifier = NoteVerifier.from_key_text(signer.verifier_key_text())
    key = signer.verifier_key_text()
    with psycopg.connect(db.app_url, autocommit=True) as conn:
        grown = grow_log(conn, tenant, options.range, options.seed_batch)
        case = _resolved_case(conn, tenant)
        sign_checkpoint(conn, tenant, signer, kept)
        size = read_head(conn, tenant).size
        lo, hi = size - options.range, size - 1
        ranged = BundleQuery(tenant, from_seq=max(0, lo), to_seq=hi)
        with tempfile.TemporaryDirectory() as tmp:
            big, one = Path(tmp, "range.zip"), Path(tmp, "one.zip")
            _raw_rows(conn, tenant, ranged)  # warm-up, untimed
            raw_rows, raw_seconds = _raw_rows(conn, tenant, ranged)
            started = time.perf_counter()
            with big.open("wb") as out:
                summary = write_bundle(conn, ranged, out, verifier_key=key)
            export_seconds = time.perf_counter() - started
            big_size = big.stat().st_size
            started = time.perf_counter()
            report = _verify(big, verifier)
            verify_seconds = time.perf_counter() - started
            with one.open("wb") as out:
                write_bundle(conn, BundleQuery(tenant, discrepancies=(case,)), out,
                             verifier_key=key)
            one_base = [_raw_case(conn, tenant, case) for _ in range(options.repeats)]
            one_ours = [_timed(_verify, one, verifier) for _ in range(options.repeats)]
    base = {"rate": rate(raw_rows, raw_seconds)}
    entries = summary.entries
    details = {"entries": entries, "bundle_bytes": big_size, "raw_rows": raw_rows,
               "raw_seconds": round(raw_seconds, 3)}
    return [
        Measurement("bundle_export", f"export of a {entries:,}-entry range", "entries/s", base,
                    {"rate": rate(entries, export_seconds)},
                    "server-side cursor over the range's seq and entry, every row fetched",
                    "write_bundle: entries, an inclusion proof each, checkpoints, manifest",
                    details={**details, "seconds": round(export_seconds, 3)}),
        Measurement("bundle_verify", f"verify-bundle of that range ({report.entries:,} entries)",
                    "entries/s", base, {"rate": rate(report.entries, verify_seconds)},
                    "the same raw read of the rows",
                    "verify_bundle: digests, inclusion proofs, chain, totals; intact",
                    details={**details, "seconds": round(verify_seconds, 3)}),
        Measurement("bundle_verify_one", "verify-bundle of one resolved discrepancy's bundle",
                    "ms", latency_ms(one_base), latency_ms(one_ours),
                    "reading that discrepancy's rows (one indexed query)",
                    "verify_bundle (snapshot replayed)",
                    f"p99 < {TARGET_ONE_MS:g} ms", latency_ms(one_ours)["p99"] < TARGET_ONE_MS,
                    {"repeats": options.repeats}),
    ], {"log_size": size, "entries_seeded_now": grown, "discrepancy": case}


def _verify(path: Path, verifier: NoteVerifier):
    """As `indelible verify-bundle` reads a bundle (auditor.py)."""
    with BundleReader(str(path)) as archive:
        report = verify_bundle(archive, [verifier], render_snapshot=render_snapshot)
    if not report.intact:
        raise BenchError("the bench bundle does not verify:\n" + report.to_text())
    return report


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def _raw_rows(conn, tenant: str, query: BundleQuery) -> tuple[int, float]:
    started, count = time.perf_counter(), 0
    with conn.transaction(), conn.cursor(name="bench_raw") as cur:
        cur.itersize = 2_000
        cur.execute("SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s AND seq "
                    "BETWEEN %s AND %s ORDER BY seq", (tenant, query.from_seq, query.to_seq))
        for _ in cur:
            count += 1
    return count, time.perf_counter() - started


def _raw_case(conn, tenant: str, case: str) -> float:
    started = time.perf_counter()
    conn.execute("SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s AND stream_id = %s "
                 "ORDER BY seq", (tenant, f"disc/{case}")).fetchall()
    return time.perf_counter() - started


def _resolved_case(conn, tenant: str) -> str:
    """A discrepancy walked to resolved, with an evidence file (once per run)."""
    ledger = DirectLedger(conn, projections())
    who = Principal(tenant, "bench:analyst", "analyst")
    ref = f"bench-{time.time_ns()}"
    evidence = f"bench evidence {ref}".encode()

    async def walk() -> str:
        case = (await discrepancies.report(ledger, who, domain.OpenDiscrepancy(
            external_ref=ref, source="bench", kind="amount_mismatch", expected_amount="100.00",
            actual_amount="90.00", currency="EUR", detected_at="2026-11-23T05:00:00Z"))
        ).discrepancy_id
        for to in ("acknowledged", "investigating"):
            await discrepancies.move(ledger, who, case, domain.Transition(to=to))
        await discrepancies.attach_evidence(ledger, who, case, domain.AttachEvidence(
            sha256=hashlib.sha256(evidence).hexdigest(), name="e.txt", size=len(evidence),
            media_type="text/plain"), evidence)
        await discrepancies.move(ledger, who, case, domain.Transition(
            to="resolved", resolution_code="corrected_in_ledger", note="bench"))
        return case

    return asyncio.run(walk())
